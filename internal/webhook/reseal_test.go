package webhook

import (
	"crypto/rand"
	"testing"

	"github.com/samplit/samplit/internal/seal"
)

func randomKey(t *testing.T) seal.Key {
	t.Helper()
	var material [seal.KeySize]byte
	rand.Read(material[:])
	k, err := seal.NewKey(material[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestResealSecrets: after a state key rotation every webhook secret — the
// current one and the previous one of a secret rotation in its grace period
// — opens under the new key alone, with the same plaintext; a second run
// writes nothing; a ring without the old key reports the rows it cannot
// open instead of guessing.
func TestResealSecrets(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	oldKey, newKey := randomKey(t), randomKey(t)
	f.ring, _ = seal.NewKeyring(oldKey)
	f.svc = NewService(f.st, f.ring, f.clock.Now, true, nil)

	a, secretA := f.endpoint("http://127.0.0.1:9/a")
	b, _ := f.endpoint("http://127.0.0.1:9/b")
	b, secretB, err := f.svc.RotateSecret(ctx, f.ws, b.ID) // b keeps its previous secret for a while
	if err != nil {
		t.Fatal(err)
	}
	prevB, err := f.ring.Open(b.ID, b.PrevKeyID, b.PrevSecret)
	if err != nil {
		t.Fatal(err)
	}

	rotated, _ := seal.NewKeyring(newKey, oldKey)
	rep, err := ResealSecrets(ctx, f.st, rotated)
	if err != nil || rep.Scanned != 2 || rep.Resealed != 2 || rep.Failed != 0 {
		t.Fatalf("reseal: %+v, %v", rep, err)
	}
	if again, err := ResealSecrets(ctx, f.st, rotated); err != nil || again.Resealed != 0 {
		t.Fatalf("second run: %+v, %v", again, err)
	}

	onlyNew, _ := seal.NewKeyring(newKey)
	for _, tc := range []struct {
		id, want string
		prev     bool
	}{{a.ID, secretA, false}, {b.ID, secretB, false}, {b.ID, string(prevB), true}} {
		w, err := f.st.GetWebhook(ctx, f.ws, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		keyID, blob := w.SecretKeyID, w.Secret
		if tc.prev {
			keyID, blob = w.PrevKeyID, w.PrevSecret
		}
		if got, err := onlyNew.Open(w.ID, keyID, blob); err != nil || string(got) != tc.want {
			t.Errorf("webhook %s (previous %v): %q, %v; want the same secret under the new key", tc.id, tc.prev, got, err)
		}
	}

	// A ring with neither key reports each webhook and changes nothing.
	stranger, _ := seal.NewKeyring(randomKey(t))
	bad, err := ResealSecrets(ctx, f.st, stranger)
	if err != nil || bad.Failed != 2 || bad.Resealed != 0 || len(bad.Failures) != 2 {
		t.Fatalf("reseal with an unrelated key: %+v, %v", bad, err)
	}
	if w, _ := f.st.GetWebhook(ctx, f.ws, a.ID); w.SecretKeyID != newKey.ID() {
		t.Fatalf("a failed reseal changed the row: key %s", w.SecretKeyID)
	}
}
