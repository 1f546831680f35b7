package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	randv2 "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of the retry policy (see WithRetry).
const (
	// DefaultMaxAttempts is how many times a retryable call is sent at most,
	// the first time included.
	DefaultMaxAttempts = 4
	// DefaultBaseDelay is the backoff before the first retry; it doubles
	// with each further retry.
	DefaultBaseDelay = 200 * time.Millisecond
	// MaxRetryDelay caps one backoff. A Retry-After asking for more than this
	// is not waited for: the call fails at once with the server's 429 or
	// 503, so that a caller is not blocked for minutes without knowing.
	MaxRetryDelay = 30 * time.Second
)

// DefaultUserAgent is the User-Agent header the client sends unless
// WithUserAgent says otherwise.
const DefaultUserAgent = "samplit-go-client/1"

// IdempotencyHeader is the request header that makes a write safe to retry:
// the server runs a request with a given key once and answers any repeat
// with the first response.
const IdempotencyHeader = "Idempotency-Key"

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// Client calls one Samplit server with one API key. Create it with New; it
// is safe for concurrent use and should be reused, since it keeps the HTTP
// connections of its http.Client alive between calls.
type Client struct {
	base        string // the server's base URL without a trailing slash
	baseErr     error  // why the base URL is unusable, reported by every call
	apiKey      string
	hc          *http.Client
	log         *slog.Logger
	userAgent   string
	maxAttempts int
	baseDelay   time.Duration
	// sleep waits between attempts; tests replace it to observe delays
	// without waiting.
	sleep func(ctx context.Context, d time.Duration) error
}

// Option configures a Client in New.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc, for instance
// one with a custom transport, proxy or timeout. The default is a client
// with a 30-second timeout per attempt.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithLogger sends the client's logs to l: a debug line per request and a
// warning per retry. The default discards them. The API key is never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) {
		if l != nil {
			c.log = l
		}
	}
}

// WithRetry sets the retry policy of retryable calls: at most maxAttempts
// sends in all (1 or less turns retries off), the first retry after about
// baseDelay, each further one after about twice the previous (with jitter,
// so that many clients failing together do not retry together), capped at
// MaxRetryDelay. A baseDelay of 0 or less keeps DefaultBaseDelay.
func WithRetry(maxAttempts int, baseDelay time.Duration) Option {
	return func(c *Client) {
		c.maxAttempts = max(maxAttempts, 1)
		if baseDelay > 0 {
			c.baseDelay = baseDelay
		}
	}
}

// WithUserAgent sets the User-Agent header, so that the server's access
// log tells your service apart. The default is DefaultUserAgent.
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		if ua != "" {
			c.userAgent = ua
		}
	}
}

