package client

import (
	"context"
	"net/http"
	"time"
)

// Workspace is a tenant created by CreateWorkspace.
type Workspace struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// AdminKey is the new workspace's first admin key, shown only in this
	// response: keep it. (A retried creation gets a second admin key of the
	// same workspace, since the server does not store keys in plaintext.)
	AdminKey  string    `json:"admin_key"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateWorkspace creates another tenant with its own admin key; it needs
// an admin key. A name that exists is a 409.
func (c *Client) CreateWorkspace(ctx context.Context, name string, opts ...CallOption) (*Workspace, error) {
	body := struct {
		Name string `json:"name"`
	}{name}
	var out Workspace
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("workspaces"), body: body, keyed: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
