package seal

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testKey returns a key whose 32 bytes are all b, so tests are reproducible.
func testKey(t testing.TB, b byte) Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{b}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testRing(t testing.TB, primary Key, old ...Key) *Keyring {
	t.Helper()
	r, err := NewKeyring(primary, old...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var sentinels = []error{ErrUnknownKey, ErrWrongKey, ErrWrongExperiment, ErrTampered, ErrUnsupportedVersion, ErrMalformed}

// wantOnly fails unless err is want and none of the other sentinels, so that
// each failure is reported as exactly one kind.
func wantOnly(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Fatalf("error %v is also %v", err, s)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	ring := testRing(t, testKey(t, 1))
	for _, size := range []int{0, 1, 31, 32, 1000, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			plain := bytes.Repeat([]byte("θ"), size)[:size]
			keyID, blob, err := ring.Seal("exp_1", plain)
			if err != nil {
				t.Fatal(err)
			}
			if keyID != ring.PrimaryID() {
				t.Errorf("key id = %q, want the primary %q", keyID, ring.PrimaryID())
			}
			if len(blob) != minBlobLen+size {
				t.Errorf("blob is %d bytes, want %d", len(blob), minBlobLen+size)
			}
			if size >= 16 && bytes.Contains(blob, plain[:16]) {
				t.Error("blob contains the plaintext")
			}
			got, err := ring.Open("exp_1", keyID, blob)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Errorf("opened %d bytes, want the %d sealed", len(got), len(plain))
			}
		})
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	ring := testRing(t, testKey(t, 1))
	_, a, _ := ring.Seal("exp_1", []byte("same"))
	_, b, _ := ring.Seal("exp_1", []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical: the nonce is not random")
	}
}

func TestSealRefusesEmptyExperimentID(t *testing.T) {
	ring := testRing(t, testKey(t, 1))
	if _, _, err := ring.Seal("", []byte("x")); err == nil {
		t.Fatal("sealing for an empty experiment id succeeded")
	}
}

func TestOpenRejects(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	ringA := testRing(t, a)
	keyID, blob, err := ringA.Seal("exp_1", []byte(`{"alpha":[3,4],"beta":[5,6]}`))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(blob)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name         string
		ring         *Keyring
		experimentID string
		keyID        string
		blob         []byte
		want         error
	}{
		{"version byte", ringA, "exp_1", keyID, flip(0), ErrUnsupportedVersion},
		{"key id in the envelope", ringA, "exp_1", keyID, flip(1), ErrWrongKey},
		{"experiment tag in the envelope", ringA, "exp_1", keyID, flip(9), ErrWrongExperiment},
		{"nonce first byte", ringA, "exp_1", keyID, flip(headerLen), ErrTampered},
		{"nonce last byte", ringA, "exp_1", keyID, flip(headerLen + nonceLen - 1), ErrTampered},
		{"ciphertext", ringA, "exp_1", keyID, flip(headerLen + nonceLen), ErrTampered},
		{"tag", ringA, "exp_1", keyID, flip(len(blob) - 1), ErrTampered},
		{"truncated tag", ringA, "exp_1", keyID, blob[:len(blob)-1], ErrTampered},
		{"appended byte", ringA, "exp_1", keyID, append(bytes.Clone(blob), 0), ErrTampered},
		{"truncated to less than an envelope", ringA, "exp_1", keyID, blob[:minBlobLen-1], ErrMalformed},
		{"empty blob", ringA, "exp_1", keyID, nil, ErrMalformed},
		{"moved to another experiment", ringA, "exp_2", keyID, blob, ErrWrongExperiment},
		{"unknown key id (ring without the key)", testRing(t, b), "exp_1", keyID, blob, ErrUnknownKey},
		{"wrong key (row names another key of the ring)", testRing(t, a, b), "exp_1", b.ID(), blob, ErrWrongKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ring.Open(tt.experimentID, tt.keyID, tt.blob)
			if got != nil {
				t.Errorf("returned %q along with the error", got)
			}
			wantOnly(t, err, tt.want)
		})
	}
}

