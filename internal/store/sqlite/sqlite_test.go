package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/sqlite"
	"github.com/samplit/samplit/internal/store/sqlstore"
	"github.com/samplit/samplit/internal/store/storetest"
)

// open returns a migrated store on a new file in the test's temp dir.
func open(t testing.TB, opts sqlite.Options) *sqlstore.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "samplit.db"), opts)
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

func BenchmarkAssign1000(b *testing.B) {
	storetest.BenchmarkAssign(b, open(b, sqlite.Options{}), 1000)
}

func BenchmarkRecordEvents1000(b *testing.B) {
	storetest.BenchmarkRecordEvents(b, open(b, sqlite.Options{}), 1000)
}

// The NORMAL variants measure what synchronous=FULL costs.
func BenchmarkAssign1SyncNormal(b *testing.B) {
	storetest.BenchmarkAssign(b, open(b, sqlite.Options{Synchronous: "NORMAL"}), 1)
}

func BenchmarkRecordEvents1000SyncNormal(b *testing.B) {
	storetest.BenchmarkRecordEvents(b, open(b, sqlite.Options{Synchronous: "NORMAL"}), 1000)
}
