// Package client is the Go client of the Samplit HTTP API: create and run
// adaptive experiments, funnels and message campaigns, assign units to
// variants, record conversions, read results and manage webhook endpoints,
// from any Go program in three lines:
//
//	c := client.New("http://localhost:8080", os.Getenv("SAMPLIT_KEY"))
//	a, err := c.Assign(ctx, "checkout-button", userID)
//	_, err = c.Track(ctx, "checkout-button", client.Event{UnitID: userID, IdempotencyKey: orderID})
//
// Every method takes a context.Context and maps one endpoint of the API; the
// request and response types mirror its JSON (see the OpenAPI document the
// server serves at /openapi.json). Methods are safe for concurrent use.
//
// # Errors
//
// The server answers failures as RFC 9457 problem+json; the client decodes
// them into an *Error with the status, the problem type, the request id (to
// quote when reporting a problem) and the field errors of a 422, so callers
// can show validation messages next to the right input. IsNotFound,
// IsConflict, IsInvalid and friends answer the usual questions without a
// type assertion.
//
// # Retries
//
// A call is retried, with exponential backoff and jitter, only when sending
// it twice cannot do anything twice: reads, assignments (sticky: the same
// unit always gets the same variant), funnel progress (sticky per unit and
// step), campaign sends (a recipient keeps its variant), events that all
// carry an idempotency key, and the writes the client sends with an
// Idempotency-Key header (creations and lifecycle changes get one
// automatically; WithIdempotencyKey sets your own). Such calls are retried
// on network errors, 429 (after the server's Retry-After) and 502/503/504.
// Anything else is sent exactly once and its failure returned as it is: an
// event without an idempotency key, and the webhook writes the server does
// not make idempotent (creating an endpoint, rotating its secret).
package client