// TestEveryBitFlipIsRejected flips each bit of an envelope in turn: none may
// open, and none may panic.
func TestEveryBitFlipIsRejected(t *testing.T) {
	ring := testRing(t, testKey(t, 1))
	keyID, blob, err := ring.Seal("exp_1", []byte("posterior"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(blob) * 8 {
		c := bytes.Clone(blob)
		c[i/8] ^= 1 << (i % 8)
		if got, err := ring.Open("exp_1", keyID, c); err == nil {
			t.Fatalf("flipping bit %d opened to %q", i, got)
		}
	}
}

// TestTamperedHeaderCannotBeForged checks that the diagnosis hints in the
// header are themselves authenticated: rewriting the experiment tag to the
// target experiment's moves the failure from ErrWrongExperiment to
// ErrTampered, never to success.
func TestTamperedHeaderCannotBeForged(t *testing.T) {
	ring := testRing(t, testKey(t, 1))
	keyID, blob, err := ring.Seal("exp_1", []byte("posterior"))
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Clone(blob)
	copy(forged[1+keyIDLen:headerLen], experimentTag("exp_2"))
	_, err = ring.Open("exp_2", keyID, forged)
	wantOnly(t, err, ErrTampered)
}

func TestOldKeysOpenAndPrimarySeals(t *testing.T) {
	oldKey, newKey := testKey(t, 1), testKey(t, 2)
	keyID, blob, err := testRing(t, oldKey).Seal("exp_1", []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	ring := testRing(t, newKey, oldKey)
	got, err := ring.Open("exp_1", keyID, blob)
	if err != nil || string(got) != "before" {
		t.Fatalf("opening with the old key kept for reading = %q, %v", got, err)
	}
	if id, _, _ := ring.Seal("exp_1", got); id != newKey.ID() {
		t.Errorf("sealed under %s, want the primary %s", id, newKey.ID())
	}
}

func TestNewKeyring(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	r := testRing(t, a, b, a, b)
	if got := strings.Join(r.IDs(), ","); got != a.ID()+","+b.ID() {
		t.Errorf("IDs = %s, want primary then old, each once", got)
	}
	if !r.Has(b.ID()) || r.Has("0000000000000000") {
		t.Error("Has answers wrongly")
	}
	if _, err := NewKeyring(Key{}); err == nil {
		t.Error("a keyring without a primary key was built")
	}
	if _, err := NewKeyring(a, Key{}); err == nil {
		t.Error("a keyring with a zero old key was built")
	}
}

func TestNilKeyringErrors(t *testing.T) {
	var r *Keyring
	if _, _, err := r.Seal("exp_1", nil); err == nil {
		t.Error("Seal on a nil keyring succeeded")
	}
	if _, err := r.Open("exp_1", "x", []byte{1}); err == nil {
		t.Error("Open on a nil keyring succeeded")
	}
}

func TestNewKeyRejectsWrongSize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewKey(make([]byte, n)); err == nil {
			t.Errorf("NewKey accepted %d bytes", n)
		}
	}
}

// TestKeyID pins the key id derivation: ids are stored in every row, so a
// change would make every existing row name an unknown key.
func TestKeyID(t *testing.T) {
	const want = "7251e5b1c05ea69c" // first 8 bytes of SHA-256("samplit-key-id" || 32 zero bytes)
	if got := KeyID(make([]byte, KeySize)); got != want {
		t.Fatalf("KeyID(zeros) = %s, want %s", got, want)
	}
	k := testKey(t, 0)
	if k.ID() != want {
		t.Fatalf("Key.ID() = %s, want %s", k.ID(), want)
	}
}

func TestKeyDoesNotPrintMaterial(t *testing.T) {
	k := testKey(t, 0xab)
	r := testRing(t, k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), fmt.Sprint(r), fmt.Sprintf("%+v", *r)} {
		if strings.Contains(s, "171") || strings.Contains(strings.ToLower(s), "abab") {
			t.Errorf("formatted key leaks its material: %s", s)
		}
	}
}

// TestGoldenEnvelope opens an envelope sealed by an earlier build and stored
// in testdata: what is in databases must stay readable. Run with -update only
// when deliberately adding a new golden file, never to make this pass.
func TestGoldenEnvelope(t *testing.T) {
	const experimentID = "exp_01jd6m3x0000000000000000"
	const plaintext = `{"strategy":"adaptive","alpha":[12,30],"beta":[90,71],"epoch":7}`
	ring := testRing(t, testKey(t, 7))
	path := filepath.Join("testdata", "envelope_v1.hex")
	if *update {
		_, blob, err := ring.Seal(experimentID, []byte(plaintext))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(blob)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ring.Open(experimentID, testKey(t, 7).ID(), blob)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != plaintext {
		t.Fatalf("opened %q, want %q", got, plaintext)
	}
}

func BenchmarkSealOpen(b *testing.B) {
	ring := testRing(b, testKey(b, 1))
	plain := bytes.Repeat([]byte("x"), 512)
	for b.Loop() {
		id, blob, err := ring.Seal("exp_1", plain)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ring.Open("exp_1", id, blob); err != nil {
			b.Fatal(err)
		}
	}
}
