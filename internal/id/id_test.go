package id

import (
	"encoding/binary"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNewIsPrefixedUniqueAndOrdered(t *testing.T) {
	const n = 10000
	ids := make([]string, n)
	seen := make(map[string]bool, n)
	for i := range ids {
		ids[i] = New(Experiment)
		if !HasPrefix(ids[i], Experiment) {
			t.Fatalf("id %q does not have the exp_ prefix and 26 characters", ids[i])
		}
		if seen[ids[i]] {
			t.Fatalf("duplicate id %q", ids[i])
		}
		seen[ids[i]] = true
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids made one after another do not sort in creation order")
	}
}

// NewRequest's ids are New's format: the prefix, a UUIDv7 (version and
// variant bits in place, the time of the call in its first 48 bits) in 26
// base32 characters, and distinct.
func TestNewRequestIsAUUIDv7(t *testing.T) {
	const n = 100000
	seen := make(map[string]bool, n)
	for range n {
		before := time.Now().UnixMilli()
		s := NewRequest()
		after := time.Now().UnixMilli()
		if !HasPrefix(s, Request) {
			t.Fatalf("id %q does not have the req_ prefix and 26 characters", s)
		}
		if seen[s] {
			t.Fatalf("duplicate id %q", s)
		}
		seen[s] = true
		u := decodeForTest(t, s[len(Request)+1:])
		if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("id %q decodes to %s: version %d, variant %s, want a version 7 RFC 4122 UUID", s, u, u.Version(), u.Variant())
		}
		sec, nsec := u.Time().UnixTime()
		ms := sec*1000 + nsec/1e6
		if ms < before || ms > after {
			t.Fatalf("id %q carries the time %d ms, not between %d and %d", s, ms, before, after)
		}
	}
}

// decodeForTest inverts appendEncoded.
func decodeForTest(t *testing.T, s string) uuid.UUID {
	t.Helper()
	var hi, lo uint64
	for i := 0; i < len(s); i++ {
		v := strings.IndexByte(crockford, s[i])
		if v < 0 {
			t.Fatalf("%q is not lower-case Crockford base32", s)
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[:8], hi)
	binary.BigEndian.PutUint64(u[8:], lo)
	return u
}
