package postgres

import (
	"net/netip"
	"strings"

	"github.com/jackc/pgx/v5"
)

// OnThisMachine reports whether every server the connection URL names
// (its host and any fallback hosts) is on this machine: a Unix socket
// directory, "localhost", or a loopback address. Nothing is resolved or
// dialled; a name other than localhost counts as another machine, as does
// a URL that does not parse.
func OnThisMachine(url string) bool {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return false
	}
	if !localHost(cfg.Host) {
		return false
	}
	for _, f := range cfg.Fallbacks {
		if !localHost(f.Host) {
			return false
		}
	}
	return true
}

func localHost(host string) bool {
	if strings.HasPrefix(host, "/") || strings.EqualFold(host, "localhost") {
		return true // a Unix socket's directory, or the name every resolver keeps for loopback
	}
	addr, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && addr.IsLoopback()
}
