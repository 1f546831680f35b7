// Package dashboard is Samplit's web interface: server-rendered HTML pages
// (html/template, embedded with embed.FS), SVG charts drawn here in Go, and
// one small dependency-free script for confirmations and live refresh. There
// is no build step: the binary alone serves it.
//
// # Who may see what
//
// A person signs in with an API key of scope write or admin (an assign key is
// meant to ship inside client apps and is refused). The key is verified with
// apikey.Verify, exactly as the API does, and a session is kept in the
// database, shared by every replica, under the hash of a random token; the
// browser holds only that token, in an HttpOnly, SameSite=Strict cookie
// (Secure over TLS) with an expiry. Every page acts inside the signed-in
// key's workspace, so another workspace's experiment is the same 404 page as
// one that does not exist. See session.go for what is stored and why.
//
// # Reads and writes
//
// Pages read and write through the same layer the API uses, always with the
// session's workspace id: the store for lists, and the optimizers
// (optimize.Services) for results, timeseries, creating experiments
// (Experiments.Create) and layers (Experiments.CreateLayer), and every
// lifecycle change (each object's Optimizer's Transition). The validation, the status machine, the webhook events of a
// transition and the invalidation of the API's experiment cache live there,
// so the dashboard's changes obey the same rules and its forms show the same
// messages as the API's, without a round trip through HTTP and JSON. Key and
// webhook changes, which have no service of their own yet, are still
// requests to the real API handler, in process, with the session's key
// (apicall.go).
//
// # Browser security
//
// Every response carries a Content-Security-Policy that allows only this
// origin's script and style files (no inline script or style), forbids
// framing, and limits form targets to this origin. Every POST passes
// http.CrossOriginProtection (Sec-Fetch-Site / Origin checks) and, once
// signed in, must carry the session's CSRF token.
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps are what the dashboard needs from the rest of the program: the same
// dependencies as api.NewServer, plus the API handler through which it makes
// changes.
type Deps struct {
	// Store is the database; required.
	Store store.Store
	// Optimizers are the services the API uses: results, timeseries and
	// every lifecycle change of experiments, funnels and campaigns;
	// required (with Experiments). A nil Funnels or Campaigns hides those
	// pages' numbers. Webhook pages read through Store.
	Optimizers *optimize.Services
	// API is the HTTP API (api.NewServer), through which key and webhook
	// changes go; required.
	API http.Handler
	// Logger receives failures; nil discards them.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Options tunes the dashboard. The zero value of each field means its default.
type Options struct {
	// SessionTTL is how long a sign-in lasts. Default 8 h.
	SessionTTL time.Duration
	// SessionsPerKey bounds the sessions of one API key: a sign-in beyond
	// it ends that key's oldest session. Default 20.
	SessionsPerKey int
	// AuthFailLimit is how many failed sign-ins one client address may
	// make per minute on this replica; beyond it the form answers 429 with
	// Retry-After, without looking at the key, until a failure is allowed
	// again. 0 or less: no limit.
	AuthFailLimit int
	// RefreshSeconds is how often a running experiment's page refreshes its
	// numbers. Default 5.
	RefreshSeconds int
}

// The defaults of Options.
const (
	DefaultSessionTTL     = 8 * time.Hour
	DefaultSessionsPerKey = 20
	DefaultRefreshSeconds = 5
)

func (o Options) withDefaults() Options {
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.SessionsPerKey <= 0 {
		o.SessionsPerKey = DefaultSessionsPerKey
	}
	if o.RefreshSeconds <= 0 {
		o.RefreshSeconds = DefaultRefreshSeconds
	}
	return o
}

// contentSecurityPolicy allows this origin's script, style and images only:
// no inline script, no inline style attributes, no eval, no framing, and no
// form posting elsewhere. Charts are inline SVG styled by classes from the
// stylesheet, so they need nothing more.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Dashboard is the web interface's http.Handler.
type Dashboard struct {
	store      store.Store
	optimizers *optimize.Services
	api        http.Handler
	log        *slog.Logger
	now        func() time.Time
	opts       Options

	signInFails *apikey.FailLimiter // nil: no limit
	pages       map[string]*template.Template
	// assetVersion is a hash of the static files, appended to their URLs so
	// that browsers may cache them and still see a new release at once.
	assetVersion string
	handler      http.Handler
}

// New returns the dashboard. It panics if the embedded templates do not
// parse, which a test catches before any release.
func New(deps Deps, opts Options) *Dashboard {
	d := &Dashboard{
		store:      deps.Store,
		optimizers: deps.Optimizers,
		api:        deps.API,
		log:        deps.Logger,
		now:        deps.Now,
		opts:       opts.withDefaults(),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.signInFails = apikey.NewFailLimiter(d.opts.AuthFailLimit, d.now)
	d.assetVersion = hashFS(staticFS)
	d.pages = parsePages()

	mux := http.NewServeMux()
	d.routes(mux)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.renderError(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused. Go back, reload the page and try again.")
	}))
	d.handler = securityHeaders(cop.Handler(mux))
	return d
}

