package client_test

import (
	"net/http"
	"testing"

	"github.com/samplit/samplit/client"
)

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *client.Error
		want string
		code string
	}{
		{"problem", &client.Error{Status: 404, Type: client.ProblemTypeBase + "not_found", Title: "Not found",
			Detail: `no experiment "x" in this workspace`, RequestID: "req_1"},
			`samplit: 404 Not found: no experiment "x" in this workspace [request req_1]`, "not_found"},
		{"fields", &client.Error{Status: 422, Type: client.ProblemTypeBase + "invalid", Title: "Invalid request",
			Detail: "the request has invalid fields", Fields: []client.FieldError{{"key", "is required"}, {"variants", "is required"}}},
			"samplit: 422 Invalid request: the request has invalid fields (key is required; variants is required)", "invalid"},
		{"not a problem", &client.Error{Status: 502, Title: "Bad Gateway"}, "samplit: 502 Bad Gateway", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if got := tt.err.Code(); got != tt.code {
				t.Errorf("Code() = %q, want %q", got, tt.code)
			}
		})
	}
	if client.StatusOf(nil) != 0 || client.IsNotFound(nil) {
		t.Error("a nil error has a status")
	}
}

func TestBadBaseURL(t *testing.T) {
	for _, base := range []string{"localhost:8080", "ftp://example.com", "http://example.com/?a=1", "http://[::1"} {
		c := client.New(base, "k")
		if _, err := c.GetExperiment(t.Context(), "x"); err == nil || client.StatusOf(err) != 0 {
			t.Errorf("New(%q): err = %v, want a configuration error", base, err)
		}
	}
}

func TestBaseURLWithPrefix(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, serverConfig{wrap: func(h http.Handler) http.Handler { return http.StripPrefix("/samplit", h) }})
	for _, base := range []string{srv.URL + "/samplit", srv.URL + "/samplit/"} {
		c := client.New(base, srv.Admin)
		if _, err := c.ListExperiments(t.Context(), client.ListParams{}); err != nil {
			t.Errorf("behind a path prefix %s: %v", base, err)
		}
	}
}
