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
	"sync"
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
	// Documentation ranges (RFC 5737, RFC 3849): no public receiver lives
	// there, and test networks do (192.0.2.0/24 is this machine's own).
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("2001:db8::/32"),
	// Teredo tunnels carry an obfuscated IPv4 client address and an IPv4
	// server address; a webhook receiver has no business there.
	netip.MustParsePrefix("2001::/32"),
}

// embeddedIPv4 returns the IPv4 address an IPv6 address carries in the
// forms a stack may route to IPv4 — IPv4-compatible (::a.b.c.d, deprecated
// but still parsed), IPv4-translated (::ffff:0:a.b.c.d, RFC 2765) and 6to4
// (2002:aabb:ccdd::/48, RFC 3056) — and whether it carries one. Such an
// address is judged by the IPv4 address too: "[::127.0.0.1]" and
// "[2002:7f00:1::]" reach loopback as surely as 127.0.0.1 does.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	zero := func(bs []byte) bool {
		for _, x := range bs {
			if x != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case zero(b[:12]): // IPv4-compatible ::a.b.c.d (:: and ::1 are judged as themselves too)
		return netip.AddrFrom4([4]byte(b[12:])), true
	case zero(b[:8]) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0: // ::ffff:0:a.b.c.d
		return netip.AddrFrom4([4]byte(b[12:])), true
	case b[0] == 0x20 && b[1] == 0x02: // 6to4 2002:aabb:ccdd::/48
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// ownAddrs are this host's interface addresses, read once: a webhook that
// points at the server's own public address would reach services that
// listen on it.
var ownAddrs = sync.OnceValue(func() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out[p.Addr().Unmap()] = true
		}
	}
	return out
})

// CheckAddr returns an error wrapping ErrForbiddenAddress when ip is not a
// public unicast address: loopback, private (RFC 1918, fc00::/7 — which
// holds AWS's fd00:ec2::254), link-local (169.254.0.0/16 — which holds the
// 169.254.169.254 metadata service — and fe80::/10), unspecified,
// multicast, broadcast, one of extraForbidden (documentation ranges and
// Teredo among them) or one of this host's own addresses. IPv4-mapped IPv6
// addresses are judged as the IPv4 address they carry, and so are the other
// IPv6 forms that embed one (embeddedIPv4): both must pass.
func CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap()
	if v4, ok := embeddedIPv4(ip); ok && ip != netip.IPv6Unspecified() && ip != netip.IPv6Loopback() {
		if err := checkOne(v4); err != nil {
			return fmt.Errorf("%w: %s embeds %s, which is refused", ErrForbiddenAddress, ip, v4)
		}
	}
	return checkOne(ip)
}

func checkOne(ip netip.Addr) error {
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
	case ownAddrs()[ip]:
		why = "an address of this host"
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
