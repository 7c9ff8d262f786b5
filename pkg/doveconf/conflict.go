package doveconf

import (
	"net/netip"
	"sort"
	"strings"
)

// conflict finds a setting Dovecot refuses because it cannot tell which
// of two filters wins: for connections of one protocol from one place (a
// filter such as "remote 10.0.0.0/8 { protocol imap { } }", or m when
// doveconf -f names both), a protocol block and a block for that place
// (or the nested block itself) both set it. at is the protocol block.
func (c *Config) conflict(m *Match) (key string, at *Filter) {
	var cands []*Filter
	if m != nil {
		if m.Protocol != "" && (m.Local != "" || m.Remote != "" || m.LocalName != "") {
			cands = append(cands, &Filter{Protocol: m.Protocol, Local: m.Local, Remote: m.Remote, LocalName: m.LocalName})
		}
	} else {
		for _, f := range c.Filters {
			if f.Protocol != "" && f.rank() > 0 {
				cands = append(cands, f)
			}
		}
	}
	for _, f := range cands {
		var places []*Filter
		for _, g := range c.Filters {
			if g == f || g.Protocol == "" && g.rank() > 0 && g.covers(f) {
				places = append(places, g)
			}
		}
		for _, p := range c.Filters {
			if p.Protocol != f.Protocol || p.rank() > 0 {
				continue
			}
			keys := make([]string, 0, len(p.Settings.values))
			for k := range p.Settings.values {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				for _, g := range places {
					if _, set := g.Settings.values[k]; set {
						return k, p
					}
				}
			}
		}
	}
	return "", nil
}

// Conflict returns the error Dovecot stops with when two filters set a
// setting for the same connections (see conflict), or nil.
func (c *Config) Conflict() error {
	if key, at := c.conflict(nil); at != nil {
		return &Error{File: c.Path, Msg: conflictMsg(key, at)}
	}
	return nil
}

// covers reports whether every place criterion of g includes f's.
func (g *Filter) covers(f *Filter) bool {
	return netCovers(g.Local, f.Local) && netCovers(g.Remote, f.Remote) &&
		(g.LocalName == "" || nameMatches(g.LocalName, f.LocalName))
}

// netCovers reports whether the network outer ("" for any) includes the
// address or network inner.
func netCovers(outer, inner string) bool {
	if outer == "" {
		return true
	}
	o, ok1 := prefix(outer)
	i, ok2 := prefix(inner)
	return ok1 && ok2 && o.Bits() <= i.Bits() && o.Contains(i.Addr())
}

// prefix reads "10.0.0.0/8" or "10.1.2.3" (as a /32).
func prefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err == nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// conflictMsg is Dovecot's complaint about a conflict.
func conflictMsg(key string, at *Filter) string {
	return "Conflict in setting " + key + " found from filter at " + at.File + ":" + itoa(at.Line)
}
