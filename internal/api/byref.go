package api

import (
	"context"
	"fmt"

	"github.com/samplit/samplit/internal/apperr"
	"github.com/samplit/samplit/internal/optimize"
)

// byRef finds a resource (noun: "funnel") of the caller's workspace by id
// or key with get. Anything else, including another workspace's resource,
// is the same 404 (see experimentByRef, which adds a cache).
func byRef[T any](ctx context.Context, noun, ref string, get func(ctx context.Context, workspaceID, ref string) (T, error), workspaceOf func(T) string) (T, error) {
	var zero T
	p := principalFrom(ctx)
	notFound := apperr.New(apperr.NotFound, "no %s %q in this workspace", noun, ref)
	if !isSlug(ref) {
		return zero, notFound
	}
	v, err := get(ctx, p.WorkspaceID, ref)
	if apperr.Is(err, apperr.NotFound) || (err == nil && workspaceOf(v) != p.WorkspaceID) {
		return zero, notFound
	}
	if err != nil {
		return zero, fmt.Errorf("get %s %q: %w", noun, ref, err)
	}
	return v, nil
}

// createError is the response to the store's failure to create a resource
// (article and noun: "an", "experiment") with key: a conflict means the key
// is taken.
func createError(err error, article, noun, key string) error {
	return optimize.CreateError(err, article, noun, key)
}
