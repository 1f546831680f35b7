package seal_test

import (
	"errors"
	"fmt"

	"github.com/samplit/samplit/internal/seal"
)

// The state of an experiment is sealed for its row and opened from it; the
// same blob read for another experiment does not open.
func Example() {
	// In production the key comes from LoadKeyring; here, a fixed one.
	key, err := seal.ParseKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		panic(err)
	}
	ring, err := seal.NewKeyring(key)
	if err != nil {
		panic(err)
	}

	keyID, blob, err := ring.Seal("exp_1", []byte(`{"alpha":[3,9],"beta":[8,2]}`))
	if err != nil {
		panic(err)
	}
	// keyID and blob go into store.SealedState.KeyID and .Blob.
	state, err := ring.Open("exp_1", keyID, blob)
	fmt.Println(string(state), err)

	_, err = ring.Open("exp_2", keyID, blob)
	fmt.Println(errors.Is(err, seal.ErrWrongExperiment))

	blob[len(blob)-1] ^= 1
	_, err = ring.Open("exp_1", keyID, blob)
	fmt.Println(errors.Is(err, seal.ErrTampered))
	// Output:
	// {"alpha":[3,9],"beta":[8,2]} <nil>
	// true
	// true
}

// Rotation keeps the old key for reading while the new one seals.
func ExampleNewKeyring_rotation() {
	oldKey, _ := seal.ParseKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	newKey, _ := seal.ParseKey("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=")
	before, _ := seal.NewKeyring(oldKey)
	keyID, blob, _ := before.Seal("exp_1", []byte("posterior"))

	after, _ := seal.NewKeyring(newKey, oldKey)
	state, err := after.Open("exp_1", keyID, blob)
	fmt.Println(string(state), err)
	newID, _, _ := after.Seal("exp_1", state)
	fmt.Println(keyID == oldKey.ID(), newID == newKey.ID())
	// Output:
	// posterior <nil>
	// true true
}
