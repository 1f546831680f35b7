package client

import (
	"context"
	"time"
)

// SetSleep replaces the wait between attempts, so that retry tests observe
// the delays without waiting for them.
func SetSleep(c *Client, f func(ctx context.Context, d time.Duration) error) { c.sleep = f }

// Backoff exposes the backoff before retry number attempt.
func Backoff(c *Client, attempt int) time.Duration { return c.backoff(attempt) }
