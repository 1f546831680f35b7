// Package seal encrypts and authenticates experiments' optimizer state before
// it reaches the database, and re-seals it when the key changes.
//
// # Threat model
//
// Optimizer state (posterior parameters, weights, epochs) reveals how an
// experiment is going, which is business information a customer may not want
// in every database dump, backup or read replica. Sealing makes a dump of the
// database alone useless for reading that state: the key lives outside the
// database (an environment variable or a key file). Sealing also makes the
// state tamper-evident: a row edited in the database, or a blob copied from one
// experiment's row onto another's (to replay a favourable state), fails to open
// with a clear error instead of steering traffic with forged numbers.
//
// It does not protect against an attacker who holds both the database and the
// key (with SQLite and no configured key, the generated key file sits next to
// the database file, so a copy of that directory reveals the state; Samplit
// warns at start-up about exactly this), nor does it hide which experiments
// have state, how large it is, or when it changed.
//
// # Envelope format (version 1)
//
//	offset  size  field
//	0       1     version, 0x01
//	1       8     key id: the first 8 bytes of SHA-256("samplit-key-id" || key)
//	9       8     experiment tag: the first 8 bytes of SHA-256("samplit/state/v1/experiment\x00" || experiment id)
//	17      12    random nonce
//	29      n     AES-256-GCM ciphertext of the plaintext
//	29+n    16    GCM tag
//
// The additional authenticated data is the 17-byte header followed by the
// experiment id, so every header byte and the binding to the row's id are
// authenticated. The AES key is not the configured key itself but
// HKDF-SHA256(key, salt = none, info = "samplit/state/v1/seal\x00" || experiment
// id): a per-experiment key keeps the 2^32-messages bound of random 96-bit
// nonces per experiment rather than per database, and keeps the configured key
// usable for other purposes later without ever reusing an AES key across them.
//
// The key id and the experiment tag in the header carry no secret; they exist
// so that a failure can be named (wrong key, moved blob) instead of being one
// opaque "cannot decrypt". Those diagnoses come from unauthenticated bytes and
// are hints, not proofs; plaintext is returned only after GCM has verified the
// whole envelope. The key id is also stored beside the blob
// (store.SealedState.KeyID), so that rotation can find rows sealed under an old
// key without decrypting anything.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Version is the envelope version this package writes. A blob whose first
// byte is another value is refused with ErrUnsupportedVersion, so that a
// future format can be introduced without old code misreading it.
const Version byte = 1

// KeySize is the size of a state key in bytes (AES-256).
const KeySize = 32

const (
	keyIDLen   = 8
	expTagLen  = 8
	headerLen  = 1 + keyIDLen + expTagLen
	nonceLen   = 12
	tagLen     = 16
	minBlobLen = headerLen + nonceLen + tagLen

	keyIDDomain  = "samplit-key-id"
	expTagDomain = "samplit/state/v1/experiment\x00"
	sealInfo     = "samplit/state/v1/seal\x00"
)

// The errors Open reports. They are distinct so that an operator can tell a
// missing key (configure the old key) from damage or tampering (restore from a
// backup or reset the experiment's state); test for them with errors.Is. The
// returned errors wrap these with the experiment and key ids involved.
var (
	// ErrUnknownKey means the blob was sealed under a key that is not in the
	// keyring: the key was replaced without keeping the old one for reading,
	// or the process was started with another key altogether.
	ErrUnknownKey = errors.New("sealed state: key not in the keyring")
	// ErrWrongKey means the key id stored beside the blob differs from the
	// key id inside the envelope: the row's key id was edited, or the blob
	// was copied from a row sealed under another key.
	ErrWrongKey = errors.New("sealed state: blob was sealed under a different key than its row names")
	// ErrWrongExperiment means the envelope is bound to another experiment:
	// the blob was moved or copied from another experiment's row.
	ErrWrongExperiment = errors.New("sealed state: blob belongs to another experiment")
	// ErrTampered means authentication failed although the key and the
	// experiment match: the nonce, ciphertext or tag was changed or damaged.
	ErrTampered = errors.New("sealed state: authentication failed (tampered or damaged)")
	// ErrUnsupportedVersion means the envelope's version byte is not one this
	// build reads: written by a newer Samplit, or damaged.
	ErrUnsupportedVersion = errors.New("sealed state: unsupported envelope version")
	// ErrMalformed means the blob is too short to be an envelope at all.
	ErrMalformed = errors.New("sealed state: malformed blob")
)

