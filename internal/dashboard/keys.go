package dashboard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/samplit/samplit/internal/store"
)

// The keys page (admin only, as the API's /v1/keys routes are) lists the
// workspace's API keys, makes an assign key for a website with its allowed
// origins, and revokes keys. Both changes go through the API handler, so
// the origin rules and their messages are the API's own. A new key is shown
// once, in the answer to the form, never in an address (it would stay in
// the browser's history).

// needsAdminForKeys is what a write key sees instead of the keys page.
const needsAdminForKeys = "API keys need an admin key. You are signed in with a write key: sign out and sign in with an admin key of this workspace to manage keys."

// keysShown bounds the list; the API pages through them all.
const keysShown = 200

type keyRow struct {
	store.APIKey
	Revoked bool
}

type keysPage struct {
	pageBase
	Rows []keyRow
	More bool
	// The create form: its values after a failed attempt, and its errors.
	Name, Origins string
	Errors        map[string]string
	Summary       []string
	// Created is the key made by the form just sent, shown this once.
	Created *createdKey
	Flash   string
	Error   string
}

type createdKey struct {
	ID, Key, Name string
	Origins       []string
}

func (d *Dashboard) keysPage(r *http.Request, s *session) (keysPage, error) {
	list, err := d.store.ListKeysPage(r.Context(), s.workspaceID, store.ListParams{Limit: keysShown + 1, Newest: true})
	if err != nil {
		return keysPage{}, err
	}
	page := keysPage{pageBase: d.base(r, s, "API keys"), Errors: map[string]string{}}
	if len(list) > keysShown {
		list, page.More = list[:keysShown], true
	}
	for _, k := range list {
		page.Rows = append(page.Rows, keyRow{APIKey: k, Revoked: k.RevokedAt != nil})
	}
	return page, nil
}

func (d *Dashboard) adminOnlyKeys(w http.ResponseWriter, r *http.Request, s *session) bool {
	if s.scope == store.ScopeAdmin {
		return true
	}
	d.renderError(w, r, http.StatusForbidden, needsAdminForKeys)
	return false
}

func (d *Dashboard) handleKeyList(w http.ResponseWriter, r *http.Request, s *session) {
	if !d.adminOnlyKeys(w, r, s) {
		return
	}
	page, err := d.keysPage(r, s)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if r.URL.Query().Get("done") == "revoked" {
		page.Flash = "The key was revoked. Every replica refuses it within a second."
	}
	d.render(w, r, http.StatusOK, "keys", page)
}

// handleCreateKey makes an assign key for a website through POST /v1/keys.
func (d *Dashboard) handleCreateKey(w http.ResponseWriter, r *http.Request, s *session) {
	if !d.adminOnlyKeys(w, r, s) {
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	originsText := r.PostFormValue("origins")
	origins := []string{}
	for _, line := range strings.FieldsFunc(originsText, func(c rune) bool { return c == '\n' || c == '\r' || c == ',' || c == ' ' || c == '\t' }) {
		origins = append(origins, line)
	}
	body := map[string]any{"scope": "assign", "allowed_origins": origins}
	if name != "" {
		body["name"] = name
	}
	res, err := d.callAPI(r.Context(), r, s, http.MethodPost, "/v1/keys", body)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	page, err := d.keysPage(r, s)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if res.Problem != nil {
		page.Name, page.Origins = name, originsText
		for _, fe := range res.Problem.Errors {
			field := fe.Field
			if strings.HasPrefix(field, "allowed_origins") {
				msg := fe.Reason
				if i := strings.TrimPrefix(strings.TrimSuffix(strings.TrimPrefix(field, "allowed_origins["), "]"), "allowed_origins"); i != "" {
					if n := atoiOr(i, -1); n >= 0 && n < len(origins) {
						msg = origins[n] + ": " + fe.Reason
					}
				}
				field = "origins"
				if prev := page.Errors[field]; prev != "" {
					msg = prev + "; " + msg
				}
				page.Errors[field] = msg
			} else {
				page.Errors[field] = fe.Reason
			}
			page.Summary = append(page.Summary, fe.Field+" "+fe.Reason)
		}
		if len(page.Summary) == 0 {
			page.Error = res.Problem.message()
		}
		d.render(w, r, res.Status, "keys", page)
		return
	}
	var out struct {
		ID             string   `json:"id"`
		Key            string   `json:"key"`
		Name           string   `json:"name"`
		AllowedOrigins []string `json:"allowed_origins"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		d.fail(w, r, err)
		return
	}
	page.Created = &createdKey{ID: out.ID, Key: out.Key, Name: out.Name, Origins: out.AllowedOrigins}
	d.render(w, r, http.StatusCreated, "keys", page)
}

// handleRevokeKey revokes a key through DELETE /v1/keys/{id}.
func (d *Dashboard) handleRevokeKey(w http.ResponseWriter, r *http.Request, s *session) {
	if !d.adminOnlyKeys(w, r, s) {
		return
	}
	kid := r.PathValue("id")
	if kid == "" || len(kid) > 100 {
		d.renderError(w, r, http.StatusNotFound, "There is no such API key in this workspace.")
		return
	}
	res, err := d.callAPI(r.Context(), r, s, http.MethodDelete, "/v1/keys/"+url.PathEscape(kid), nil)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if res.Problem != nil {
		d.renderError(w, r, res.Status, res.Problem.message())
		return
	}
	// Revoking the session's own key ends the session: the next page asks
	// to sign in again.
	http.Redirect(w, r, "/keys?done=revoked", http.StatusSeeOther)
}

// atoiOr parses a small non-negative decimal, or returns def.
func atoiOr(s string, def int) int {
	if s == "" || len(s) > 6 {
		return def
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return def
		}
		n = n*10 + int(c-'0')
	}
	return n
}
