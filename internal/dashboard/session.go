package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

// Sessions are held in this process's memory, keyed by a random id that is
// all the cookie carries. Why not a sealed cookie (the session encrypted
// into the cookie itself)?
//
//   - Signing out must end the session. A sealed cookie stays valid until it
//     expires, wherever a copy of it went; ending it early needs a
//     server-side deny list, which is a session store again.
//   - The dashboard makes its changes through the API with the signed-in key
//     (see the package comment), so the session must hold the key. In memory
//     it never leaves the server; in a cookie, even sealed, it would travel
//     with every request and sit in every browser profile and backup.
//
// The cost: a session belongs to one replica. Behind a load balancer with
// several replicas the dashboard needs sticky sessions (or one replica
// serving it); a restart signs everyone out. For an operator's tool both are
// acceptable, and the README says so.
type session struct {
	id   string // the cookie's value; never logged
	csrf string // the token every form of the session carries
	// key is the API key the person signed in with, held only in memory,
	// for the in-process API calls that make changes and to re-verify the
	// key on every request (a revoked key ends its sessions at once).
	key         string
	keyID       string
	workspaceID string
	workspace   string // the workspace's name, for the page header
	scope       store.Scope
	expires     time.Time
}

// sessions is the in-memory session table.
type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	max int
}

func newSessions(max int) *sessions { return &sessions{m: map[string]*session{}, max: max} }

// add stores s under a new random id, making room by dropping expired
// sessions and, if the table is still full, the one closest to expiry.
func (ss *sessions) add(s *session, now time.Time) {
	s.id = rand.Text() + rand.Text() // 2×128 bits of randomness
	s.csrf = rand.Text()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= ss.max {
		var soonest *session
		for id, o := range ss.m {
			if !now.Before(o.expires) {
				delete(ss.m, id)
			} else if soonest == nil || o.expires.Before(soonest.expires) {
				soonest = o
			}
		}
		if len(ss.m) >= ss.max && soonest != nil {
			delete(ss.m, soonest.id)
		}
	}
	ss.m[s.id] = s
}

// get returns the live session with the id, forgetting it if expired.
func (ss *sessions) get(id string, now time.Time) (*session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return nil, false
	}
	if !now.Before(s.expires) {
		delete(ss.m, id)
		return nil, false
	}
	return s, true
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// cookieName is the session cookie's name. The __Host- prefix would pin it
// to Secure, which plain-HTTP local use (the default 127.0.0.1:8080) cannot
// have; so a plain name, with Path=/ and no Domain, which is what the prefix
// would enforce otherwise.
const cookieName = "samplit_session"

// secureRequest reports whether the browser reached us over HTTPS: TLS here,
// or a TLS-terminating proxy saying so. Trusting the header cannot weaken
// anything: a spoofed "https" only makes the cookie Secure, which a plain
// HTTP page then cannot use.
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (d *Dashboard) setSessionCookie(w http.ResponseWriter, r *http.Request, s *session) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    s.id,
		Path:     "/",
		Expires:  s.expires,
		MaxAge:   int(s.expires.Sub(d.now()) / time.Second),
		HttpOnly: true,
		Secure:   secureRequest(r),
		SameSite: http.SameSiteStrictMode,
	})
}

func clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: secureRequest(r), SameSite: http.SameSiteStrictMode,
	})
}

