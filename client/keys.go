package client

import (
	"context"
	"iter"
	"net/http"
	"time"
)

// Key scopes, from most to least powerful.
const (
	ScopeAdmin  = "admin"  // keys, webhooks, workspaces, everything
	ScopeWrite  = "write"  // experiments, funnels, campaigns and their events
	ScopeAssign = "assign" // assignment and events only: for apps and web pages
)

// APIKey is an API key of the workspace. The key itself (Key) is only in
// the answer to CreateKey: the server keeps only its hash.
type APIKey struct {
	ID    string `json:"id"`
	Key   string `json:"key,omitempty"`
	Name  string `json:"name"`
	Scope string `json:"scope"`
	// AllowedOrigins are the browser origins from which an assign key may
	// be used (empty: from no browser).
	AllowedOrigins []string   `json:"allowed_origins"`
	CreatedAt      time.Time  `json:"created_at"`
	RevokedAt      *time.Time `json:"revoked_at"`
}

// CreateKeyRequest is the body of CreateKey.
type CreateKeyRequest struct {
	// Name defaults to "<scope> key".
	Name  string `json:"name,omitempty"`
	Scope string `json:"scope"`
	// AllowedOrigins, for assign keys only, lists the web origins
	// (scheme://host[:port], exactly as a browser sends them) that may use
	// the key from a page.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
}

// CreateKey makes an API key (admin keys only) and returns it, with the
// key, which is never shown again. It is not retried: the server does not
// take an Idempotency-Key here (a replay would have to store the key).
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest, opts ...CallOption) (*APIKey, error) {
	var out APIKey
	if err := c.do(ctx, request{method: http.MethodPost, path: pathOf("keys"), body: req}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys returns one page of the workspace's keys, revoked ones included
// (p.Status is ignored). Keys iterates over all of them.
func (c *Client) ListKeys(ctx context.Context, p ListParams, opts ...CallOption) (*Page[APIKey], error) {
	var out Page[APIKey]
	if err := c.do(ctx, request{method: http.MethodGet, path: pathOf("keys"), query: p.query(false), idempotent: true}, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Keys iterates over every key, page by page, like Experiments.
func (c *Client) Keys(ctx context.Context, p ListParams, opts ...CallOption) iter.Seq2[APIKey, error] {
	return paginate(p, func(p ListParams) (*Page[APIKey], error) { return c.ListKeys(ctx, p, opts...) })
}

// RevokeKey revokes the key with the id. Every replica refuses it within
// about a second. Revoking twice is not an error, so it is retried.
func (c *Client) RevokeKey(ctx context.Context, id string, opts ...CallOption) error {
	return c.do(ctx, request{method: http.MethodDelete, path: pathOf("keys", id), idempotent: true}, nil, opts)
}
