package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/samplit/samplit/internal/apperr"
)

// apiResult is the answer of an in-process API call.
type apiResult struct {
	Status  int
	Body    []byte
	Problem *problem // set for a problem+json answer
}

// problem is the part of an RFC 9457 problem the pages show.
type problem struct {
	Title  string              `json:"title"`
	Detail string              `json:"detail"`
	Errors []apperr.FieldError `json:"errors"`
}

// message is the problem's sentence for people.
func (p *problem) message() string {
	if p.Detail != "" {
		return p.Detail
	}
	return p.Title
}

// callAPI makes one request to the API handler in process, as the session's
// key. This is how the dashboard makes every change (see the package
// comment): the API's rules, and everything the API does on a change, apply.
// The original request's client address goes along for the API's access log.
func (d *Dashboard) callAPI(ctx context.Context, orig *http.Request, s *session, method, path string, body any) (apiResult, error) {
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			return apiResult{}, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, path, &buf)
	if err != nil {
		return apiResult{}, fmt.Errorf("request %s %s: %w", method, path, err)
	}
	req.RemoteAddr = orig.RemoteAddr
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{header: http.Header{}}
	d.api.ServeHTTP(rec, req)
	res := apiResult{Status: rec.status, Body: rec.body.Bytes()}
	if res.Status == 0 {
		res.Status = http.StatusOK
	}
	if res.Status >= 400 {
		var p problem
		if err := json.Unmarshal(res.Body, &p); err != nil || (p.Title == "" && p.Detail == "") {
			return res, fmt.Errorf("%s %s: status %d without a problem document", method, path, res.Status)
		}
		res.Problem = &p
	}
	return res, nil
}

// recorder is the http.ResponseWriter of an in-process API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
