// Package apikey makes, checks and manages Samplit's API keys.
//
// A key looks like "sk_<lookup>_<secret>": lookup is 12 lower-case base32
// characters that find the stored row, secret is crypto/rand.Text() (at least
// 128 random bits, upper-case base32). The database holds only the lookup and
// the SHA-256 of the whole key, so a leaked database does not leak usable
// keys, and a key is shown exactly once, when it is made.
//
// Why a plain SHA-256 and not a slow password hash: the secret has at least
// 128 bits of entropy, so brute force is hopeless whatever the hash, and a
// fast hash keeps authentication off the request latency budget. The lookup
// part lets the store find the row by an indexed equality instead of scanning
// hashes; the final comparison is constant time.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// Prefix starts every key, so that secret scanners and people can recognise one.
const Prefix = "sk_"

// DefaultWorkspace is the name of the workspace Bootstrap creates.
const DefaultWorkspace = "default"

const (
	lookupLen    = 12
	minSecretLen = 26 // what crypto/rand.Text returns today: 130 bits
	maxSecretLen = 128
	maxNameLen   = 100
)

// Repo is what this package needs of a store: workspaces and keys. A
// store.Store satisfies it.
type Repo interface {
	store.Workspaces
	store.Keys
}

// Generate returns a new random key in the "sk_<lookup>_<secret>" format.
func Generate() string {
	lookup := strings.ToLower(rand.Text()[:lookupLen])
	return Prefix + lookup + "_" + rand.Text()
}

// Parse checks that key has the format of a Samplit key and returns its
// lookup part. It does not consult the store.
func Parse(key string) (lookup string, ok bool) {
	rest, found := strings.CutPrefix(key, Prefix)
	if !found {
		return "", false
	}
	lookup, secret, found := strings.Cut(rest, "_")
	if !found || len(lookup) != lookupLen || len(secret) < minSecretLen || len(secret) > maxSecretLen {
		return "", false
	}
	for i := 0; i < len(lookup); i++ {
		if c := lookup[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", false
		}
	}
	for i := 0; i < len(secret); i++ {
		if c := secret[i]; !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return "", false
		}
	}
	return lookup, true
}

// Hash returns the SHA-256 of the whole key, the only form of it that is stored.
func Hash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// New makes a new key for the workspace and returns its plaintext (to show
// once) and the row to store. It stores nothing.
func New(workspaceID, name string, scope store.Scope, now time.Time) (string, store.APIKey) {
	return fromPlaintext(Generate(), workspaceID, name, scope, now)
}

func fromPlaintext(plaintext, workspaceID, name string, scope store.Scope, now time.Time) (string, store.APIKey) {
	lookup, _ := Parse(plaintext)
	return plaintext, store.APIKey{
		ID:          id.New(id.Key),
		WorkspaceID: workspaceID,
		Name:        name,
		Scope:       scope,
		Lookup:      lookup,
		Hash:        Hash(plaintext),
		CreatedAt:   now.UTC(),
	}
}

// errUnauthorized is the one answer for every kind of bad key, so that a
// caller cannot tell a malformed key from an unknown or revoked one by the
// message (the log says which).
func errUnauthorized(cause error) error {
	return apperr.Wrap(apperr.Unauthorized, cause, "the API key is missing, invalid or revoked")
}

// Verify finds the key and checks it: its hash must match in constant time
// and it must not be revoked. Any failure is an Unauthorized *apperr.Error;
// only a failing store gives another error.
func Verify(ctx context.Context, keys store.Keys, key string) (store.APIKey, error) {
	lookup, ok := Parse(key)
	if !ok {
		return store.APIKey{}, errUnauthorized(errors.New("malformed key"))
	}
	k, err := keys.KeyByLookup(ctx, lookup)
	if apperr.Is(err, apperr.NotFound) {
		// Hash anyway so that unknown lookups take about as long as known ones.
		subtle.ConstantTimeCompare(Hash(key), make([]byte, sha256.Size))
		return store.APIKey{}, errUnauthorized(errors.New("unknown key"))
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("look up key %s: %w", lookup, err)
	}
	if subtle.ConstantTimeCompare(Hash(key), k.Hash) != 1 {
		return store.APIKey{}, errUnauthorized(errors.New("key hash mismatch"))
	}
	if k.RevokedAt != nil {
		return store.APIKey{}, errUnauthorized(fmt.Errorf("key %s revoked", k.ID))
	}
	return k, nil
}