// ServeHTTP serves one request.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.handler.ServeHTTP(w, r) }

// routes registers every route of the dashboard: the one place to look for
// what it serves. d.authed routes need a session; POSTs among them also need
// its CSRF token.
func (d *Dashboard) routes(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(time.Hour, http.FileServerFS(static))))

	mux.HandleFunc("GET /signin", d.handleSignInForm)
	mux.HandleFunc("POST /signin", d.handleSignIn)
	mux.Handle("POST /signout", d.authed(d.handleSignOut))

	mux.Handle("GET /{$}", d.authed(func(w http.ResponseWriter, r *http.Request, s *session) {
		http.Redirect(w, r, "/experiments", http.StatusSeeOther)
	}))
	mux.Handle("GET /experiments", d.authed(d.handleExperimentList))
	mux.Handle("GET /experiments/new", d.authed(d.handleNewExperiment))
	mux.Handle("POST /experiments", d.authed(d.handleCreateExperiment))
	mux.Handle("GET /experiments/{ref}", d.authed(d.handleExperiment))
	mux.Handle("GET /experiments/{ref}/live", d.authed(d.handleExperimentLive))
	mux.Handle("POST /experiments/{ref}/{action}", d.authed(d.handleExperimentAction))

	mux.Handle("GET /layers", d.authed(d.handleLayerList))
	mux.Handle("POST /layers", d.authed(d.handleCreateLayer))

	mux.Handle("GET /funnels", d.authed(d.handleFunnelList))
	mux.Handle("GET /funnels/{ref}", d.authed(d.handleFunnel))
	mux.Handle("GET /funnels/{ref}/live", d.authed(d.handleFunnelLive))
	mux.Handle("POST /funnels/{ref}/{action}", d.authed(d.handleFunnelAction))

	mux.Handle("GET /campaigns", d.authed(d.handleCampaignList))
	mux.Handle("GET /campaigns/{ref}", d.authed(d.handleCampaign))
	mux.Handle("GET /campaigns/{ref}/live", d.authed(d.handleCampaignLive))
	mux.Handle("POST /campaigns/{ref}/{action}", d.authed(d.handleCampaignAction))

	// Webhook pages need an admin key (checked in each handler).
	mux.Handle("GET /webhooks", d.authed(d.handleWebhookList))
	mux.Handle("GET /webhooks/{id}", d.authed(d.handleWebhook))
	mux.Handle("POST /webhooks/{id}/test", d.authed(d.handleWebhookPing))

	// The keys page needs an admin key (checked in each handler).
	mux.Handle("GET /keys", d.authed(d.handleKeyList))
	mux.Handle("POST /keys", d.authed(d.handleCreateKey))
	mux.Handle("POST /keys/{id}/revoke", d.authed(d.handleRevokeKey))

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.renderError(w, r, http.StatusNotFound, "There is no page at this address.")
	})
}

// securityHeaders sets the headers every dashboard response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			// Pages hold a workspace's data: no shared or back-button cache.
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func cacheFor(d time.Duration, next http.Handler) http.Handler {
	v := "public, max-age=" + itoa(int64(d/time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", v)
		next.ServeHTTP(w, r)
	})
}

// hashFS returns a short hash of every file of fsys.
func hashFS(fsys fs.FS) string {
	h := sha256.New()
	_ = fs.WalkDir(fsys, ".", func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// apiPaths are the paths the API serves outside /v1/.
var apiPaths = []string{"/healthz", "/readyz", "/metrics", "/openapi.json"}

// Combine returns the handler of the whole server: the API's paths (/v1/...,
// /healthz, /readyz, /metrics, /openapi.json) go to api, everything else to
// the dashboard. The API keeps its problem+json answers for every /v1 path,
// unknown ones included; an unknown path elsewhere gets the dashboard's 404
// page.
func Combine(api, dashboard http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	for _, p := range apiPaths {
		mux.Handle(p, api)
	}
	mux.Handle("/", dashboard)
	return mux
}
