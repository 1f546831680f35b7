package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// sign computes a Standard Webhooks signature independently of the server
// code, so that the helper is checked against the specification.
func sign(secret, id string, ts int64, body string) string {
	key, _ := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifyWebhook(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		other  = "whsec_c2VjcmV0LW9mLWFub3RoZXItZW5kcG9pbnQ="
		body   = `{"id":"evt_1","type":"ping","data":{}}`
	)
	now := time.Unix(1_700_000_000, 0)
	headers := func(id string, ts int64, sig string) http.Header {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		h.Set("webhook-signature", sig)
		return h
	}
	good := sign(secret, "evt_1", now.Unix(), body)
	tests := []struct {
		name    string
		secret  string
		h       http.Header
		body    string
		wantErr error
	}{
		{"valid", secret, headers("evt_1", now.Unix(), good), body, nil},
		{"without the whsec_ prefix", secret[len("whsec_"):], headers("evt_1", now.Unix(), good), body, nil},
		{"second of two signatures (rotation)", secret, headers("evt_1", now.Unix(), sign(other, "evt_1", now.Unix(), body)+" "+good), body, nil},
		{"unknown scheme ignored", secret, headers("evt_1", now.Unix(), "v1a,xyz "+good), body, nil},
		{"4 minutes old", secret, headers("evt_1", now.Unix()-240, sign(secret, "evt_1", now.Unix()-240, body)), body, nil},
		{"6 minutes old", secret, headers("evt_1", now.Unix()-360, sign(secret, "evt_1", now.Unix()-360, body)), body, ErrWebhookTimestamp},
		{"6 minutes ahead", secret, headers("evt_1", now.Unix()+360, sign(secret, "evt_1", now.Unix()+360, body)), body, ErrWebhookTimestamp},
		{"body changed", secret, headers("evt_1", now.Unix(), good), body + " ", ErrWebhookSignature},
		{"id changed", secret, headers("evt_2", now.Unix(), good), body, ErrWebhookSignature},
		{"other secret", other, headers("evt_1", now.Unix(), good), body, ErrWebhookSignature},
		{"missing signature", secret, headers("evt_1", now.Unix(), ""), body, ErrWebhookHeaders},
		{"bad timestamp", secret, http.Header{"Webhook-Id": {"evt_1"}, "Webhook-Timestamp": {"soon"}, "Webhook-Signature": {good}}, body, ErrWebhookHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyWebhook(tt.secret, tt.h, []byte(tt.body), now)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("VerifyWebhook: %v, want %v", err, tt.wantErr)
			}
		})
	}
}
