package addr

import (
	"errors"
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
	tables     *maps.Cache // tables named in domain lists
}

// TableError is a table in a domain list that could not be consulted: the
// address cannot be resolved now (a temporary failure), as opposed to a
// domain that is not in the list.
type TableError struct {
	Param string // "mydestination"
	Spec  string // "hash:/etc/postfix/domains"
	Err   error
}

func (e *TableError) Error() string { return e.Param + ": " + e.Spec + ": table lookup problem" }
func (e *TableError) Unwrap() error { return e.Err }

// Warnings are the maillog warnings for the failure: as Postfix, why the
// table is unavailable (when it could not be opened) and the lookup
// problem; between them, the command that rebuilds an unreadable table.
func (e *TableError) Warnings() []string {
	var w []string
	var ue *maps.UnavailableError
	if errors.As(e.Err, &ue) {
		w = append(w, ue.Error())
	}
	if adv := maps.RebuildAdvice(e.Spec, "postmap", e.Err); adv != "" {
		w = append(w, adv)
	}
	return append(w, e.Error())
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
// when one is set. A domain list whose table cannot be consulted counts
// as not matching; ResolveErr reports it instead.
func (r *Resolver) Resolve(a string) (class, nexthop string) {
	class, nexthop, _ = r.ResolveErr(a)
	return class, nexthop
}

// ResolveErr is Resolve that stops at a table that cannot be consulted,
// with a *TableError (Postfix defers such mail: "address resolver
// failure").
func (r *Resolver) ResolveErr(a string) (class, nexthop string, err error) {
	d := Domain(a)
	if d == "" {
		return ClassLocal, r.MyHostname, nil
	}
	if ok, err := r.LocalDomain(d); err != nil || ok {
		return ClassLocal, d, err
	}
	for _, l := range []struct {
		param, class string
		list         []string
	}{
		{"virtual_alias_domains", ClassVirtualAlias, r.VirtualAliasDomains},
		{"virtual_mailbox_domains", ClassVirtual, r.VirtualMailboxDomains},
		{"relay_domains", ClassRelay, r.RelayDomains},
	} {
		ok, err := r.inList(l.param, l.list, d)
		if err != nil {
			return "", "", err
		}
		if ok {
			if l.class == ClassRelay {
				return l.class, r.nexthop(d), nil
			}
			return l.class, d, nil
		}
	}
	return ClassDefault, r.nexthop(d), nil
}

func (r *Resolver) nexthop(d string) string {
	if r.RelayHost != "" {
		return r.RelayHost
	}
	return d
}

// IsLocalDomain reports whether domain d (lower case) is delivered by the
// local transport: it is in mydestination or is an address literal of
// this machine. A table that cannot be consulted counts as not matching;
// LocalDomain reports it instead.
func (r *Resolver) IsLocalDomain(d string) bool {
	ok, _ := r.LocalDomain(d)
	return ok
}

// LocalDomain is IsLocalDomain with the *TableError of a mydestination
// table that cannot be consulted.
func (r *Resolver) LocalDomain(d string) (bool, error) {
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		ip := strings.TrimPrefix(strings.TrimSuffix(d, "]"), "[")
		ip = strings.TrimPrefix(strings.ToLower(ip), "ipv6:")
		for _, a := range r.LocalAddrs {
			if a1, a2 := net.ParseIP(a), net.ParseIP(ip); a1 != nil && a2 != nil && a1.Equal(a2) {
				return true, nil
			}
		}
		return false, nil
	}
	return r.inList("mydestination", r.MyDestination, d)
}

// inList matches domain d against the domain list of main.cf parameter
// param: literal names (a leading '.' also matches subdomains) and lookup
// tables.
func (r *Resolver) inList(param string, list []string, d string) (bool, error) {
	for _, e := range list {
		if strings.Contains(e, ":") && !strings.HasPrefix(e, "[") {
			_, found, err := r.cache().Lookup(e, d)
			if err != nil {
				return false, &TableError{Param: param, Spec: e, Err: err}
			}
			if found {
				return true, nil
			}
			continue
		}
		e = strings.ToLower(strings.TrimSuffix(e, "."))
		if e == d || strings.HasPrefix(e, ".") && strings.HasSuffix(d, e) {
			return true, nil
		}
	}
	return false, nil
}

// cache returns the resolver's table cache, made on first use.
func (r *Resolver) cache() *maps.Cache {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tables == nil {
		r.tables = maps.NewCache(maps.Options{FoldCase: true}, nil)
	}
	return r.tables
}
