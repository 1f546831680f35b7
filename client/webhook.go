package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WebhookTolerance is how far a webhook's timestamp may be from the
// receiver's clock: older messages are refused as possible replays.
const WebhookTolerance = 5 * time.Minute

// Errors of VerifyWebhook, to tell the causes apart with errors.Is.
var (
	// ErrWebhookHeaders: webhook-id, webhook-timestamp or webhook-signature
	// is missing or malformed.
	ErrWebhookHeaders = errors.New("webhook: missing or malformed webhook headers")
	// ErrWebhookTimestamp: the timestamp is outside WebhookTolerance.
	ErrWebhookTimestamp = errors.New("webhook: timestamp outside the tolerance")
	// ErrWebhookSignature: no signature matches the secret.
	ErrWebhookSignature = errors.New("webhook: no matching signature")
)

// VerifyWebhook checks a webhook Samplit sent, per Standard Webhooks: that
// one of the "v1,<base64>" signatures in the webhook-signature header (space
// separated; during a secret rotation there are two) is the HMAC-SHA256,
// under secret, of "<webhook-id>.<webhook-timestamp>.<body>", and that the
// timestamp is within WebhookTolerance of now. secret is the endpoint's
// secret as the API showed it ("whsec_…"; the prefix is optional). body
// must be the raw request body, before any JSON decoding.
//
// Use the webhook-id header to drop duplicates: a delivery is retried
// until it is acknowledged, with the same id each time.
func VerifyWebhook(secret string, headers http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return errors.New("webhook: the secret is not whsec_ followed by base64")
	}
	id, ts, sigs := headers.Get("webhook-id"), headers.Get("webhook-timestamp"), headers.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return ErrWebhookHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp %q is not unix seconds", ErrWebhookHeaders, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return fmt.Errorf("%w: sent %s from now", ErrWebhookTimestamp, d.Round(time.Second))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(sigs) {
		version, value, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue // another scheme: not ours to judge
		}
		got, err := base64.StdEncoding.DecodeString(value)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrWebhookSignature
}
