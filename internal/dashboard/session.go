package dashboard

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

// Sessions are kept in the database (store.Sessions), so that every replica
// behind a load balancer knows every session: no sticky sessions, a restart
// signs nobody out, and signing out on one replica ends the session on all.
// Why not a sealed cookie (the session encrypted into the cookie itself)?
// Signing out must end the session, and a sealed cookie stays valid until it
// expires wherever a copy of it went; ending it early needs a server-side
// deny list, which is a session store again.
//
// The cookie carries a random token (256 bits) and nothing else. The
// database holds only:
//
//   - the SHA-256 of the token, to find the session: a copy of the database
//     does not give a cookie that works;
//   - the signed-in API key, which the dashboard needs for its in-process
//     API calls (apicall.go) and to re-verify the key on every request,
//     sealed with AES-256-GCM under a key derived from the token (HKDF): only
//     a request that brings the cookie can open it, so neither a copy of the
//     database nor the state key reveals an API key.
//
// The CSRF token of a session is derived from its token too (HKDF with
// another label), so it needs no column and is the same on every replica.
//
// Each API key may hold Options.SessionsPerKey sessions; a sign-in beyond
// that ends the key's oldest session, and never another key's (a script
// signing in over and over with one key cannot sign an administrator out).
// Expired sessions are deleted by retention (internal/retention).
type session struct {
	id   string // the cookie's value (the token); never logged nor stored
	csrf string // the token every form of the session carries
	// key is the API key the person signed in with, for the in-process API
	// calls that make changes and to re-verify the key on every request (a
	// revoked key ends its sessions at once).
	key         string
	keyID       string
	workspaceID string
	workspace   string // the workspace's name, for the page header
	scope       store.Scope
	expires     time.Time
}

// sessionSecrets derives from a session's token the hash that names it in
// the database, the AES key that seals its API key, and its CSRF token.
func sessionSecrets(token string) (hash []byte, sealKey []byte, csrf string) {
	sum := sha256.Sum256([]byte(token))
	sealKey, err := hkdf.Key(sha256.New, []byte(token), nil, "samplit dashboard session key", 32)
	if err != nil {
		panic("dashboard: hkdf: " + err.Error()) // only for a bad length, fixed here
	}
	c, err := hkdf.Key(sha256.New, []byte(token), nil, "samplit dashboard csrf", 20)
	if err != nil {
		panic("dashboard: hkdf: " + err.Error())
	}
	return sum[:], sealKey, base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(c)
}

// sealSessionKey encrypts the API key under the session's key, bound to the
// session's hash (additional data) so a sealed key cannot be moved to
// another row.
func sealSessionKey(sealKey, hash []byte, apiKey string) ([]byte, error) {
	aead, err := sessionAEAD(sealKey)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nil, []byte(apiKey), hash), nil
}

func openSessionKey(sealKey, hash, sealed []byte) (string, error) {
	aead, err := sessionAEAD(sealKey)
	if err != nil {
		return "", err
	}
	b, err := aead.Open(nil, nil, sealed, hash)
	if err != nil {
		return "", fmt.Errorf("open session key: %w", err)
	}
	return string(b), nil
}

func sessionAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("session cipher: %w", err)
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// startSession stores a new session of the verified key k and returns it.
func (d *Dashboard) startSession(ctx context.Context, key string, k store.APIKey, workspace string) (*session, error) {
	token := rand.Text() + rand.Text() // 2×128 bits of randomness
	hash, sealKey, csrf := sessionSecrets(token)
	sealed, err := sealSessionKey(sealKey, hash, key)
	if err != nil {
		return nil, err
	}
	now := d.now()
	s := &session{id: token, csrf: csrf, key: key, keyID: k.ID, workspaceID: k.WorkspaceID, workspace: workspace,
		scope: k.Scope, expires: now.Add(d.opts.SessionTTL)}
	evicted, err := d.store.CreateSession(ctx, store.Session{TokenHash: hash, KeyID: k.ID, WorkspaceID: k.WorkspaceID,
		SealedKey: sealed, CreatedAt: now, ExpiresAt: s.expires}, d.opts.SessionsPerKey)
	if err != nil {
		return nil, err
	}
	if evicted > 0 {
		d.log.Info("dashboard: oldest sessions of the key ended", "key", k.ID, "ended", evicted)
	}
	return s, nil
}

