package postgres_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/dbtest"
	"github.com/samplit/samplit/internal/store/postgres"
	"github.com/samplit/samplit/internal/store/sqlstore"
	"github.com/samplit/samplit/internal/store/storetest"
)

var (
	adminOnce sync.Once
	adminDB   *sql.DB
	adminErr  error
)

// admin returns a shared connection pool for creating and dropping the
// per-test schemas and databases.
func admin(t testing.TB) *sql.DB {
	t.Helper()
	u := dbtest.PostgresURL(t)
	adminOnce.Do(func() {
		adminDB, adminErr = sql.Open("pgx", u)
		if adminErr == nil {
			adminDB.SetMaxOpenConns(4)
			adminErr = adminDB.PingContext(context.Background())
		}
	})
	if adminErr != nil {
		t.Fatalf("connect to SAMPLIT_TEST_POSTGRES_URL: %v", adminErr)
	}
	return adminDB
}

// uniqueName returns a fresh lower-case identifier with the prefix.
func uniqueName(prefix string) string {
	return prefix + strings.ToLower(rand.Text()[:16])
}

// newSchema creates a schema of the test database, dropped when the test
// ends, and returns its name and the URL whose connections land in it: the
// schema is chosen by the search_path runtime parameter, which pgx sends at
// connection start, so that every connection of a pool, and the migration,
// lands in it.
func newSchema(t testing.TB) (schema, url string) {
	t.Helper()
	db := admin(t)
	schema = uniqueName("samplit_test_")
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema, dbtest.WithParam(t, dbtest.PostgresURL(t), "search_path", schema)
}

// openSchema returns a migrated store in a new schema (newSchema).
func openSchema(t testing.TB, opts postgres.Options) *sqlstore.Store {
	t.Helper()
	_, u := newSchema(t)
	s, err := postgres.Open(u, opts)
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
	dbtest.PostgresURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openSchema(t, postgres.Options{}) })
}

// TestConformanceSimpleProtocol runs the suite without prepared statements
// on a direct connection: the query text pgx interpolates must work too.
func TestConformanceSimpleProtocol(t *testing.T) {
	dbtest.PostgresURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openSchema(t, postgres.Options{SimpleProtocol: true}) })
}

// TestMigrateConcurrently starts several "replicas" migrating one fresh
// schema at once: the lock lets one apply the migrations, and the others
// find nothing left to do.
func TestMigrateConcurrently(t *testing.T) {
	_, u := newSchema(t)
	const replicas = 3
	var wg sync.WaitGroup
	applied := make([]int, replicas)
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Go(func() {
			s, err := postgres.Open(u, postgres.Options{MaxConns: 2})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			res, err := s.Migrate(t.Context())
			applied[i], errs[i] = len(res), err
		})
	}
	wg.Wait()
	total := 0
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	s, err := postgres.Open(u, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.MigrationStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if total != len(st) {
		t.Errorf("replicas applied %d migrations in all, want each of the %d once", total, len(st))
	}
	if err := s.CheckSchema(t.Context()); err != nil {
		t.Error(err)
	}
}

func BenchmarkAssign1(b *testing.B) {
	storetest.BenchmarkAssign(b, openSchema(b, postgres.Options{}), 1)
}

func BenchmarkAssign1000(b *testing.B) {
	storetest.BenchmarkAssign(b, openSchema(b, postgres.Options{}), 1000)
}

func BenchmarkRecordEvents1000(b *testing.B) {
	storetest.BenchmarkRecordEvents(b, openSchema(b, postgres.Options{}), 1000)
}

func BenchmarkRecordCampaignEvents1000(b *testing.B) {
	storetest.BenchmarkRecordCampaignEvents(b, openSchema(b, postgres.Options{}), 1000)
}

func BenchmarkRecordProgress999(b *testing.B) {
	storetest.BenchmarkRecordProgress(b, openSchema(b, postgres.Options{}), 999)
}

// TestConformancePgbouncer runs the suite through a real pgbouncer in
// transaction pool mode with SimpleProtocol on, as on Supabase's pooler.
//
// Isolation: pgbouncer 1.18 forwards no search_path startup parameter (it
// refuses unknown ones, and ignoring it would silently put every test in
// public), and in transaction mode a SET would leak to whichever client gets
// the server connection next. So each test gets its own database instead,
// created on the direct connection; the "*" entry of pgbouncer's [databases]
// forwards any database name to the same server.
func TestConformancePgbouncer(t *testing.T) {
	u := dbtest.PostgresURL(t)
	bouncer := startPgbouncer(t, u)
	db := admin(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		name := uniqueName("samplit_test_")
		if _, err := db.ExecContext(context.Background(), "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// FORCE: pgbouncer still holds server connections to it.
			if _, err := db.ExecContext(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
				t.Errorf("drop database %s: %v", name, err)
			}
		})
		bu := *bouncer
		bu.Path = "/" + name
		s, err := postgres.Open(bu.String(), postgres.Options{SimpleProtocol: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("migrate through pgbouncer: %v", err)
		}
		return s
	})
}

// startPgbouncer runs pgbouncer in transaction mode in front of the server
// of rawURL, on a free loopback port, until the test ends, and returns the
// URL of its database path's parent (set Path to choose a database).
func startPgbouncer(t *testing.T, rawURL string) *url.URL {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer"} {
			if _, statErr := os.Stat(p); statErr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pgbouncer is not installed; CI must test through it (apt-get install pgbouncer)")
		}
		t.Skip("pgbouncer is not installed")
	}
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)

	// pgbouncer refuses to run as root; as root we pass -u postgres, and
	// that user must be able to read the files, so the directory is not
	// t.TempDir() (whose parents are private to us).
	dir, err := os.MkdirTemp("", "samplit-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	server := fmt.Sprintf("host=%s port=%d user=%s", cfg.Host, cfg.Port, cfg.User)
	if cfg.Password != "" {
		server += " password=" + cfg.Password
	}
	ini := fmt.Sprintf(`[databases]
* = %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
server_reset_query =
`, server, port, filepath.Join(dir, "userlist.txt"))
	users := fmt.Sprintf("%q %q\n", cfg.User, cfg.Password)
	for name, body := range map[string]string{"pgbouncer.ini": ini, "userlist.txt": users} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postgres"}, args...)
	}
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pgbouncer: %v", err)
	}
	var logMu sync.Mutex
	var logTail []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logTail = append(logTail, sc.Text())
			if len(logTail) > 50 {
				logTail = logTail[1:]
			}
			logMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			logMu.Lock()
			t.Logf("pgbouncer log (tail):\n%s", strings.Join(logTail, "\n"))
			logMu.Unlock()
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			logMu.Lock()
			defer logMu.Unlock()
			t.Fatalf("pgbouncer did not listen on %s: %v\n%s", addr, err, strings.Join(logTail, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	u := &url.URL{Scheme: "postgres", Host: addr, RawQuery: "sslmode=disable"}
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	} else {
		u.User = url.User(cfg.User)
	}
	return u
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