// Key is one 32-byte state key and its id. The id is derived from the key
// material, so it needs no configuration, two different keys cannot share an
// id by accident, and the same key always has the same id on every replica.
// The id reveals nothing useful about the key (it is a truncated hash).
//
// Key's String and GoString print only the id, so that logging a Key by
// mistake never leaks its material.
type Key struct {
	id string
	// material is behind a pointer so that fmt, which prints unexported
	// fields by reflection without calling String, shows an address rather
	// than the bytes when a Key or Keyring is nested in a logged value.
	material *[KeySize]byte
}

// NewKey returns the key for 32 bytes of key material. It copies material.
func NewKey(material []byte) (Key, error) {
	if len(material) != KeySize {
		return Key{}, fmt.Errorf("state key must be %d bytes, got %d", KeySize, len(material))
	}
	k := Key{id: KeyID(material), material: new([KeySize]byte)}
	copy(k.material[:], material)
	return k, nil
}

// KeyID returns the id of the key material: the first 8 bytes of
// SHA-256("samplit-key-id" || material), in lower-case hex (16 characters).
func KeyID(material []byte) string {
	h := sha256.New()
	h.Write([]byte(keyIDDomain))
	h.Write(material)
	return hex.EncodeToString(h.Sum(nil)[:keyIDLen])
}

// ID returns the key's id, the value stored in store.SealedState.KeyID.
func (k Key) ID() string { return k.id }

// String returns a description naming only the key id.
func (k Key) String() string { return "seal.Key(" + k.id + ")" }

// GoString returns the same as String, so that %#v does not print the material.
func (k Key) GoString() string { return k.String() }

// Keyring holds the primary key, used to seal, and any number of old keys,
// kept so that state sealed before a rotation can still be opened. A Keyring
// is immutable once built and safe for concurrent use.
type Keyring struct {
	primary Key
	byID    map[string]Key
	ids     []string // primary first, then old keys in the order given
}

// NewKeyring returns a keyring that seals with primary and opens with primary
// or any of old. An old key equal to the primary, or given twice, is kept
// once.
func NewKeyring(primary Key, old ...Key) (*Keyring, error) {
	if primary.id == "" {
		return nil, errors.New("keyring: the primary key is not set")
	}
	r := &Keyring{primary: primary, byID: map[string]Key{primary.id: primary}, ids: []string{primary.id}}
	for i, k := range old {
		if k.id == "" {
			return nil, fmt.Errorf("keyring: old key %d is not set", i)
		}
		if _, dup := r.byID[k.id]; dup {
			continue
		}
		r.byID[k.id] = k
		r.ids = append(r.ids, k.id)
	}
	return r, nil
}

// PrimaryID returns the id of the key new seals use.
func (r *Keyring) PrimaryID() string { return r.primary.id }

// IDs returns the ids of every key in the ring, the primary first.
func (r *Keyring) IDs() []string { return slices.Clone(r.ids) }

// Has reports whether the ring holds a key with the id.
func (r *Keyring) Has(keyID string) bool {
	_, ok := r.byID[keyID]
	return ok
}

// String describes the ring by key ids only.
func (r *Keyring) String() string {
	if r == nil {
		return "seal.Keyring(nil)"
	}
	return "seal.Keyring(primary " + r.primary.id + ", keys " + strings.Join(r.ids, ",") + ")"
}

