package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/dbtest"
	"github.com/samplit/samplit/internal/store/sqlite"
	"github.com/samplit/samplit/internal/store/sqlstore"
	"github.com/samplit/samplit/internal/store/storetest"
)

// open returns a migrated store on a new file in the test's temp dir (a
// copy of a migrated template; Migrate then finds nothing to do).
func open(t testing.TB, opts sqlite.Options) *sqlstore.Store {
	t.Helper()
	s, err := sqlite.Open(dbtest.SQLite(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, sqlite.Options{}) })
}

func TestOpenRefusesMemory(t *testing.T) {
	if _, err := sqlite.Open(":memory:", sqlite.Options{}); err == nil {
		t.Error("Open(:memory:) succeeded; two pools over memory would be two databases")
	}
}

func BenchmarkAssign1(b *testing.B) {
	storetest.BenchmarkAssign(b, open(b, sqlite.Options{}), 1)
}

// BenchmarkAssign12 is a group commit of new units about the size
// scripts/loadtest/run's 32 connections make (groups of 9–13).
func BenchmarkAssign12(b *testing.B) {
	storetest.BenchmarkAssign(b, open(b, sqlite.Options{}), 12)
}

func BenchmarkAssign1000(b *testing.B) {
	storetest.BenchmarkAssign(b, open(b, sqlite.Options{}), 1000)
}

func BenchmarkRecordEvents1000(b *testing.B) {
	storetest.BenchmarkRecordEvents(b, open(b, sqlite.Options{}), 1000)
}

func BenchmarkRecordCampaignEvents1000(b *testing.B) {
	storetest.BenchmarkRecordCampaignEvents(b, open(b, sqlite.Options{}), 1000)
}

func BenchmarkRecordProgress999(b *testing.B) {
	storetest.BenchmarkRecordProgress(b, open(b, sqlite.Options{}), 999)
}

// The NORMAL variants measure what synchronous=FULL costs.
func BenchmarkAssign1SyncNormal(b *testing.B) {
	storetest.BenchmarkAssign(b, open(b, sqlite.Options{Synchronous: "NORMAL"}), 1)
}

func BenchmarkRecordEvents1000SyncNormal(b *testing.B) {
	storetest.BenchmarkRecordEvents(b, open(b, sqlite.Options{Synchronous: "NORMAL"}), 1000)
}

// TestDurabilityPragmas: an acknowledged write must survive a power cut, which
// takes synchronous=FULL in WAL mode on the connection that writes (a kill -9
// keeps the page cache, so the kill test alone cannot tell FULL from OFF).
// NORMAL is accepted only when asked for; anything else is refused.
func TestDurabilityPragmas(t *testing.T) {
	pragma := func(s *sqlstore.Store, name string) string {
		t.Helper()
		var v string
		if err := s.WriteDB().QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	s := open(t, sqlite.Options{})
	// synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
	if got := pragma(s, "synchronous"); got != "2" {
		t.Errorf("synchronous = %s on the writer, want 2 (FULL)", got)
	}
	if got := pragma(s, "journal_mode"); got != "wal" {
		t.Errorf("journal_mode = %s, want wal", got)
	}
	if got := pragma(open(t, sqlite.Options{Synchronous: "normal"}), "synchronous"); got != "1" {
		t.Errorf("synchronous = %s with Synchronous normal, want 1", got)
	}
	if _, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"), sqlite.Options{Synchronous: "OFF"}); err == nil {
		t.Error("synchronous OFF was accepted")
	}
}