// New returns a client of the server at baseURL (such as
// "http://localhost:8080", with a path prefix when the server sits behind a
// proxy) that authenticates with apiKey. A malformed baseURL is reported by
// every call rather than here, so that New fits in a variable declaration.
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{
		apiKey:      apiKey,
		hc:          &http.Client{Timeout: 30 * time.Second},
		log:         slog.New(slog.DiscardHandler),
		userAgent:   DefaultUserAgent,
		maxAttempts: DefaultMaxAttempts,
		baseDelay:   DefaultBaseDelay,
		sleep:       sleepContext,
	}
	u, err := url.Parse(baseURL)
	switch {
	case err != nil:
		c.baseErr = fmt.Errorf("samplit: base URL %q: %w", baseURL, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		c.baseErr = fmt.Errorf("samplit: base URL %q must be an absolute http or https URL", baseURL)
	case u.RawQuery != "" || u.Fragment != "":
		c.baseErr = fmt.Errorf("samplit: base URL %q must not have a query or fragment", baseURL)
	default:
		c.base = strings.TrimSuffix(u.String(), "/")
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// CallOption adjusts one call.
type CallOption func(*callConfig)

type callConfig struct {
	idempotencyKey string
	requestID      string
}

// WithIdempotencyKey sends the call with this Idempotency-Key instead of
// one the client makes up. Use a key derived from your own operation (an
// order id, a job id) to make a creation safe to repeat across process
// restarts, not only across the client's own retries. The server remembers
// keys for a day, per workspace; the same key with a different request is
// refused with a 422. Only writes that change configuration (creations and
// lifecycle changes) honour the header; events carry their own
// idempotency_key field instead.
func WithIdempotencyKey(key string) CallOption {
	return func(cc *callConfig) { cc.idempotencyKey = key }
}

// WithRequestID sends the call with this X-Request-Id, so that the server's
// logs and the problem of a failure carry your own trace id. The server
// accepts 1 to 128 characters of a-z, A-Z, 0-9 and "-_.:" and makes up its
// own id for anything else.
func WithRequestID(id string) CallOption {
	return func(cc *callConfig) { cc.requestID = id }
}

// request describes one call of the API.
type request struct {
	method string
	path   string // starting with /v1/..., path segments already escaped
	query  url.Values
	body   any // sent as JSON; nil sends no body
	// idempotent: sending it twice has the effect of sending it once.
	idempotent bool
	// keyed: the route honours the Idempotency-Key header, so the client
	// sends one (its own or the caller's) and may then retry it.
	keyed bool
}

// do sends the request, retrying it when that is safe, and decodes a 2xx
// response into out (unless out is nil) or a failure into an *Error.
func (c *Client) do(ctx context.Context, req request, out any, opts []CallOption) error {
	if c.baseErr != nil {
		return c.baseErr
	}
	var cc callConfig
	for _, o := range opts {
		o(&cc)
	}
	var payload []byte
	if req.body != nil {
		var err error
		if payload, err = json.Marshal(req.body); err != nil {
			return fmt.Errorf("samplit: %s %s: encode request: %w", req.method, req.path, err)
		}
	}
	target := c.base + req.path
	if len(req.query) > 0 {
		target += "?" + req.query.Encode()
	}
	key := cc.idempotencyKey
	if req.keyed && key == "" {
		// One key for every attempt of this call: a retry of a request that
		// did reach the server gets the first response back.
		key = "samplit-go-" + rand.Text()
	}
	retry := req.idempotent || (req.keyed && key != "")
	attempts := 1
	if retry {
		attempts = c.maxAttempts
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		status, header, body, err := c.send(ctx, req.method, target, payload, key, cc.requestID)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return fmt.Errorf("samplit: %s %s: %w", req.method, req.path, ctxErr)
			}
			if attempt >= attempts {
				return fmt.Errorf("samplit: %s %s%s: %w", req.method, req.path, afterAttempts(attempt), err)
			}
			delay := c.backoff(attempt)
			c.log.WarnContext(ctx, "samplit: retrying after a network error",
				"method", req.method, "path", req.path, "attempt", attempt, "delay", delay, "error", err)
			if serr := c.sleep(ctx, delay); serr != nil {
				return fmt.Errorf("samplit: %s %s: %w (while waiting to retry after: %v)", req.method, req.path, serr, err)
			}
			continue
		}
		c.log.DebugContext(ctx, "samplit: request", "method", req.method, "path", req.path,
			"status", status, "attempt", attempt, "duration", time.Since(start))
		if status >= 200 && status < 300 {
			if out == nil || len(body) == 0 {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("samplit: %s %s: decode the %d response: %w", req.method, req.path, status, err)
			}
			return nil
		}
		apiErr := decodeError(status, header, body)
		if attempt >= attempts || !retryableStatus(status) {
			return apiErr
		}
		delay := c.backoff(attempt)
		if ra, ok := retryAfter(header.Get("Retry-After"), time.Now()); ok {
			if ra > MaxRetryDelay {
				return apiErr
			}
			delay = ra
		}
		c.log.WarnContext(ctx, "samplit: retrying after a temporary failure",
			"method", req.method, "path", req.path, "attempt", attempt, "status", status,
			"request_id", apiErr.RequestID, "delay", delay)
		if err := c.sleep(ctx, delay); err != nil {
			return fmt.Errorf("samplit: %s %s: %w (while waiting to retry after: %w)", req.method, req.path, err, apiErr)
		}
	}
}

// send makes one attempt and returns the whole response. Any failure to
// get a complete response (including a connection dropped while reading
// the body) is an error, which the caller may retry.
func (c *Client) send(ctx context.Context, method, target string, payload []byte, idemKey, requestID string) (int, http.Header, []byte, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	r, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return 0, nil, nil, err
	}
	r.Header.Set("Authorization", "Bearer "+c.apiKey)
	r.Header.Set("Accept", "application/json, application/problem+json")
	r.Header.Set("User-Agent", c.userAgent)
	if payload != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		r.Header.Set(IdempotencyHeader, idemKey)
	}
	if requestID != "" {
		r.Header.Set("X-Request-Id", requestID)
	}
	resp, err := c.hc.Do(r)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var rd io.Reader = resp.Body
	if resp.StatusCode >= 300 {
		rd = io.LimitReader(resp.Body, maxErrorBody)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read the %d response: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// backoff is the delay before retry number attempt (1 for the first):
// baseDelay·2^(attempt-1), capped at MaxRetryDelay, with "equal jitter"
// (a random half of it added to the other half), so that the delays grow
// but clients that failed together spread out.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.baseDelay
	for i := 1; i < attempt && d < MaxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, MaxRetryDelay)
	half := d / 2
	return half + time.Duration(randv2.Int64N(int64(d-half)+1))
}

// retryableStatus reports whether a response says "try again later"
// without the request having been carried out: rate limited, or a proxy or
// server that could not serve it now.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(MaxRetryDelay/time.Second)+1 {
			return MaxRetryDelay + time.Second, true
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func afterAttempts(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(" (after %d attempts)", n)
}

// sleepContext waits for d or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pathOf joins escaped path segments below /v1.
func pathOf(segments ...string) string {
	var b strings.Builder
	b.WriteString("/v1")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}