// Bootstrap makes sure the server can be reached on first start.
//
// On an empty database (no workspace) it creates the workspace "default" and
// an admin key in one transaction: givenKey when it is not empty (it must
// have the key format), else a new one. It returns the plaintext and
// created=true, and the caller prints it once.
//
// With givenKey on a database that already has workspaces, it makes sure the
// key exists, creating it as an admin key of the "default" workspace when it
// does not, so that scripts and tests can rely on SAMPLIT_BOOTSTRAP_KEY
// whatever state the database is in. A given key that exists but was revoked
// is an error: reviving a revoked key silently would defeat revocation.
//
// Bootstrap is safe when several replicas start together on one database: a
// replica that loses the race to create the workspace or key sees Conflict
// and falls back to checking what the winner stored.
func Bootstrap(ctx context.Context, st Repo, givenKey string, now time.Time) (plaintext string, created bool, err error) {
	if givenKey != "" {
		if _, ok := Parse(givenKey); !ok {
			return "", false, apperr.New(apperr.Invalid, "the bootstrap key must look like sk_<12 base32 lower-case>_<26+ base32 upper-case>; leave it empty to have one made")
		}
	}
	n, err := st.CountWorkspaces(ctx)
	if err != nil {
		return "", false, fmt.Errorf("bootstrap: count workspaces: %w", err)
	}
	if n == 0 {
		ws := store.Workspace{ID: id.New(id.Workspace), Name: DefaultWorkspace, CreatedAt: now.UTC()}
		key := givenKey
		if key == "" {
			key = Generate()
		}
		plain, k := fromPlaintext(key, ws.ID, "bootstrap admin", store.ScopeAdmin, now)
		err := st.CreateWorkspaceWithKey(ctx, ws, k)
		if err == nil {
			return plain, true, nil
		}
		if !apperr.Is(err, apperr.Conflict) {
			return "", false, fmt.Errorf("bootstrap: create workspace: %w", err)
		}
		// Another replica bootstrapped first; fall through to its result.
	}
	if givenKey == "" {
		return "", false, nil
	}
	return ensureKey(ctx, st, givenKey, now)
}

// ensureKey makes sure givenKey is stored and usable.
func ensureKey(ctx context.Context, st Repo, givenKey string, now time.Time) (string, bool, error) {
	for attempt := 0; attempt < 2; attempt++ {
		_, err := Verify(ctx, st, givenKey)
		if err == nil {
			return givenKey, false, nil
		}
		if !apperr.Is(err, apperr.Unauthorized) {
			return "", false, fmt.Errorf("bootstrap: %w", err)
		}
		lookup, _ := Parse(givenKey)
		existing, lerr := st.KeyByLookup(ctx, lookup)
		switch {
		case lerr == nil && existing.RevokedAt != nil:
			return "", false, apperr.New(apperr.Conflict, "the bootstrap key %s was revoked; unset SAMPLIT_BOOTSTRAP_KEY or give another key", existing.ID)
		case lerr == nil:
			return "", false, apperr.New(apperr.Conflict, "another key already uses the lookup part of the bootstrap key; give another key")
		case !apperr.Is(lerr, apperr.NotFound):
			return "", false, fmt.Errorf("bootstrap: look up key: %w", lerr)
		}
		ws, err := st.GetWorkspaceByName(ctx, DefaultWorkspace)
		if err != nil {
			return "", false, fmt.Errorf("bootstrap: find workspace %q for the bootstrap key: %w", DefaultWorkspace, err)
		}
		plain, k := fromPlaintext(givenKey, ws.ID, "bootstrap admin", store.ScopeAdmin, now)
		err = st.CreateKey(ctx, k)
		if err == nil {
			return plain, true, nil
		}
		if !apperr.Is(err, apperr.Conflict) {
			return "", false, fmt.Errorf("bootstrap: create key: %w", err)
		}
		// A replica stored the same key meanwhile: verify again.
	}
	return "", false, errors.New("bootstrap: the bootstrap key could not be stored")
}

