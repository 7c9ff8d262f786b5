package addr

import (
	"strings"
)

// Route is where trivial-rewrite(8) sends a recipient: a master.cf
// transport and its next hop ("smtp" and "[mail.example.com]:587",
// "error" and its text, "local" and $myhostname ...).
type Route struct {
	Transport string
	Nexthop   string
}

// Router is trivial-rewrite's resolve step with transport_maps: the
// address class gives the transport (local_transport, virtual_transport,
// relay_transport, default_transport) and next hop (the domain, or
// relayhost), and a transport_maps entry overrides either part.
type Router struct {
	*Resolver
	TransportMaps    []string // transport_maps
	LocalTransport   string   // local_transport
	VirtualTransport string   // virtual_transport
	RelayTransport   string   // relay_transport
	DefaultTransport string   // default_transport
	// RecipientDelimiter (recipient_delimiter) lets user+ext@domain find
	// a user@domain entry.
	RecipientDelimiter string
	// SenderRelayhostMaps (sender_dependent_relayhost_maps) override
	// relayhost per sender: user@domain, then @domain; the null sender is
	// looked up as NullSenderKey (empty_address_relayhost_maps_lookup_key).
	SenderRelayhostMaps []string
	NullSenderKey       string
}

// NewRouter reads the routing settings from main.cf.
func NewRouter(p Params) *Router {
	return &Router{
		Resolver:           NewResolver(p),
		TransportMaps:      p.List("transport_maps"),
		LocalTransport:     strings.TrimSpace(p.Get("local_transport")),
		VirtualTransport:   strings.TrimSpace(p.Get("virtual_transport")),
		RelayTransport:     strings.TrimSpace(p.Get("relay_transport")),
		DefaultTransport:   strings.TrimSpace(p.Get("default_transport")),
		RecipientDelimiter: p.Get("recipient_delimiter"),

		SenderRelayhostMaps: p.List("sender_dependent_relayhost_maps"),
		NullSenderKey:       p.Get("empty_address_relayhost_maps_lookup_key"),
	}
}

// RouteFrom is Route for mail from sender: a sender_dependent_relayhost_maps
// entry for the sender replaces relayhost.
func (r *Router) RouteFrom(a, sender string) (Route, error) {
	if len(r.SenderRelayhostMaps) == 0 {
		return r.Route(a)
	}
	keys := []string{r.NullSenderKey}
	if sender != "" {
		s := strings.ToLower(Unquote(sender))
		keys = []string{s}
		if at := strings.LastIndexByte(s, '@'); at >= 0 {
			keys = append(keys, s[at:])
		}
	}
	for _, key := range keys {
		for _, spec := range r.SenderRelayhostMaps {
			v, found, err := r.cache().Lookup(spec, key)
			if err != nil {
				return Route{}, &TableError{Param: "sender_dependent_relayhost_maps", Spec: spec, Err: err}
			}
			if found && strings.TrimSpace(v) != "" {
				return r.route(a, strings.TrimSpace(v))
			}
		}
	}
	return r.Route(a)
}

// splitRoute splits "transport:nexthop"; either part may be empty.
func splitRoute(s string) Route {
	t, h, _ := strings.Cut(strings.TrimSpace(s), ":")
	return Route{Transport: strings.TrimSpace(t), Nexthop: strings.TrimSpace(h)}
}

// over is r with the non-empty parts of o. The error agent's next hop
// is its text, never a domain: error: without one stays empty (error(8)
// then says "Address is undeliverable"), as with Postfix.
func (r Route) over(o Route) Route {
	if o.Transport != "" {
		r.Transport = o.Transport
	}
	if o.Nexthop != "" {
		r.Nexthop = o.Nexthop
	} else if o.Transport == "error" {
		r.Nexthop = ""
	}
	return r
}

// Route returns the transport and next hop of address a, with a
// *TableError when a table (a domain list or transport_maps) cannot be
// consulted: the address cannot be routed now.
func (r *Router) Route(a string) (Route, error) {
	return r.route(a, r.RelayHost)
}

// route is Route with relayhost.
func (r *Router) route(a, relayhost string) (Route, error) {
	class, hop, err := r.ResolveErr(a)
	if err != nil {
		return Route{}, err
	}
	if (class == ClassDefault || class == ClassRelay) && relayhost != r.RelayHost {
		hop = Domain(a)
		if relayhost != "" {
			hop = relayhost
		}
	}
	var rt Route
	switch class {
	case ClassLocal:
		rt = Route{Transport: "local", Nexthop: r.MyHostname}.over(splitRoute(r.LocalTransport))
	case ClassVirtualAlias:
		// cleanup rewrote every address virtual_alias_maps knows: what is
		// left in a virtual alias domain is unknown.
		return Route{Transport: "error", Nexthop: "5.1.1 User unknown in virtual alias table"}, nil
	case ClassVirtual:
		rt = Route{Transport: "virtual", Nexthop: hop}.over(splitRoute(r.VirtualTransport))
	case ClassRelay:
		rt = Route{Transport: "relay", Nexthop: hop}.over(splitRoute(r.RelayTransport))
	default:
		rt = Route{Transport: "smtp", Nexthop: hop}.over(splitRoute(r.DefaultTransport))
	}
	if len(r.TransportMaps) == 0 {
		return rt, nil
	}
	v, found, err := r.lookupTransport(a)
	if err != nil || !found {
		return rt, err
	}
	return rt.over(splitRoute(v)), nil
}

// lookupTransport searches transport_maps as transport(5) says: the full
// address, then user@domain without the extension, then the domain and
// each of its parent domains as .parent, then "*".
func (r *Router) lookupTransport(a string) (string, bool, error) {
	a = strings.ToLower(Unquote(a))
	at := strings.LastIndexByte(a, '@')
	var keys []string
	if at > 0 {
		keys = append(keys, a)
		local, domain := a[:at], a[at+1:]
		if r.RecipientDelimiter != "" {
			if i := strings.IndexAny(local, r.RecipientDelimiter); i > 0 {
				keys = append(keys, local[:i]+"@"+domain)
			}
		}
		keys = append(keys, domain)
		for d := domain; ; {
			i := strings.IndexByte(d, '.')
			if i < 0 {
				break
			}
			d = d[i+1:]
			keys = append(keys, "."+d)
		}
	}
	keys = append(keys, "*")
	for _, key := range keys {
		for _, spec := range r.TransportMaps {
			v, found, err := r.cache().Lookup(spec, key)
			if err != nil {
				return "", false, &TableError{Param: "transport_maps", Spec: spec, Err: err}
			}
			if found {
				return v, true, nil
			}
		}
	}
	return "", false, nil
}
