package apikey

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/store/dbtest"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := backend.Open(t.Context(), dbtest.SQLite(t), backend.Options{AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestGenerateAndParse(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k := Generate()
		lookup, ok := Parse(k)
		if !ok {
			t.Fatalf("Parse(%q) refused a generated key", k)
		}
		if !strings.HasPrefix(k, "sk_"+lookup+"_") || len(lookup) != 12 {
			t.Fatalf("key %q, lookup %q", k, lookup)
		}
		if seen[lookup] {
			t.Fatalf("lookup %q repeated", lookup)
		}
		seen[lookup] = true
	}
	good := "sk_abcdefghijk2_ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	if _, ok := Parse(good); !ok {
		t.Fatalf("Parse(%q) = false", good)
	}
	for _, bad := range []string{
		"", "sk_", "sk__", "pk_abcdefghijk2_ABCDEFGHIJKLMNOPQRSTUVWXYZ",
		"sk_abcdefghijk_ABCDEFGHIJKLMNOPQRSTUVWXYZ",   // lookup too short
		"sk_abcdefghijk2_ABCDEFGHIJKLMNOPQRSTUVWXY",   // secret too short
		"sk_ABCDEFGHIJK2_ABCDEFGHIJKLMNOPQRSTUVWXYZ",  // lookup upper case
		"sk_abcdefghijk2_abcdefghijklmnopqrstuvwxyz",  // secret lower case
		"sk_abcdefghijk1_ABCDEFGHIJKLMNOPQRSTUVWXYZ",  // 1 is not base32
		"sk_abcdefghijk2_ABCDEFGHIJKLMNOPQRSTUVWXYZ_", // trailing separator
		"sk_abcdefghijk2_ABCDEFGHIJKLMNOPQRSTUVWXYZ\n",
		"sk_abcdefghijk2_" + strings.Repeat("A", 129),
	} {
		if _, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) = true", bad)
		}
	}
}

func TestVerify(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	now := time.Now()
	plain, _, err := Bootstrap(ctx, st, "", now)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Verify(ctx, st, plain)
	if err != nil || k.Scope != store.ScopeAdmin {
		t.Fatalf("Verify(bootstrap key) = %v, %v", k, err)
	}
	lookup, _ := Parse(plain)
	forged := "sk_" + lookup + "_" + strings.Repeat("A", 26)
	for name, key := range map[string]string{
		"empty": "", "malformed": "hello", "unknown": Generate(), "wrong secret": forged,
	} {
		if _, err := Verify(ctx, st, key); !apperr.Is(err, apperr.Unauthorized) {
			t.Errorf("%s: Verify = %v, want Unauthorized", name, err)
		}
	}
	if err := Revoke(ctx, st, DefaultWorkspace, k.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, st, plain); !apperr.Is(err, apperr.Unauthorized) {
		t.Errorf("revoked: Verify = %v, want Unauthorized", err)
	}
}

