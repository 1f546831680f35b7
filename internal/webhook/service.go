package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
)

// RotationOverlap is how long after a secret rotation deliveries are still
// signed with the old secret too, so that receivers can switch at leisure.
const RotationOverlap = 24 * time.Hour

// Service manages endpoints for the API: it checks URLs, makes secrets and
// seals them. Reads, deletes and delivery retries go to the store directly.
type Service struct {
	st           store.Store
	ring         *seal.Keyring
	now          func() time.Time
	allowPrivate bool
	resolver     Resolver
}

// NewService returns the endpoint service. now and resolver may be nil
// (time.Now, the system resolver).
func NewService(st store.Store, ring *seal.Keyring, now func() time.Time, allowPrivate bool, resolver Resolver) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, ring: ring, now: now, allowPrivate: allowPrivate, resolver: resolver}
}

// CheckURL validates raw for registration under the service's settings;
// a refusal is a *URLError.
func (s *Service) CheckURL(ctx context.Context, raw string) error {
	return CheckURL(ctx, raw, s.allowPrivate, s.resolver)
}

// sealSecret seals a secret bound to the webhook's id: a sealed secret
// copied into another webhook's row does not open.
func (s *Service) sealSecret(webhookID, secret string) (keyID string, blob []byte, err error) {
	keyID, blob, err = s.ring.Seal(webhookID, []byte(secret))
	if err != nil {
		return "", nil, fmt.Errorf("seal webhook secret: %w", err)
	}
	return keyID, blob, nil
}

// Create registers an endpoint and returns it with its secret, which is
// never shown again. w.URL must have passed CheckURL.
func (s *Service) Create(ctx context.Context, w store.Webhook) (store.Webhook, string, error) {
	now := s.now().UTC()
	w.ID = id.New(id.Webhook)
	w.Enabled = true
	w.CreatedAt, w.UpdatedAt = now, now
	secret := NewSecret()
	var err error
	if w.SecretKeyID, w.Secret, err = s.sealSecret(w.ID, secret); err != nil {
		return store.Webhook{}, "", err
	}
	if err := s.st.CreateWebhook(ctx, w); err != nil {
		return store.Webhook{}, "", err
	}
	got, err := s.st.GetWebhook(ctx, w.WorkspaceID, w.ID)
	return got, secret, err
}

// RotateSecret gives the endpoint a new secret and returns it; the old one
// keeps signing too for RotationOverlap.
func (s *Service) RotateSecret(ctx context.Context, workspaceID, webhookID string) (store.Webhook, string, error) {
	now := s.now().UTC()
	secret := NewSecret()
	keyID, blob, err := s.sealSecret(webhookID, secret)
	if err != nil {
		return store.Webhook{}, "", err
	}
	w, err := s.st.RotateWebhookSecret(ctx, workspaceID, webhookID, store.SecretRotation{
		KeyID: keyID, Secret: blob, PrevUntil: now.Add(RotationOverlap), At: now,
	})
	return w, secret, err
}

// Test queues a ping to the endpoint, due now.
func (s *Service) Test(ctx context.Context, workspaceID, webhookID string) (store.Delivery, error) {
	return s.st.TestWebhook(ctx, workspaceID, webhookID, Ping(workspaceID, webhookID, s.now()))
}

// Now is the service's clock, for handlers that write with the same time.
func (s *Service) Now() time.Time { return s.now().UTC() }
