package smtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// Nexthop is a parsed next-hop destination (Postfix's relayhost, the
// nexthop of transport_maps, or the recipient domain).
type Nexthop struct {
	Host  string // host or domain, without brackets
	Port  int    // TCP port
	NoMX  bool   // [host]: look up A/AAAA records only
	Unix  string // LMTP over a unix-domain socket: its path
	Given string // the destination as written
}

// ParseNexthop parses dest as smtp(8) (lmtp false) or lmtp(8) reads it:
// "host", "[host]", "[host]:port", "host:port"; LMTP also "unix:/path" and
// "inet:host:port", and never looks up MX records. A port may be a service
// name ("smtp", "lmtp").
func ParseNexthop(dest string, lmtp bool) (Nexthop, error) {
	n := Nexthop{Given: dest, Port: 25}
	if lmtp {
		n.Port, n.NoMX = 24, true
		switch {
		case strings.HasPrefix(dest, "unix:"):
			n.Unix = dest[len("unix:"):]
			if n.Unix == "" {
				return n, fmt.Errorf("bad destination: %q", dest)
			}
			return n, nil
		case strings.HasPrefix(dest, "inet:"):
			dest = dest[len("inet:"):]
		}
	}
	host, port := dest, ""
	if strings.HasPrefix(dest, "[") {
		end := strings.IndexByte(dest, ']')
		if end < 0 {
			return n, fmt.Errorf("bad destination: %q", n.Given)
		}
		host, n.NoMX = dest[1:end], true
		rest := dest[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return n, fmt.Errorf("bad destination: %q", n.Given)
			}
			port = rest[1:]
		}
	} else if i := strings.LastIndexByte(dest, ':'); i >= 0 {
		host, port = dest[:i], dest[i+1:]
	}
	if host == "" || strings.ContainsAny(host, " \t[]") {
		return n, fmt.Errorf("bad destination: %q", n.Given)
	}
	n.Host = host
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil {
			p, err = net.LookupPort("tcp", port)
		}
		if err != nil || p <= 0 || p > 65535 {
			return n, fmt.Errorf("bad port in destination: %q", n.Given)
		}
		n.Port = p
	}
	return n, nil
}

// Address is one server to try: its name, IP and port, and its MX
// preference.
type Address struct {
	Name string
	IP   net.IP
	Port int
	Pref int
}

// Relay is the relay= form, "name[ip]:port".
func (a Address) Relay() string {
	return fmt.Sprintf("%s[%s]:%d", a.Name, a.IP, a.Port)
}

// HostAddr is "name[ip]" as the texts of errors and replies have it.
func (a Address) HostAddr() string {
	return fmt.Sprintf("%s[%s]", a.Name, a.IP)
}

// Resolver is the part of net.Resolver the client uses; net.Resolver with
// the pure Go resolver reads /etc/resolv.conf's nameserver.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// lookupError is a failed lookup, with Postfix's text, and whether it is
// final (bounce) or temporary (defer).
type lookupError struct {
	text string
	dsn  string
}

func (e *lookupError) Error() string { return e.text }

// dnsFailure words a failed lookup of name/rtype as Postfix's dns_lookup
// does.
func dnsFailure(name, rtype string, err error) *lookupError {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return &lookupError{
			text: fmt.Sprintf("Host or domain name not found. Name service error for name=%s type=%s: Host not found", name, rtype),
			dsn:  "5.4.4",
		}
	}
	return &lookupError{
		text: fmt.Sprintf("Host or domain name not found. Name service error for name=%s type=%s: Host not found, try again", name, rtype),
		dsn:  "4.4.3",
	}
}

// errLoop is a best MX that is this host.
type errLoop struct{ domain string }

func (e errLoop) Error() string { return "mail for " + e.domain + " loops back to myself" }

// resolve finds the servers for n in the order to try them, at most limit
// addresses (0: no limit). isSelf says whether a host name or address is
// this machine: when the best MX is, mail loops (errLoop); MX hosts of the
// same or worse preference than this machine are not used.
func resolve(ctx context.Context, r Resolver, n Nexthop, limit int, isSelf func(name string, ip net.IP) bool) ([]Address, error) {
	var hosts []Address // Name and Pref only
	mx := false         // hosts are MX hosts: one of them may be this machine
	if n.NoMX {
		hosts = []Address{{Name: n.Host}}
	} else if ip := net.ParseIP(n.Host); ip != nil {
		hosts = []Address{{Name: n.Host}}
	} else {
		mxs, err := r.LookupMX(ctx, n.Host)
		var de *net.DNSError
		switch {
		case err == nil && len(mxs) == 1 && mxs[0].Host == ".":
			return nil, &lookupError{text: fmt.Sprintf("Host or domain name not found. Name service error for name=%s type=MX: Host not found", n.Host), dsn: "5.1.10"}
		case err == nil && len(mxs) > 0:
			sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
			mx = true
			for _, mx := range mxs {
				hosts = append(hosts, Address{Name: strings.TrimSuffix(mx.Host, "."), Pref: int(mx.Pref)})
			}
		case err == nil || (errors.As(err, &de) && de.IsNotFound):
			// No MX records (or no such name: the A lookup words it).
			hosts = []Address{{Name: n.Host}}
		default:
			return nil, dnsFailure(n.Host, "MX", err)
		}
	}
	var out []Address
	var firstErr error
	selfPref := -1
	for _, h := range hosts {
		if selfPref >= 0 && h.Pref >= selfPref {
			break
		}
		var ips []net.IP
		if ip := net.ParseIP(h.Name); ip != nil {
			ips = []net.IP{ip}
		} else {
			addrs, err := r.LookupIPAddr(ctx, h.Name)
			if err != nil {
				if firstErr == nil {
					firstErr = dnsFailure(h.Name, "A", err)
				}
				continue
			}
			for _, a := range addrs {
				ips = append(ips, a.IP)
			}
		}
		for _, ip := range ips {
			if mx && isSelf != nil && isSelf(h.Name, ip) {
				if selfPref < 0 || h.Pref < selfPref {
					selfPref = h.Pref
				}
				continue
			}
			if selfPref >= 0 && h.Pref >= selfPref {
				continue
			}
			out = append(out, Address{Name: h.Name, IP: ip, Port: n.Port, Pref: h.Pref})
		}
	}
	if len(out) == 0 && selfPref >= 0 {
		return nil, errLoop{domain: n.Host}
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	if len(out) == 0 {
		return nil, &lookupError{text: fmt.Sprintf("Host or domain name not found. Name service error for name=%s type=A: Host not found", n.Host), dsn: "5.4.4"}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