func TestBootstrap(t *testing.T) {
	ctx := t.Context()
	now := time.Now()

	t.Run("empty database, new key", func(t *testing.T) {
		st := openStore(t)
		plain, created, err := Bootstrap(ctx, st, "", now)
		if err != nil || !created || !strings.HasPrefix(plain, "sk_") {
			t.Fatalf("Bootstrap = %q, %v, %v", plain, created, err)
		}
		ws, err := st.GetWorkspaceByName(ctx, DefaultWorkspace)
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := st.ListKeys(ctx, ws.ID)
		if len(keys) != 1 || keys[0].Scope != store.ScopeAdmin || string(keys[0].Hash) == plain {
			t.Fatalf("keys = %+v", keys)
		}
		// A second start on the same database creates nothing.
		again, created, err := Bootstrap(ctx, st, "", now)
		if err != nil || created || again != "" {
			t.Fatalf("second Bootstrap = %q, %v, %v", again, created, err)
		}
	})

	t.Run("empty database, given key", func(t *testing.T) {
		st := openStore(t)
		given := Generate()
		plain, created, err := Bootstrap(ctx, st, given, now)
		if err != nil || !created || plain != given {
			t.Fatalf("Bootstrap = %q, %v, %v", plain, created, err)
		}
		if _, err := Verify(ctx, st, given); err != nil {
			t.Fatal(err)
		}
		// The same key again: known, nothing created.
		plain, created, err = Bootstrap(ctx, st, given, now)
		if err != nil || created || plain != given {
			t.Fatalf("repeat Bootstrap = %q, %v, %v", plain, created, err)
		}
	})

	t.Run("non-empty database, new given key", func(t *testing.T) {
		st := openStore(t)
		if _, _, err := Bootstrap(ctx, st, "", now); err != nil {
			t.Fatal(err)
		}
		given := Generate()
		plain, created, err := Bootstrap(ctx, st, given, now)
		if err != nil || !created || plain != given {
			t.Fatalf("Bootstrap = %q, %v, %v", plain, created, err)
		}
		k, err := Verify(ctx, st, given)
		if err != nil || k.Scope != store.ScopeAdmin {
			t.Fatalf("Verify = %+v, %v", k, err)
		}
		if n, _ := st.CountWorkspaces(ctx); n != 1 {
			t.Errorf("%d workspaces, want 1", n)
		}
	})

	t.Run("revoked given key", func(t *testing.T) {
		st := openStore(t)
		given := Generate()
		if _, _, err := Bootstrap(ctx, st, given, now); err != nil {
			t.Fatal(err)
		}
		k, _ := Verify(ctx, st, given)
		if err := Revoke(ctx, st, DefaultWorkspace, k.ID, now); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Bootstrap(ctx, st, given, now); !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("Bootstrap with a revoked key = %v, want Conflict", err)
		}
	})

	t.Run("malformed given key", func(t *testing.T) {
		st := openStore(t)
		if _, _, err := Bootstrap(ctx, st, "secret", now); !apperr.Is(err, apperr.Invalid) {
			t.Fatalf("Bootstrap = %v, want Invalid", err)
		}
		if n, _ := st.CountWorkspaces(ctx); n != 0 {
			t.Errorf("a refused bootstrap created %d workspaces", n)
		}
	})
}

func TestCreateListRevoke(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	now := time.Now().UTC().Truncate(time.Second)
	if _, _, err := Bootstrap(ctx, st, "", now); err != nil {
		t.Fatal(err)
	}
	plain, k, err := Create(ctx, st, DefaultWorkspace, "", store.ScopeAssign, now)
	if err != nil {
		t.Fatal(err)
	}
	if k.Hash != nil || k.Name != "assign key" || k.Scope != store.ScopeAssign {
		t.Errorf("Create returned %+v", k)
	}
	if v, err := Verify(ctx, st, plain); err != nil || v.ID != k.ID {
		t.Fatalf("Verify(created) = %+v, %v", v, err)
	}
	if _, _, err := Create(ctx, st, DefaultWorkspace, "x", "root", now); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("Create with a bad scope = %v", err)
	}
	if _, _, err := Create(ctx, st, "nope", "x", store.ScopeWrite, now); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("Create in an unknown workspace = %v", err)
	}
	if _, _, err := Create(ctx, st, DefaultWorkspace, "bad\x00name", store.ScopeWrite, now); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("Create with a bad name = %v", err)
	}

	list, err := List(ctx, st, DefaultWorkspace)
	if err != nil {
		t.Fatal(err)
	}
	var scopes []store.Scope
	for _, l := range list {
		if l.Hash != nil {
			t.Errorf("List returns a hash for %s", l.ID)
		}
		scopes = append(scopes, l.Scope)
	}
	if diff := cmp.Diff([]store.Scope{store.ScopeAdmin, store.ScopeAssign}, scopes); diff != "" {
		t.Errorf("scopes mismatch (-want +got):\n%s", diff)
	}

	if err := Revoke(ctx, st, DefaultWorkspace, k.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, st, plain); !apperr.Is(err, apperr.Unauthorized) {
		t.Errorf("Verify(revoked) = %v", err)
	}
	if err := Revoke(ctx, st, DefaultWorkspace, "key_nope", now); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("Revoke(unknown) = %v", err)
	}
	list, _ = List(ctx, st, DefaultWorkspace)
	for _, l := range list {
		if l.ID == k.ID && l.RevokedAt == nil {
			t.Error("List shows the revoked key as active")
		}
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"default": true, "Acme Inc.": true, "café 🚀": true,
		"": false, " x": false, "x\n": false, "a\u202eb": false, "a\u200bb": false, "a\xffb": false,
		strings.Repeat("n", 100): true, strings.Repeat("n", 101): false,
	} {
		if got := ValidName(name) == ""; got != want {
			t.Errorf("ValidName(%q) valid = %v, want %v (%s)", name, got, want, ValidName(name))
		}
	}
}
