package api

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/store"
)

// Browsers. A page may call the serving routes (assign, events, funnel
// progress, campaign events) from another origin with an assign key that
// lists the page's origin. The check is on the key, not only on the route:
// a request that carries an Origin header comes from a browser, and a
// browser must never hold a write or admin key, so such a request with any
// other key, or from an origin the key does not list, is refused (403,
// without Access-Control-Allow-Origin, so the page cannot even read the
// refusal). Requests without Origin (servers, apps, curl) are unaffected.
//
// The dashboard is not concerned: it is served from the API's own origin
// and calls the API in process with requests that carry no Origin.

// preflightMaxAge is how long a browser may reuse a preflight's answer.
// Chromium caps it at two hours; ten minutes keeps a changed deployment
// from being stuck behind a cached answer for long.
const preflightMaxAge = 600

// allowBrowser enforces the browser rule on an authenticated request: with
// an Origin header the key must be an assign key that allows that exact
// origin, and then the response may be read by the page.
func allowBrowser(w http.ResponseWriter, r *http.Request, k store.APIKey) error {
	w.Header().Add("Vary", "Origin")
	origin, sent := r.Header["Origin"]
	if !sent {
		return nil
	}
	o := ""
	if len(origin) > 0 {
		o = origin[0]
	}
	if k.Scope != store.ScopeAssign {
		return apperr.New(apperr.Forbidden, "a request from a browser (with an Origin header) needs an assign key; %s keys are never usable from a browser", k.Scope)
	}
	if !slices.Contains(k.AllowedOrigins, o) {
		return apperr.New(apperr.Forbidden, "this API key does not allow the origin %q; add it to the key's allowed_origins", o)
	}
	w.Header().Set("Access-Control-Allow-Origin", o)
	// Retry-After (on a 429) is not a header a page may read by default.
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id")
	return nil
}

// handlePreflight answers the CORS preflight of a serving route. A
// preflight carries no credentials, so it cannot be checked against a key:
// it tells the browser what the route accepts, and the request that follows
// is checked by allowBrowser.
func (s *server) handlePreflight(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Add("Vary", "Origin")
	if o := r.Header.Get("Origin"); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key")
		h.Set("Access-Control-Max-Age", strconv.Itoa(preflightMaxAge))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