// loadSession returns the live session of the token, its key re-verified
// (a revoked key ends its sessions: they are deleted). ok is false, with no
// error, when there is no such live session.
func (d *Dashboard) loadSession(ctx context.Context, token string) (s *session, ok bool, err error) {
	hash, sealKey, csrf := sessionSecrets(token)
	row, err := d.store.GetSession(ctx, hash, d.now())
	if apperr.Is(err, apperr.NotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	key, err := openSessionKey(sealKey, hash, row.SealedKey)
	if err != nil {
		// Not this token's row (cannot happen short of a SHA-256
		// collision) or a damaged one: no session.
		d.log.Warn("dashboard: unreadable session", "err", err)
		return nil, false, nil
	}
	k, err := apikey.Verify(ctx, d.store, key)
	if apperr.Is(err, apperr.Unauthorized) {
		if err := d.store.DeleteSession(ctx, hash); err != nil {
			d.log.Warn("dashboard: end the session of a revoked key", "err", err)
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	name := k.WorkspaceID
	if ws, err := d.store.GetWorkspace(ctx, k.WorkspaceID); err == nil {
		name = ws.Name
	}
	return &session{id: token, csrf: csrf, key: key, keyID: k.ID, workspaceID: k.WorkspaceID, workspace: name,
		scope: k.Scope, expires: row.ExpiresAt}, true, nil
}

// endSession deletes the session (sign-out, or a new sign-in replacing it).
func (d *Dashboard) endSession(ctx context.Context, s *session) error {
	hash, _, _ := sessionSecrets(s.id)
	return d.store.DeleteSession(ctx, hash)
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

// sessionCtxKey keys the request's session in its context.
type sessionCtxKey struct{}

// sessionHandler is a handler that runs with a signed-in session.
type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// authed wraps h so that it runs only with a live session whose key is still
// valid, and, for anything but GET and HEAD, only with the session's CSRF
// token. Without a session a page request is sent to the sign-in form (and
// back here after it); the live fragments answer 401, on which the script
// reloads the page and so reaches the form.
func (d *Dashboard) authed(h sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok, err := d.currentSession(r)
		if err != nil {
			d.fail(w, r, err)
			return
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
		// The session travels with the request so that an error page
		// need not look it up again.
		r = r.WithContext(context.WithValue(r.Context(), sessionCtxKey{}, s))
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

func (d *Dashboard) currentSession(r *http.Request) (*session, bool, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil, false, nil
	}
	return d.loadSession(r.Context(), c.Value)
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
	if _, ok, _ := d.currentSession(r); ok {
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
	addr := apikey.ClientAddr(r)
	if wait, blocked := d.signInFails.Blocked(addr); blocked {
		w.Header().Set("Retry-After", apikey.RetryAfter(wait))
		page.Error = fmt.Sprintf("Too many failed sign-ins from your address. Try again in %s.", wait.Round(time.Second))
		d.render(w, r, http.StatusTooManyRequests, "signin", page)
		return
	}
	k, err := apikey.Verify(r.Context(), d.store, key)
	switch {
	case apperr.Is(err, apperr.Unauthorized):
		d.signInFails.Failed(addr)
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
	if old, ok, _ := d.currentSession(r); ok {
		if err := d.endSession(r.Context(), old); err != nil {
			d.fail(w, r, err)
			return
		}
	}
	s, err := d.startSession(r.Context(), key, k, wsName)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.setSessionCookie(w, r, s)
	d.log.Info("dashboard sign-in", "workspace", k.WorkspaceID, "key", k.ID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleSignOut ends the session here (not only in the browser).
func (d *Dashboard) handleSignOut(w http.ResponseWriter, r *http.Request, s *session) {
	if err := d.endSession(r.Context(), s); err != nil {
		d.fail(w, r, err)
		return
	}
	clearSessionCookie(w, r)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
