package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/samplit/samplit/internal/apikey"
	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

type createWorkspaceRequest struct {
	Name string `json:"name"`
}

type workspaceCreatedJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// AdminKey is the new workspace's first admin key, shown only here.
	AdminKey  string `json:"admin_key"`
	CreatedAt string `json:"created_at"`
}

// handleCreateWorkspace serves POST /v1/workspaces: a new tenant with its
// own admin key, created in one transaction so that a workspace never exists
// without a way in. Any admin key may create workspaces; the new one shares
// nothing with the caller's.
func (s *server) handleCreateWorkspace(w http.ResponseWriter, r *http.Request) error {
	var body createWorkspaceRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	if reason := apikey.ValidName(body.Name); reason != "" {
		return apperr.Fields([]apperr.FieldError{{Field: "name", Reason: reason}})
	}
	now := s.now()
	ws := store.Workspace{ID: id.New(id.Workspace), Name: body.Name, CreatedAt: now}
	plain, key := apikey.New(ws.ID, "admin", store.ScopeAdmin, now)
	if err := s.store.CreateWorkspaceWithKey(r.Context(), ws, key); err != nil {
		if apperr.Is(err, apperr.Conflict) {
			return &apperr.Error{Code: apperr.Conflict, Err: err,
				Message: fmt.Sprintf("a workspace named %q exists", body.Name),
				Fields:  []apperr.FieldError{{Field: "name", Reason: "is taken"}}}
		}
		return fmt.Errorf("create workspace: %w", err)
	}
	return respond(w, http.StatusCreated, workspaceCreatedJSON{
		ID: ws.ID, Name: ws.Name, AdminKey: plain, CreatedAt: timestamp(ws.CreatedAt),
	})
}

// workspaceReplay keeps the new admin key out of the idempotency store
// (keys are stored only as hashes, and the idempotency table must not be a
// way around that). A retry of a successful creation therefore cannot get
// the first key back: it gets the same workspace with a new admin key, which
// is what a client that lost the first response needs. The first key stays
// valid; an admin can list and revoke keys.
func workspaceReplay(s *server) *secretReplay {
	return &secretReplay{
		redact: func(status int, body []byte) []byte {
			var out workspaceCreatedJSON
			if status != http.StatusCreated || json.Unmarshal(body, &out) != nil {
				return body
			}
			out.AdminKey = ""
			redacted, err := json.Marshal(out)
			if err != nil {
				return nil
			}
			return redacted
		},
		replay: func(w http.ResponseWriter, r *http.Request, status int, body []byte) error {
			var out workspaceCreatedJSON
			if status != http.StatusCreated {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(status)
				_, _ = w.Write(body)
				return nil
			}
			if err := json.Unmarshal(body, &out); err != nil {
				return fmt.Errorf("replay workspace creation: %w", err)
			}
			plain, key := apikey.New(out.ID, "admin (idempotent retry)", store.ScopeAdmin, s.now())
			if err := s.store.CreateKey(r.Context(), key); err != nil {
				return fmt.Errorf("replay workspace creation: create key: %w", err)
			}
			out.AdminKey = plain
			return respond(w, http.StatusCreated, out)
		},
	}
}
