package webhooks

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/agentroster/agentroster/models"
)

// errBlockedDestination is a webhook delivery refused because every address
// its host has is inside the server (loopback, private, link-local…) and
// outside WEBHOOK_ALLOW_CIDRS. Nothing was sent, so the delivery log says only
// this, never a connection result.
var errBlockedDestination = errors.New("blocked destination")

// blockedPrefixes are the ranges a webhook may not reach unless allowed, on
// top of what netip classifies as loopback, private, link-local, unspecified
// or multicast.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (0.0.0.0 reaches the local host)
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, cloud metadata (169.254.169.254)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/96"),           // unspecified, loopback, IPv4-compatible
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (RFC 2765)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64 (RFC 8215)
	netip.MustParsePrefix("2002::/16"),       // 6to4: may embed any IPv4 address
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// nat64 embeds an IPv4 address in its last 32 bits (RFC 6052).
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Policy decides which addresses webhook deliveries may reach: anything
// public, and the internal ranges in Allow (WEBHOOK_ALLOW_CIDRS).
type Policy struct{ Allow []netip.Prefix }

// allowed reports whether a delivery may connect to ip: anything public, and
// anything inside an allowed prefix.
func (p Policy) allowed(ip netip.Addr) bool {
	ip = ip.WithZone("")
	for _, pr := range p.Allow {
		if pr.Contains(ip) || pr.Contains(ip.Unmap()) {
			return true
		}
	}
	return !internalAddr(ip)
}

// internalAddr reports whether ip is loopback, private (RFC 1918, CGNAT,
// unique-local IPv6), link-local, unspecified, multicast or broadcast, in any
// of its forms (IPv4-mapped and NAT64 IPv6 included).
func internalAddr(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	if ip.Is6() && nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() ||
		ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return true
	}
	for _, pr := range blockedPrefixes {
		if pr.Contains(ip) {
			return true
		}
	}
	return false
}

// CheckURL refuses, when an endpoint is added, a URL whose host is localhost
// or a literal address the policy blocks. Host names are checked again, with
// every address they resolve to, when a delivery dials.
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil // ValidateWebhookURL names the problem
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return nil
	}
	const msg = "must not point inside the server's network (loopback, private, link-local or metadata addresses); an operator can allow ranges with WEBHOOK_ALLOW_CIDRS"
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		if !p.allowed(netip.IPv6Loopback()) && !p.allowed(netip.AddrFrom4([4]byte{127, 0, 0, 1})) {
			return models.Invalid("url", msg)
		}
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && !p.allowed(ip) {
		return models.Invalid("url", msg)
	}
	return nil
}

// lookupFunc resolves a host name to its addresses.
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func systemLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// dialContext resolves the host itself and connects only to allowed
// addresses, so a name that resolves inside (or is changed to, between
// the check and the dial) never gets a connection. The dialer's Control
// checks the address actually dialled once more.
func (p Policy) dialContext(d *net.Dialer, lookup lookupFunc) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !p.allowed(ap.Addr()) {
			return errBlockedDestination
		}
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		var ips []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{ip}
		} else if ips, err = lookup(ctx, host); err != nil {
			return nil, err
		}
		var firstErr error
		for _, ip := range ips {
			if !p.allowed(ip) {
				continue
			}
			conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return conn, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		if firstErr == nil {
			return nil, errBlockedDestination
		}
		return nil, firstErr
	}
}
