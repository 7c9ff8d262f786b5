package addr

import (
	"net"
	"strings"
	"sync"

	"postdove/pkg/maps"
)

// Address classes, as in Postfix's ADDRESS_CLASS_README.
const (
	ClassLocal        = "local"
	ClassVirtualAlias = "virtual_alias"
	ClassVirtual      = "virtual"
	ClassRelay        = "relay"
	ClassDefault      = "default"
)

// Resolver is trivial-rewrite's resolve step: it tells which class an
// address's domain is in and the next hop for it.
type Resolver struct {
	MyHostname string
	// Domain lists as in main.cf; an entry with a ':' is a lookup table
	// ("hash:/etc/postfix/domains") searched for the domain.
	MyDestination         []string
	VirtualAliasDomains   []string
	VirtualMailboxDomains []string
	RelayDomains          []string
	// Addresses the machine receives mail on ([1.2.3.4] literals that are
	// local): inet_interfaces and proxy_interfaces.
	LocalAddrs []string
	RelayHost  string // relayhost
	mu         sync.Mutex
	tables     map[string]maps.Table // tables opened for domain lists
}

// NewResolver reads the resolving settings from main.cf.
func NewResolver(p Params) *Resolver {
	r := &Resolver{
		MyHostname:            strings.ToLower(strings.TrimSpace(p.Get("myhostname"))),
		MyDestination:         p.List("mydestination"),
		VirtualAliasDomains:   p.List("virtual_alias_domains"),
		VirtualMailboxDomains: p.List("virtual_mailbox_domains"),
		RelayDomains:          p.List("relay_domains"),
		RelayHost:             strings.TrimSpace(p.Get("relayhost")),
	}
	for _, name := range []string{"inet_interfaces", "proxy_interfaces"} {
		for _, a := range p.List(name) {
			switch strings.ToLower(a) {
			case "all":
				r.LocalAddrs = append(r.LocalAddrs, interfaceAddrs()...)
			case "loopback-only", "localhost":
				r.LocalAddrs = append(r.LocalAddrs, "127.0.0.1", "::1")
			default:
				r.LocalAddrs = append(r.LocalAddrs, a)
			}
		}
	}
	return r
}

func interfaceAddrs() []string {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP.String())
		}
	}
	return out
}

// Resolve returns the class of address a and its next hop: the domain
// (or $myhostname for local mail), or $relayhost for the default class
// when one is set.
func (r *Resolver) Resolve(a string) (class, nexthop string) {
	d := Domain(a)
	switch {
	case d == "" || r.IsLocalDomain(d):
		if d == "" {
			d = r.MyHostname
		}
		return ClassLocal, d
	case r.inList(r.VirtualAliasDomains, d):
		return ClassVirtualAlias, d
	case r.inList(r.VirtualMailboxDomains, d):
		return ClassVirtual, d
	case r.inList(r.RelayDomains, d):
		return ClassRelay, r.nexthop(d)
	}
	return ClassDefault, r.nexthop(d)
}

func (r *Resolver) nexthop(d string) string {
	if r.RelayHost != "" {
		return r.RelayHost
	}
	return d
}

// IsLocalDomain reports whether domain d (lower case) is delivered by the
// local transport: it is in mydestination or is an address literal of
// this machine.
func (r *Resolver) IsLocalDomain(d string) bool {
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		ip := strings.TrimPrefix(strings.TrimSuffix(d, "]"), "[")
		ip = strings.TrimPrefix(strings.ToLower(ip), "ipv6:")
		for _, a := range r.LocalAddrs {
			if a1, a2 := net.ParseIP(a), net.ParseIP(ip); a1 != nil && a2 != nil && a1.Equal(a2) {
				return true
			}
		}
		return false
	}
	return r.inList(r.MyDestination, d)
}

// inList matches domain d against a main.cf domain list: literal names
// (a leading '.' also matches subdomains) and lookup tables.
func (r *Resolver) inList(list []string, d string) bool {
	for _, e := range list {
		if strings.Contains(e, ":") && !strings.HasPrefix(e, "[") {
			if r.lookup(e, d) {
				return true
			}
			continue
		}
		e = strings.ToLower(strings.TrimSuffix(e, "."))
		if e == d || strings.HasPrefix(e, ".") && strings.HasSuffix(d, e) {
			return true
		}
	}
	return false
}

func (r *Resolver) lookup(spec, d string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tables == nil {
		r.tables = map[string]maps.Table{}
	}
	t, ok := r.tables[spec]
	if !ok {
		var err error
		t, err = maps.Open(spec, maps.Options{FoldCase: true})
		if err != nil {
			t = nil
		}
		r.tables[spec] = t
	}
	if t == nil {
		return false
	}
	_, found, _ := t.Lookup(d)
	return found
}
