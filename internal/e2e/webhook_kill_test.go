package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	samplit "github.com/samplit/samplit/client"
	"github.com/samplit/samplit/internal/store/backend"
)

// TestWebhookKill9 kills a server with SIGKILL while lifecycle transitions
// (each writing a webhook event in its transaction) are made and deliveries
// are being sent, restarts it over the same database, and checks the
// outbox's promise: every transition that was acknowledged is delivered
// after the restart, every committed event is delivered, and an event that
// is delivered twice (at least once) keeps its webhook-id: no event is ever
// sent under two ids, and no id stands for two events.
func TestWebhookKill9(t *testing.T) {
	// The servers inherit the environment: receivers are on loopback.
	t.Setenv("SAMPLIT_WEBHOOK_ALLOW_PRIVATE", "true")
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testWebhookKill9(t, backend) })
	}
}

// seenEvent is one delivery the receiver got.
type seenEvent struct {
	webhookID string
	what      string // experiment key + "/" + event type
}

func testWebhookKill9(t *testing.T, backendName string) {
	dsn := dsnFor(t, backendName)
	var (
		mu     sync.Mutex
		seen   []seenEvent
		secret atomic.Value
		bad    atomic.Int64
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if s, _ := secret.Load().(string); s == "" || samplit.VerifyWebhook(s, r.Header, body, time.Now()) != nil {
			bad.Add(1)
		}
		var p struct {
			Type string `json:"type"`
			Data struct {
				Experiment struct {
					Key string `json:"key"`
				} `json:"experiment"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		mu.Lock()
		seen = append(seen, seenEvent{r.Header.Get("webhook-id"), p.Data.Experiment.Key + "/" + p.Type})
		mu.Unlock()
	}))
	defer recv.Close()

	srv := startServer(t, backendName+"-1", dsn)
	var hook struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	srv.must(t, "POST", "/v1/webhooks", map[string]any{
		"url":    recv.URL,
		"events": []string{"experiment.started", "experiment.paused", "experiment.resumed"},
	}, &hook)
	secret.Store(hook.Secret)

	const experiments = 40
	for i := range experiments {
		srv.must(t, "POST", "/v1/experiments", map[string]any{
			"key": fmt.Sprintf("wk-%02d", i), "metric": "binary",
			"variants": []map[string]any{{"key": "control"}, {"key": "green"}},
		}, nil)
	}

	// Four clients walk the experiments through start → pause → resume;
	// the server is killed at a seeded random moment in the middle.
	rng := rand.New(rand.NewPCG(20260417, 7))
	killAfter := 20 + rng.IntN(60)      // acknowledged transitions before the kill
	deliveredBefore := 1 + rng.IntN(15) // and deliveries received
	var (
		ackMu sync.Mutex
		acked = map[string]bool{} // experiment key + "/" + event type
		n     atomic.Int64
		wg    sync.WaitGroup
		next  atomic.Int64
	)
	ctx := t.Context()
	steps := []struct{ action, event string }{{"start", "experiment.started"}, {"pause", "experiment.paused"}, {"resume", "experiment.resumed"}}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= experiments {
					return
				}
				key := fmt.Sprintf("wk-%02d", i)
				for _, s := range steps {
					if _, err := srv.call(ctx, "POST", "/v1/experiments/"+key+"/"+s.action, nil, nil); err != nil {
						return // the server is gone (or refused: reported below by the checks)
					}
					ackMu.Lock()
					acked[key+"/"+s.event] = true
					ackMu.Unlock()
					n.Add(1)
					// Paced, so that the worker is sending while
					// transitions still commit when the kill comes.
					time.Sleep(40 * time.Millisecond)
				}
			}
		}()
	}
	for wait := time.Now(); n.Load() < int64(killAfter) || len(snapshot(&mu, &seen)) < deliveredBefore; {
		if time.Since(wait) > 15*time.Second {
			t.Fatalf("%d transitions acknowledged and %d delivered in 15s", n.Load(), len(snapshot(&mu, &seen)))
		}
		time.Sleep(time.Millisecond)
	}
	srv.kill()
	wg.Wait()
	ackMu.Lock()
	t.Logf("killed after %d acknowledged transitions; %d deliveries received before the kill", len(acked), len(snapshot(&mu, &seen)))
	ackMu.Unlock()

	// Deliveries the dead process had leased would be retried when their
	// lease (60 s) expires; expire them now rather than wait.
	db := openDB(t, dsn)
	if _, err := db.ExecContext(ctx, `UPDATE deliveries SET lease_until = 0`); err != nil {
		t.Fatal(err)
	}
	var committed int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE webhook_id = $1`, hook.ID).Scan(&committed); err != nil {
		t.Fatal(err)
	}

	startServer(t, backendName+"-2", dsn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE status <> 'succeeded'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still pending 30s after the restart", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}

	got := snapshot(&mu, &seen)
	idsOf := map[string]map[string]bool{} // what → ids
	whatOf := map[string]string{}         // id → what
	for _, s := range got {
		if idsOf[s.what] == nil {
			idsOf[s.what] = map[string]bool{}
		}
		idsOf[s.what][s.webhookID] = true
		if prev, ok := whatOf[s.webhookID]; ok && prev != s.what {
			t.Errorf("webhook-id %s was sent for %s and for %s", s.webhookID, prev, s.what)
		}
		whatOf[s.webhookID] = s.what
	}
	for what, ids := range idsOf {
		if len(ids) != 1 {
			t.Errorf("%s was delivered under %d webhook-ids, want 1", what, len(ids))
		}
	}
	ackMu.Lock()
	defer ackMu.Unlock()
	for what := range acked {
		if idsOf[what] == nil {
			t.Errorf("acknowledged transition %s was never delivered", what)
		}
	}
	if len(whatOf) != committed {
		t.Errorf("%d distinct events delivered, %d committed", len(whatOf), committed)
	}
	if n := bad.Load(); n > 0 {
		t.Errorf("%d deliveries failed signature verification", n)
	}
	t.Logf("%d acknowledged, %d committed, %d requests received (%d redelivered under the same id)",
		len(acked), committed, len(got), len(got)-len(whatOf))
}

func snapshot(mu *sync.Mutex, seen *[]seenEvent) []seenEvent {
	mu.Lock()
	defer mu.Unlock()
	return append([]seenEvent(nil), *seen...)
}

// openDB opens the test's database directly (no migrations: the servers
// applied them), closed when the test ends.
func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	st, err := backend.Open(context.Background(), dsn, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w, ok := st.(interface{ WriteDB() *sql.DB })
	if !ok {
		t.Fatalf("store %T does not expose its database", st)
	}
	return w.WriteDB()
}
