package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// Limits of a key's allowed origins.
const (
	MaxAllowedOrigins = 50
	maxOriginLen      = 300
)

type createKeyRequest struct {
	Name           string   `json:"name"`
	Scope          string   `json:"scope"`
	AllowedOrigins []string `json:"allowed_origins"`
}

// keyJSON is a key as the API shows it. Key, the plaintext, is set only in
// the answer to its creation: only its hash is stored.
type keyJSON struct {
	ID             string   `json:"id"`
	Key            string   `json:"key,omitempty"`
	Name           string   `json:"name"`
	Scope          string   `json:"scope"`
	AllowedOrigins []string `json:"allowed_origins"`
	CreatedAt      string   `json:"created_at"`
	RevokedAt      *string  `json:"revoked_at"`
}

func toKeyJSON(k store.APIKey, plaintext string) keyJSON {
	origins := k.AllowedOrigins
	if origins == nil {
		origins = []string{}
	}
	return keyJSON{ID: k.ID, Key: plaintext, Name: k.Name, Scope: string(k.Scope), AllowedOrigins: origins,
		CreatedAt: timestamp(k.CreatedAt), RevokedAt: optTimestamp(k.RevokedAt)}
}

// handleCreateKey serves POST /v1/keys. It is not replayable by
// Idempotency-Key, for the reason webhook creation is not: the replayed
// response would hold the key, which must never be stored.
func (s *server) handleCreateKey(w http.ResponseWriter, r *http.Request) error {
	var body createKeyRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	var fe fieldErrors
	scope := store.Scope(body.Scope)
	if !scope.Valid() {
		fe.add("scope", "must be one of admin, write, assign")
	}
	name := body.Name
	if name == "" && scope.Valid() {
		name = body.Scope + " key"
	}
	if reason := apikey.ValidName(name); reason != "" {
		fe.add("name", "%s", reason)
	}
	if len(body.AllowedOrigins) > 0 && scope.Valid() && scope != store.ScopeAssign {
		fe.add("allowed_origins", "is only for assign keys: write and admin keys are never usable from a browser")
	}
	if len(body.AllowedOrigins) > MaxAllowedOrigins {
		fe.add("allowed_origins", "must list at most %d origins", MaxAllowedOrigins)
	}
	seen := map[string]bool{}
	for i, o := range body.AllowedOrigins {
		field := fmt.Sprintf("allowed_origins[%d]", i)
		if reason := checkOrigin(o); reason != "" {
			fe.add(field, "%s", reason)
		} else if seen[o] {
			fe.add(field, "repeats %q", o)
		}
		seen[o] = true
	}
	if err := fe.err(); err != nil {
		return err
	}
	p := principalFrom(r.Context())
	plain, k := apikey.New(p.WorkspaceID, name, scope, s.now())
	if len(body.AllowedOrigins) > 0 {
		k.AllowedOrigins = body.AllowedOrigins
	}
	if err := s.store.CreateKey(r.Context(), k); err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	return respond(w, http.StatusCreated, toKeyJSON(k, plain))
}

// checkOrigin says why o is not an origin written the way a browser sends
// it in the Origin header, or returns "". Browsers compare origins as
// strings, so an allowed origin must be in that exact form to ever match:
// lower-case http or https scheme and host, a port only when it is not the
// scheme's default, nothing after the authority.
func checkOrigin(o string) string {
	const form = "must be an origin scheme://host[:port] as a browser sends it, such as https://shop.example"
	if o == "" || len(o) > maxOriginLen {
		return fmt.Sprintf("must be 1 to %d characters", maxOriginLen)
	}
	u, err := url.Parse(o)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
		return form
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "must use the http or https scheme"
	}
	if strings.ContainsAny(o, "*") {
		return "must be one exact origin: wildcards are not allowed"
	}
	if strings.ToLower(o) != o {
		return "must be in lower case, as browsers send it"
	}
	if port := u.Port(); port == "80" && u.Scheme == "http" || port == "443" && u.Scheme == "https" {
		return fmt.Sprintf("must leave out the default port %s, as browsers do", port)
	}
	if strings.HasSuffix(u.Host, ":") || u.Scheme+"://"+u.Host != o {
		return form
	}
	return ""
}

// handleListKeys serves GET /v1/keys: the workspace's keys, revoked ones
// included, without their secrets (which are not stored).
func (s *server) handleListKeys(w http.ResponseWriter, r *http.Request) error {
	params, want, err := pageParams(r, id.Key)
	if err != nil {
		return err
	}
	keys, err := s.store.ListKeysPage(r.Context(), principalFrom(r.Context()).WorkspaceID, params)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	return respond(w, http.StatusOK, page(keys, want,
		func(k store.APIKey) string { return k.ID },
		func(k store.APIKey) keyJSON { return toKeyJSON(k, "") }))
}

// handleDeleteKey serves DELETE /v1/keys/{id}: it revokes the key (the row
// stays, for the list and the logs). This replica forgets the key at once;
// another replica that verified it less than keyCacheTTL ago keeps
// accepting it until its cache entry expires (cache.go). Revoking the key
// that makes the call is allowed; revoking twice is not an error.
func (s *server) handleDeleteKey(w http.ResponseWriter, r *http.Request) error {
	kid := r.PathValue("id")
	if !id.HasPrefix(kid, id.Key) {
		return apperr.New(apperr.NotFound, "no API key %q in this workspace", kid)
	}
	if err := s.store.RevokeKey(r.Context(), principalFrom(r.Context()).WorkspaceID, kid, s.now()); err != nil {
		return err
	}
	s.keyCache.deleteFunc(func(_ [32]byte, k store.APIKey) bool { return k.ID == kid })
	w.WriteHeader(http.StatusNoContent)
	return nil
}
