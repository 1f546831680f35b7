package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/samplit/samplit/client"
	"github.com/samplit/samplit/internal/api"
	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
	"github.com/samplit/samplit/internal/store/backend"
	"github.com/samplit/samplit/internal/store/dbtest"
	"github.com/samplit/samplit/internal/webhook"
)

// testServer is a real Samplit API (the handler cmd/samplit serves) over a
// fresh SQLite database, listening on a local port.
type testServer struct {
	URL   string
	Admin string // admin key of the bootstrap workspace
	Store store.Store
	Ring  *seal.Keyring
}

// serverConfig tunes newTestServer.
type serverConfig struct {
	// wrap, when set, sits in front of the API: the seam where retry tests
	// fail requests or drop connections.
	wrap func(http.Handler) http.Handler
	opts api.Options
}

func newTestServer(t testing.TB, cfg serverConfig) *testServer {
	t.Helper()
	ctx := context.Background()
	st, err := backend.Open(ctx, dbtest.SQLite(t), backend.Options{AutoMigrate: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	admin, created, err := apikey.Bootstrap(ctx, st, "", time.Now())
	if err != nil || !created {
		t.Fatalf("bootstrap: created=%v err=%v", created, err)
	}
	var material [seal.KeySize]byte
	rand.Read(material[:])
	k, err := seal.NewKey(material[:])
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	experiments := optimize.NewExperiments(st, ring, time.Now, nil, optimize.Options{})
	funnels := optimize.NewFunnels(st, time.Now, nil, optimize.Options{})
	campaigns := optimize.NewCampaigns(st, time.Now, nil, optimize.Options{}, optimize.CampaignHooks{})
	var h http.Handler = api.NewServer(api.Deps{
		Store:      st,
		Optimizers: &optimize.Services{Experiments: experiments, Funnels: funnels, Campaigns: campaigns},
		// Localhost endpoints allowed: the receivers are httptest servers.
		Webhooks: webhook.NewService(st, ring, time.Now, true, nil),
		Now:      time.Now,
	}, cfg.opts)
	if cfg.wrap != nil {
		h = cfg.wrap(h)
	}
	hs := httptest.NewServer(h)
	// Last in, first out: the listener closes, then the optimizers commit
	// what is queued, then (registered first) the store closes.
	t.Cleanup(experiments.Close)
	t.Cleanup(funnels.Close)
	t.Cleanup(campaigns.Close)
	t.Cleanup(hs.Close)
	return &testServer{URL: hs.URL, Admin: admin, Store: st, Ring: ring}
}

// key stores a new key with the scope in the bootstrap workspace.
func (s *testServer) key(t testing.TB, scope store.Scope) string {
	t.Helper()
	ws, err := s.Store.GetWorkspaceByName(context.Background(), apikey.DefaultWorkspace)
	if err != nil {
		t.Fatal(err)
	}
	plain, k := apikey.New(ws.ID, string(scope), scope, time.Now())
	if err := s.Store.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return plain
}

// client returns a client of the server with the admin key, fast retries,
// and its logs in the test's output.
func (s *testServer) client(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	base := []client.Option{
		client.WithRetry(4, time.Millisecond),
		client.WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}
	return client.New(s.URL, s.Admin, append(base, opts...)...)
}

// apiError returns the *client.Error in err, failing the test without one.
func apiError(t testing.TB, err error) *client.Error {
	t.Helper()
	e, ok := errors.AsType[*client.Error](err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	return e
}

// createBinary creates a running two-variant binary experiment.
func createBinary(t testing.TB, c *client.Client, key string) *client.Experiment {
	t.Helper()
	e, err := c.CreateExperiment(t.Context(), client.CreateExperimentRequest{
		Key:      key,
		Variants: []client.VariantSpec{{Key: "control"}, {Key: "green", Payload: map[string]string{"color": "green"}}},
		Start:    true,
	})
	if err != nil {
		t.Fatalf("create %s: %v", key, err)
	}
	return e
}
