package api

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"

	"github.com/samplit/samplit/internal/id"
	"github.com/samplit/samplit/internal/store"
)

// List pagination limits.
const (
	DefaultListLimit = 20
	MaxListLimit     = 100
)

// pageJSON is one page of a list.
type pageJSON[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// listFilter reads one optional filter of a list's query into p, adding
// the field error of a bad value to fe.
type listFilter func(q url.Values, p *store.ListParams, fe *fieldErrors)

// pageParams reads limit and cursor (the base64url of the last id of the
// previous page, which must have the prefix), then the filters. The cursor
// is opaque to clients: ids are time-ordered, so paging by id is stable
// while rows are being created. The returned params ask for one more row
// than the page holds, to tell whether there is a next page; want is the
// page size.
func pageParams(r *http.Request, prefix string, filters ...listFilter) (params store.ListParams, want int, err error) {
	q := r.URL.Query()
	var fe fieldErrors
	params = store.ListParams{Limit: DefaultListLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			fe.add("limit", "must be an integer from 1 to %d", MaxListLimit)
		} else {
			params.Limit = n
		}
	}
	if v := q.Get("cursor"); v != "" {
		after, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || !id.HasPrefix(string(after), prefix) {
			fe.add("cursor", "is not a cursor this API returned")
		} else {
			params.After = string(after)
		}
	}
	for _, f := range filters {
		f(q, &params, &fe)
	}
	if err := fe.err(); err != nil {
		return params, 0, err
	}
	want = params.Limit
	params.Limit++
	return params, want, nil
}

// statusFilter reads the optional lifecycle status filter.
func statusFilter(q url.Values, p *store.ListParams, fe *fieldErrors) {
	if v := q.Get("status"); v != "" {
		switch st := store.Status(v); st {
		case store.StatusDraft, store.StatusRunning, store.StatusPaused, store.StatusCompleted, store.StatusArchived:
			p.Status = st
		default:
			fe.add("status", "must be one of draft, running, paused, completed, archived")
		}
	}
}

// page turns the rows read with pageParams into a page of at most want
// items, with the cursor of the next page when there are more rows.
func page[R, T any](rows []R, want int, rowID func(R) string, conv func(R) T) pageJSON[T] {
	out := pageJSON[T]{Items: make([]T, 0, min(len(rows), want))}
	if len(rows) > want {
		rows = rows[:want]
		c := base64.RawURLEncoding.EncodeToString([]byte(rowID(rows[len(rows)-1])))
		out.NextCursor = &c
	}
	for _, r := range rows {
		out.Items = append(out.Items, conv(r))
	}
	return out
}
