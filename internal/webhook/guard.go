package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is wrapped by every refusal of an address that
// webhooks may not reach (loopback, private, link-local, metadata, …).
var ErrForbiddenAddress = errors.New("address not allowed for webhooks")

// extraForbidden are ranges that netip's predicates do not cover but that no
// public webhook receiver lives in: carrier-grade NAT (often the cloud's
// internal network), the IETF protocol assignments (192.0.0.0/24, which
// holds some vendors' metadata endpoints), benchmarking, the "this network"
// block, IPv4 reserved space, and NAT64 (whose embedded IPv4 could be
// anything, including 169.254.169.254).
var extraForbidden = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// CheckAddr returns an error wrapping ErrForbiddenAddress when ip is not a
// public unicast address: loopback, private (RFC 1918, fc00::/7 — which
// holds AWS's fd00:ec2::254), link-local (169.254.0.0/16 — which holds the
// 169.254.169.254 metadata service — and fe80::/10), unspecified,
// multicast, broadcast or one of extraForbidden. IPv4-mapped IPv6 addresses
// are judged as the IPv4 address they carry.
func CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap()
	var why string
	switch {
	case !ip.IsValid():
		why = "invalid"
	case ip.IsLoopback():
		why = "loopback"
	case ip.IsPrivate():
		why = "private"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		why = "link-local (cloud metadata lives there)"
	case ip.IsUnspecified():
		why = "unspecified"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		why = "multicast"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "broadcast"
	default:
		for _, p := range extraForbidden {
			if p.Contains(ip) {
				why = "reserved (" + p.String() + ")"
				break
			}
		}
	}
	if why == "" {
		return nil
	}
	return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, ip, why)
}

// Resolver looks up a host's addresses; *net.Resolver is one. Tests inject
// a map so that they need no DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// URLError is a webhook URL that may not be used, with the reason.
type URLError struct{ Reason string }

func (e *URLError) Error() string { return "webhook url " + e.Reason }

// CheckURL validates a webhook URL at registration: absolute, https (http
// only when allowPrivate), no credentials, and a host every address of which
// is public (unless allowPrivate). It resolves the host now; delivery checks
// again, on the address actually dialled, because DNS may change.
func CheckURL(ctx context.Context, raw string, allowPrivate bool, r Resolver) error {
	if len(raw) > 2048 {
		return &URLError{"must be at most 2048 characters"}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return &URLError{"must be an absolute http(s) URL"}
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowPrivate:
	case u.Scheme == "http":
		return &URLError{"must use https (plain http needs the webhook-allow-private setting)"}
	default:
		return &URLError{"must be an https URL"}
	}
	if u.User != nil {
		return &URLError{"must not carry credentials"}
	}
	if u.Fragment != "" {
		return &URLError{"must not have a fragment"}
	}
	host := u.Hostname()
	if host == "" {
		return &URLError{"must name a host"}
	}
	if allowPrivate {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := CheckAddr(ip); err != nil {
			return &URLError{"must not point at a private address: " + err.Error()}
		}
		return nil
	}
	if r == nil {
		r = net.DefaultResolver
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(lctx, "ip", strings.TrimSuffix(host, "."))
	if err != nil || len(addrs) == 0 {
		return &URLError{fmt.Sprintf("host %q does not resolve", host)}
	}
	for _, ip := range addrs {
		if err := CheckAddr(ip); err != nil {
			return &URLError{fmt.Sprintf("host %q resolves to a forbidden address: %v", host, err)}
		}
	}
	return nil
}

// NewHTTPClient returns the client deliveries are sent with: a timeout for
// the whole exchange, no redirects (a 3xx is a failed attempt: following it
// would let a receiver bounce Samplit to an internal URL), no proxy from the
// environment, and, unless allowPrivate, a dialer that refuses forbidden
// addresses. The check runs in Dialer.Control, on the very address being
// connected to after resolution, so a DNS answer that changed since
// registration (DNS rebinding) is caught too.
func NewHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot parse %q", ErrForbiddenAddress, address)
			}
			return CheckAddr(ap.Addr())
		}
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