// Seal encrypts plaintext for the experiment under the primary key. It
// returns the primary key's id, to be stored beside the blob, and the
// envelope. The experiment id must be the id of the row the blob will be
// stored in: Open refuses the blob for any other id.
func (r *Keyring) Seal(experimentID string, plaintext []byte) (keyID string, blob []byte, err error) {
	if r == nil {
		return "", nil, errors.New("seal: no keyring")
	}
	if experimentID == "" {
		return "", nil, errors.New("seal: empty experiment id")
	}
	aead, err := experimentAEAD(r.primary, experimentID)
	if err != nil {
		return "", nil, err
	}
	header := make([]byte, headerLen, headerLen+nonceLen+len(plaintext)+tagLen)
	header[0] = Version
	if _, err := hex.Decode(header[1:1+keyIDLen], []byte(r.primary.id)); err != nil {
		return "", nil, fmt.Errorf("seal: bad key id %q: %w", r.primary.id, err)
	}
	copy(header[1+keyIDLen:], experimentTag(experimentID))
	blob = aead.Seal(header, nil, plaintext, additionalData(header, experimentID))
	return r.primary.id, blob, nil
}

// Open checks and decrypts a blob stored for the experiment under the key id
// stored beside it. It returns the plaintext only when the envelope is
// authentic, belongs to this experiment and was sealed under a key in the
// ring; otherwise an error wrapping one of the package's sentinel errors.
func (r *Keyring) Open(experimentID, keyID string, blob []byte) ([]byte, error) {
	if r == nil {
		return nil, errors.New("open sealed state: no keyring")
	}
	switch {
	case len(blob) == 0:
		return nil, fmt.Errorf("%w: experiment %s: empty blob", ErrMalformed, experimentID)
	case blob[0] != Version:
		return nil, fmt.Errorf("%w: experiment %s: version %d, this build reads %d (written by a newer Samplit, or damaged)",
			ErrUnsupportedVersion, experimentID, blob[0], Version)
	case len(blob) < minBlobLen:
		return nil, fmt.Errorf("%w: experiment %s: %d bytes, an envelope has at least %d",
			ErrMalformed, experimentID, len(blob), minBlobLen)
	}
	header := blob[:headerLen]
	if sealedWith := hex.EncodeToString(header[1 : 1+keyIDLen]); sealedWith != keyID {
		return nil, fmt.Errorf("%w: experiment %s: row names key %s, envelope was sealed under key %s",
			ErrWrongKey, experimentID, keyID, sealedWith)
	}
	key, ok := r.byID[keyID]
	if !ok {
		return nil, fmt.Errorf("%w: experiment %s is sealed under key %s; the keyring holds %s (keep the old key for reading, e.g. in SAMPLIT_STATE_OLD_KEYS)",
			ErrUnknownKey, experimentID, keyID, strings.Join(r.ids, ", "))
	}
	if !bytes.Equal(header[1+keyIDLen:], experimentTag(experimentID)) {
		return nil, fmt.Errorf("%w: blob stored for experiment %s was sealed for another experiment",
			ErrWrongExperiment, experimentID)
	}
	aead, err := experimentAEAD(key, experimentID)
	if err != nil {
		return nil, err
	}
	plaintext, err := aead.Open(nil, nil, blob[headerLen:], additionalData(header, experimentID))
	if err != nil {
		return nil, fmt.Errorf("%w: experiment %s, key %s", ErrTampered, experimentID, keyID)
	}
	return plaintext, nil
}

// experimentAEAD returns AES-256-GCM with random nonces under the key derived
// for the experiment (see the package comment for why a per-experiment key).
func experimentAEAD(k Key, experimentID string) (cipher.AEAD, error) {
	sub, err := hkdf.Key(sha256.New, k.material[:], nil, sealInfo+experimentID, KeySize)
	if err != nil {
		return nil, fmt.Errorf("seal: derive key: %w", err)
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return aead, nil
}

func experimentTag(experimentID string) []byte {
	sum := sha256.Sum256([]byte(expTagDomain + experimentID))
	return sum[:expTagLen]
}

func additionalData(header []byte, experimentID string) []byte {
	ad := make([]byte, 0, len(header)+len(experimentID))
	ad = append(ad, header...)
	return append(ad, experimentID...)
}
