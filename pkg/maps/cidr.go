package maps

// cidr:FILE (cidr_table(5)): "network/prefix result" and bare addresses,
// IPv4 and IPv6, tried in file order (first match wins), with IF/ENDIF
// blocks ("if [!]network/prefix" ... "endif"). Bad rules are reported and
// skipped, as Postfix does.

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

func init() {
	Register("cidr", func(name string, opts Options) (Table, error) {
		return OpenCIDR(name, opts)
	})
}

type cidrRule struct {
	op     int
	prefix netip.Prefix
	negate bool
	value  string
	jump   int // opIf: index after the matching ENDIF
}

// CIDRTable is an opened cidr: table.
type CIDRTable struct {
	name  string
	rules []cidrRule
}

// parseCIDRPattern parses "[!]addr[/len]" (the address may be in [...]);
// it returns Postfix's complaint on failure.
func parseCIDRPattern(pat string) (netip.Prefix, bool, string) {
	negate := false
	for strings.HasPrefix(pat, "!") {
		negate = !negate
		pat = strings.TrimLeft(pat[1:], " \t")
	}
	addr := pat
	if strings.HasPrefix(pat, "[") {
		end := strings.IndexByte(pat, ']')
		if end < 0 {
			return netip.Prefix{}, false, fmt.Sprintf("missing ']' character after \"%s\"", pat)
		}
		rest := pat[end+1:]
		if rest != "" && rest[0] != '/' {
			return netip.Prefix{}, false, fmt.Sprintf("garbage after \"%s\"", pat[:end+1])
		}
		addr = pat[1:end] + rest
	}
	mask := ""
	hasMask := false
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr, mask, hasMask = addr[:i], addr[i+1:], true
	}
	whole := addr
	if hasMask {
		whole = addr + "/" + mask
		if !allDigits(mask) {
			return netip.Prefix{}, false, fmt.Sprintf("bad mask value in \"%s\"", whole)
		}
		if addr == "" {
			return netip.Prefix{}, false, fmt.Sprintf("bad network value in \"%s\"", whole)
		}
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Zone() != "" {
		if hasMask {
			return netip.Prefix{}, false, fmt.Sprintf("bad network value in \"%s\"", whole)
		}
		return netip.Prefix{}, false, fmt.Sprintf("bad address pattern: \"%s\"", whole)
	}
	bits := ip.BitLen()
	if hasMask {
		n, err := strconv.Atoi(mask)
		if err != nil || n > ip.BitLen() {
			return netip.Prefix{}, false, fmt.Sprintf("bad mask length in \"%s\"", whole)
		}
		bits = n
	}
	p := netip.PrefixFrom(ip, bits)
	if m := p.Masked(); m.Addr() != ip {
		return netip.Prefix{}, false, fmt.Sprintf("non-null host address bits in \"%s\", perhaps you should use \"%s/%d\" instead", whole, m.Addr(), bits)
	}
	return p, negate, ""
}

// OpenCIDR reads a cidr: table file.
func OpenCIDR(name string, opts Options) (*CIDRTable, error) {
	warn := warnFunc(opts)
	lines, err := readTableFile(name, warn)
	if err != nil {
		var re *readError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("cidr map %s: %s", name, re.Error())
		}
		return nil, err
	}
	t := &CIDRTable{name: name}
	type openIf struct{ idx, lineno int }
	var ifs []openIf
	for _, ln := range lines {
		prefix := fmt.Sprintf("cidr map %s, line %d", name, ln.lineno)
		skip := func(why string) { warn(prefix + ": " + why + ": skipping this rule") }
		line := ln.text
		if rest, ok := keyword(line, "endif"); ok {
			if trimSpace(rest) != "" {
				skip("garbage after ENDIF")
				continue
			}
			if len(ifs) == 0 {
				skip("ENDIF without IF")
				continue
			}
			top := ifs[len(ifs)-1]
			ifs = ifs[:len(ifs)-1]
			t.rules = append(t.rules, cidrRule{op: opEndif})
			t.rules[top.idx].jump = len(t.rules)
			continue
		}
		op := opMatch
		if rest, ok := keyword(line, "if"); ok {
			op = opIf
			line = trimSpace(rest)
		}
		pat, value := line, ""
		if i := strings.IndexAny(line, " \t\v\f\r\n"); i >= 0 {
			pat, value = line[:i], trimSpace(line[i+1:])
		}
		if op == opIf {
			// The whole rest is the pattern: "if 1.0.0.0/8 extra" is bad.
			pat, value = line, ""
			if strings.HasPrefix(pat, "!") {
				pat = "!" + strings.TrimLeft(pat[1:], " \t")
			}
		}
		if pat == "" {
			skip("no address pattern")
			continue
		}
		p, negate, why := parseCIDRPattern(pat)
		if why != "" {
			skip(why)
			continue
		}
		if op == opIf {
			ifs = append(ifs, openIf{idx: len(t.rules), lineno: ln.lineno})
			t.rules = append(t.rules, cidrRule{op: opIf, prefix: p, negate: negate})
			continue
		}
		if value == "" {
			skip("no lookup result")
			continue
		}
		t.rules = append(t.rules, cidrRule{op: opMatch, prefix: p, negate: negate, value: value})
	}
	for k := len(ifs) - 1; k >= 0; k-- {
		warn(fmt.Sprintf("cidr map %s, line %d: IF has no matching ENDIF", name, ifs[k].lineno))
		t.rules[ifs[k].idx].jump = len(t.rules)
	}
	return t, nil
}

// matches applies a rule's network to an address of the same family; a
// rule of the other family never matches, negated or not.
func (r *cidrRule) matches(ip netip.Addr) bool {
	if r.prefix.Addr().Is4() != ip.Is4() {
		return false
	}
	return r.prefix.Contains(ip) != r.negate
}

// Lookup returns the result of the first rule whose network holds the
// address key. A key that is not an IP address is simply not found.
func (t *CIDRTable) Lookup(key string) (string, bool, error) {
	ip, err := netip.ParseAddr(key)
	if err != nil || ip.Zone() != "" {
		return "", false, nil
	}
	for i := 0; i < len(t.rules); {
		r := &t.rules[i]
		switch r.op {
		case opIf:
			if !r.matches(ip) {
				i = r.jump
				continue
			}
		case opMatch:
			if r.matches(ip) {
				return r.value, true, nil
			}
		}
		i++
	}
	return "", false, nil
}

// Close releases nothing: the rules live in memory.
func (t *CIDRTable) Close() error { return nil }