// ValidName checks a workspace or key name: 1 to 100 characters, printable,
// no control or formatting characters. It returns a reason, or "" when valid.
func ValidName(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len([]rune(name)) > maxNameLen:
		return fmt.Sprintf("must be at most %d characters", maxNameLen)
	case strings.TrimSpace(name) != name:
		return "must not start or end with spaces"
	}
	if reason := printable(name); reason != "" {
		return reason
	}
	return ""
}

// Create makes a key with the scope in the named workspace, stores it and
// returns its plaintext (to print once) and the stored row (without using the
// hash for anything else). It serves `samplit keys create`.
func Create(ctx context.Context, st Repo, workspaceName, name string, scope store.Scope, now time.Time) (string, store.APIKey, error) {
	if !scope.Valid() {
		return "", store.APIKey{}, apperr.New(apperr.Invalid, "scope must be admin, write or assign, not %q", scope)
	}
	if name == "" {
		name = string(scope) + " key"
	}
	if reason := ValidName(name); reason != "" {
		return "", store.APIKey{}, apperr.New(apperr.Invalid, "key name %s", reason)
	}
	ws, err := st.GetWorkspaceByName(ctx, workspaceName)
	if err != nil {
		return "", store.APIKey{}, fmt.Errorf("find workspace %q: %w", workspaceName, err)
	}
	plain, k := New(ws.ID, name, scope, now)
	if err := st.CreateKey(ctx, k); err != nil {
		return "", store.APIKey{}, fmt.Errorf("create key: %w", err)
	}
	return plain, redact(k), nil
}

// List returns the keys of the named workspace, revoked ones included,
// without their hashes. It serves `samplit keys list`.
func List(ctx context.Context, st Repo, workspaceName string) ([]store.APIKey, error) {
	ws, err := st.GetWorkspaceByName(ctx, workspaceName)
	if err != nil {
		return nil, fmt.Errorf("find workspace %q: %w", workspaceName, err)
	}
	keys, err := st.ListKeys(ctx, ws.ID)
	if err != nil {
		return nil, fmt.Errorf("list keys of %q: %w", workspaceName, err)
	}
	for i := range keys {
		keys[i] = redact(keys[i])
	}
	return keys, nil
}

// Revoke revokes the key with the id in the named workspace; a revoked key
// is refused from the next request on. Revoking twice is not an error. It
// serves `samplit keys revoke`. The workspace is required because the store
// scopes every key operation by workspace.
func Revoke(ctx context.Context, st Repo, workspaceName, keyID string, now time.Time) error {
	ws, err := st.GetWorkspaceByName(ctx, workspaceName)
	if err != nil {
		return fmt.Errorf("find workspace %q: %w", workspaceName, err)
	}
	if err := st.RevokeKey(ctx, ws.ID, keyID, now.UTC()); err != nil {
		return fmt.Errorf("revoke key %s: %w", keyID, err)
	}
	return nil
}

// redact drops the hash so that it does not travel further than needed.
func redact(k store.APIKey) store.APIKey {
	k.Hash = nil
	return k
}

// printable rejects text that displays misleadingly or breaks logs and
// terminals: invalid UTF-8, control characters (NUL, newlines) and format
// characters such as the right-to-left override.
func printable(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return fmt.Sprintf("must not contain the character %U", r)
		}
	}
	return ""
}
