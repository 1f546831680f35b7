package client_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/samplit/samplit/client"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{})
	c := srv.client(t)
	ctx := t.Context()

	k, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "website", Scope: client.ScopeAssign,
		AllowedOrigins: []string{"https://shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Key, "sk_") || k.Scope != "assign" || !slices.Equal(k.AllowedOrigins, []string{"https://shop.example"}) || k.RevokedAt != nil {
		t.Fatalf("created %+v", k)
	}
	_, err = c.CreateKey(ctx, client.CreateKeyRequest{Scope: client.ScopeWrite, AllowedOrigins: []string{"https://shop.example"}})
	if e := apiError(t, err); e.Status != 422 || len(e.Fields) != 1 || e.Fields[0].Field != "allowed_origins" {
		t.Errorf("origins on a write key: %v", err)
	}
	var ids []string
	for key, err := range c.Keys(ctx, client.ListParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		if key.Key != "" {
			t.Errorf("the list shows a key")
		}
		ids = append(ids, key.ID)
	}
	if len(ids) != 2 || ids[1] != k.ID {
		t.Errorf("listed %v", ids)
	}
	browser := client.New(srv.URL, k.Key)
	if _, err := browser.ListKeys(ctx, client.ListParams{}); !client.IsForbidden(err) {
		t.Errorf("assign key lists keys: %v", err)
	}
	if err := c.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeKey(ctx, "key_nothere"); !client.IsNotFound(err) {
		t.Errorf("revoke unknown: %v", err)
	}
	page, err := c.ListKeys(ctx, client.ListParams{})
	if err != nil || len(page.Items) != 2 || page.Items[1].RevokedAt == nil {
		t.Errorf("after revoke: %+v, %v", page, err)
	}
}