// sessionHandler is a handler that runs with a signed-in session.
type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// authed wraps h so that it runs only with a live session whose key is still
// valid, and, for anything but GET and HEAD, only with the session's CSRF
// token. Without a session a page request is sent to the sign-in form (and
// back here after it); the live fragments answer 401, on which the script
// reloads the page and so reaches the form.
func (d *Dashboard) authed(h sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := d.currentSession(r)
		if ok {
			// Re-verify the key: a revoked key must not keep its dashboard.
			// One indexed read per page, the same as an API call costs.
			if _, err := apikey.Verify(r.Context(), d.store, s.key); err != nil {
				d.sessions.remove(s.id)
				if !apperr.Is(err, apperr.Unauthorized) {
					d.fail(w, r, err)
					return
				}
				ok = false
			}
		}
		if !ok {
			clearSessionCookie(w, r)
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/live") {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			d.renderError(w, r, http.StatusUnauthorized, "Your session has ended. Sign in again.")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10) // forms are small
			// http.CrossOriginProtection has already refused cross-site
			// POSTs from browsers that say where a request comes from; the
			// token also covers browsers that send neither Sec-Fetch-Site
			// nor Origin.
			got := r.PostFormValue("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
				d.renderError(w, r, http.StatusForbidden, "This form has expired or did not come from this dashboard. Go back, reload the page and try again.")
				return
			}
		}
		h(w, r, s)
	})
}

func (d *Dashboard) currentSession(r *http.Request) (*session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil, false
	}
	return d.sessions.get(c.Value, d.now())
}

type signInPage struct {
	pageBase
	Next  string
	Error string
}

// safeNext returns next if it is a path on this site, else "/experiments":
// the sign-in form must not redirect anywhere else (an open redirect).
//
// It is judged after parsing, as a browser would read it: browsers drop
// tabs and newlines from URLs and treat a backslash as a slash, so
// "/\t/evil.example" is "//evil.example", another site. Any control
// character, space or backslash refuses the value outright; what parses must
// then be a bare path (no scheme, no host) that does not start with "//".
func safeNext(next string) string {
	const fallback = "/experiments"
	for _, r := range next {
		if r < 0x21 || r == 0x7f || r == '\\' {
			return fallback
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.HasPrefix(u.Path, "/signin") {
		return fallback
	}
	return u.String()
}

func (d *Dashboard) handleSignInForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.currentSession(r); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	d.render(w, r, http.StatusOK, "signin", signInPage{pageBase: d.base(r, nil, "Sign in"), Next: safeNext(r.URL.Query().Get("next"))})
}

// handleSignIn checks the key of the form and starts a session. Every bad
// key gets the same answer (as in the API); an assign key is told why it
// cannot sign in, since it is a real key used in the wrong place.
func (d *Dashboard) handleSignIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	key := strings.TrimSpace(r.PostFormValue("key"))
	next := safeNext(r.PostFormValue("next"))
	page := signInPage{pageBase: d.base(r, nil, "Sign in"), Next: next}
	k, err := apikey.Verify(r.Context(), d.store, key)
	switch {
	case apperr.Is(err, apperr.Unauthorized):
		page.Error = "That API key is not valid: it is unknown, revoked or mistyped."
		d.render(w, r, http.StatusUnauthorized, "signin", page)
		return
	case err != nil:
		d.fail(w, r, err)
		return
	case !k.Scope.Allows(store.ScopeWrite):
		page.Error = "This key has the assign scope, which is meant for client apps and cannot sign in. Use a write or admin key."
		d.render(w, r, http.StatusForbidden, "signin", page)
		return
	}
	wsName := k.WorkspaceID
	if ws, err := d.store.GetWorkspace(r.Context(), k.WorkspaceID); err == nil {
		wsName = ws.Name
	} else if !errors.Is(err, r.Context().Err()) {
		d.log.Warn("dashboard: workspace name", "workspace", k.WorkspaceID, "err", err)
	}
	// A new id at every sign-in, never one the browser brought: no session
	// fixation.
	if old, ok := d.currentSession(r); ok {
		d.sessions.remove(old.id)
	}
	s := &session{
		key: key, keyID: k.ID, workspaceID: k.WorkspaceID, workspace: wsName, scope: k.Scope,
		expires: d.now().Add(d.opts.SessionTTL),
	}
	d.sessions.add(s, d.now())
	d.setSessionCookie(w, r, s)
	d.log.Info("dashboard sign-in", "workspace", k.WorkspaceID, "key", k.ID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleSignOut ends the session here (not only in the browser).
func (d *Dashboard) handleSignOut(w http.ResponseWriter, r *http.Request, s *session) {
	d.sessions.remove(s.id)
	clearSessionCookie(w, r)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
