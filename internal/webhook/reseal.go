package webhook

import (
	"context"
	"fmt"

	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
)

// ResealReport counts what ResealSecrets did.
type ResealReport struct {
	Scanned  int // webhooks listed
	Resealed int // webhooks whose secrets were sealed anew under the primary key
	Failed   int // webhooks whose secrets did not open with the ring (see Failures)
	Failures []string
}

// String summarises the report for the CLI.
func (r ResealReport) String() string {
	return fmt.Sprintf("webhook secrets: scanned %d, resealed %d, failed %d", r.Scanned, r.Resealed, r.Failed)
}

// resealAttempts bounds the retries of one webhook whose secret a
// concurrent rotation keeps changing.
const resealAttempts = 5

// ResealSecrets seals every webhook's signing secrets (the current one and,
// during a rotation's grace period, the previous one) under the ring's
// primary key, so that the old state key can be dropped without breaking
// deliveries. It is the webhook half of `samplit state rotate-key`
// (seal.Rotate does the optimizer states) and, like it, safe while servers
// run: the write is conditional on the key ids it read, and a concurrent
// secret rotation makes it reload and start over.
func ResealSecrets(ctx context.Context, st store.Webhooks, ring *seal.Keyring) (ResealReport, error) {
	var rep ResealReport
	after := ""
	for {
		page, err := st.ListAllWebhooks(ctx, after, 200)
		if err != nil {
			return rep, err
		}
		if len(page) == 0 {
			return rep, nil
		}
		for _, w := range page {
			rep.Scanned++
			after = w.ID
			done, err := resealOne(ctx, st, ring, w)
			if err != nil {
				rep.Failed++
				rep.Failures = append(rep.Failures, fmt.Sprintf("webhook %s: %v", w.ID, err))
				continue
			}
			if done {
				rep.Resealed++
			}
		}
	}
}

// resealOne reseals w and reports whether anything was written.
func resealOne(ctx context.Context, st store.Webhooks, ring *seal.Keyring, w store.Webhook) (bool, error) {
	primary := ring.PrimaryID()
	for range resealAttempts {
		if w.SecretKeyID == primary && (w.PrevKeyID == "" || w.PrevKeyID == primary) {
			return false, nil
		}
		next := w
		var err error
		if next.SecretKeyID, next.Secret, err = reseal(ring, w.ID, w.SecretKeyID, w.Secret); err != nil {
			return false, err
		}
		if w.PrevKeyID != "" {
			if next.PrevKeyID, next.PrevSecret, err = reseal(ring, w.ID, w.PrevKeyID, w.PrevSecret); err != nil {
				return false, err
			}
		}
		ok, err := st.ResealWebhook(ctx, next, w.SecretKeyID, w.PrevKeyID)
		if err != nil || ok {
			return ok, err
		}
		// A secret rotation came in between: start again from the row.
		if w, err = st.GetWebhook(ctx, w.WorkspaceID, w.ID); err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("its secret kept changing during %d attempts; run again", resealAttempts)
}

func reseal(ring *seal.Keyring, webhookID, keyID string, blob []byte) (string, []byte, error) {
	plain, err := ring.Open(webhookID, keyID, blob)
	if err != nil {
		return "", nil, err
	}
	return ring.Seal(webhookID, plain)
}
