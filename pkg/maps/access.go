package maps

// The access(5) search order, shared by smtpd (check_*_access restrictions)
// and cleanup:
//
//	LookupAddress: user@domain, then domain and its parent domains, then
//	user@ (with user+ext@domain trying the full address before the address
//	without its extension).
//	LookupClient: hostname and its parent domains, then the IP address and
//	its shorter prefixes (IPv4 octets, IPv6 ':'-separated fields).
//
// Keys are handed to each table as they are; an indexed table folds them to
// lower case itself (Options.FoldCase). A cidr: table is consulted with the
// bare IP address only; regexp:/pcre: tables see the same keys as indexed
// tables, as in Postfix (which queries them with the full address only).

import (
	"strconv"
	"strings"
)

// Action is a parsed access(5) result.
type Action struct {
	// Kind is the upper-cased action word: OK, REJECT, DEFER,
	// DEFER_IF_PERMIT, DEFER_IF_REJECT, DUNNO, HOLD, DISCARD, REDIRECT,
	// PREPEND, WARN, FILTER, INFO, BCC, IGNORE, REPLACE, ... ; "NNN" for a
	// result that starts with a 4NN/5NN code; "RESTRICTION" for a
	// restriction list (permit_mynetworks, reject_unknown_... ).
	Kind string
	// Code is the SMTP code of a 4NN/5NN result, else 0.
	Code int
	// Text is what follows the action word (reply text, address, header).
	Text string
	// Raw is the lookup result as found.
	Raw string
}

// ParseAction parses an access table result. A numeric-only result is
// treated as OK (Postfix's compatibility rule); an unknown word is taken as
// the name of a restriction (Kind "RESTRICTION", Text the whole list).
func ParseAction(v string) Action {
	a := Action{Raw: v}
	s := trimSpace(v)
	word, rest := s, ""
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		word, rest = s[:i], trimSpace(s[i+1:])
	}
	if allDigits(word) {
		if len(word) == 3 && (word[0] == '4' || word[0] == '5') {
			a.Kind = "NNN"
			a.Code, _ = strconv.Atoi(word)
			a.Text = rest
			return a
		}
		if rest == "" {
			a.Kind = "OK"
			return a
		}
	}
	up := strings.ToUpper(word)
	switch up {
	case "OK", "REJECT", "DEFER", "DEFER_IF_PERMIT", "DEFER_IF_REJECT", "DUNNO",
		"HOLD", "DISCARD", "REDIRECT", "PREPEND", "WARN", "FILTER", "INFO",
		"BCC", "IGNORE", "REPLACE", "STRIP", "RELAY", "PASS", "DELAY":
		a.Kind = up
		a.Text = rest
		return a
	}
	a.Kind = "RESTRICTION"
	a.Text = s
	return a
}

// lookupFirst tries keys in order against each table in order (Postfix
// tries all keys in one table before the next table).
func lookupFirst(tables []Table, keys func(t Table) []string) (Action, string, bool, error) {
	for _, t := range tables {
		for _, k := range keys(t) {
			v, ok, err := t.Lookup(k)
			if err != nil {
				return Action{}, k, false, err
			}
			if ok {
				return ParseAction(v), k, true, nil
			}
		}
	}
	return Action{}, "", false, nil
}

// parentDomainKeys returns the lookup keys for a domain: the domain, then
// each parent as ".parent" (and as "parent" too when parentMatches, i.e.
// parent_domain_matches_subdomains lists the feature, which is Postfix's
// default for smtpd_access_maps).
func parentDomainKeys(domain string, parentMatches bool) []string {
	if domain == "" {
		return nil
	}
	keys := []string{domain}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 || i == len(d)-1 {
			break
		}
		if parentMatches {
			keys = append(keys, d[i+1:])
		} else {
			keys = append(keys, d[i:])
		}
		d = d[i+1:]
	}
	return keys
}

// AddressKeys lists the keys tried for an address, in order. ext is the
// recipient_delimiter set ("" for none).
func AddressKeys(addr, delimiters string, parentMatches bool) []string {
	user, domain := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		user, domain = addr[:i], addr[i+1:]
	}
	base := ""
	if delimiters != "" {
		if i := strings.IndexAny(user, delimiters); i > 0 {
			base = user[:i]
		}
	}
	var keys []string
	if domain != "" {
		keys = append(keys, addr)
		if base != "" {
			keys = append(keys, base+"@"+domain)
		}
		keys = append(keys, parentDomainKeys(domain, parentMatches)...)
		keys = append(keys, user+"@")
		if base != "" {
			keys = append(keys, base+"@")
		}
	} else {
		keys = append(keys, addr)
		if base != "" {
			keys = append(keys, base)
		}
		keys = append(keys, user+"@")
	}
	return keys
}

// LookupAddress applies the access(5) order for a sender or recipient
// address (recipient_delimiter "+"). It returns the action, the key that
// matched, and whether anything matched. A cidr: table is skipped.
func LookupAddress(tables []Table, addr string, parentMatches bool) (Action, string, bool, error) {
	return LookupAddressDelim(tables, addr, "+", parentMatches)
}

// LookupAddressDelim is LookupAddress with an explicit recipient_delimiter.
func LookupAddressDelim(tables []Table, addr, delimiters string, parentMatches bool) (Action, string, bool, error) {
	keys := AddressKeys(addr, delimiters, parentMatches)
	return lookupFirst(tables, func(t Table) []string {
		switch t.(type) {
		case *CIDRTable:
			return nil
		case *patTable:
			return keys[:1]
		}
		return keys
	})
}

// ClientKeys lists the keys tried for a client: hostname and its parent
// domains (skipped when hostname is "" or "unknown"), then the address and
// its shorter prefixes.
func ClientKeys(hostname, ip string, parentMatches bool) []string {
	var keys []string
	if hostname != "" && hostname != "unknown" {
		keys = append(keys, parentDomainKeys(hostname, parentMatches)...)
	}
	return append(keys, addressPrefixes(ip)...)
}

// addressPrefixes: 192.168.2.10, 192.168.2, 192.168, 192; for IPv6
// 2001:db8::1, 2001:db8:, 2001:db8, 2001 (Postfix cuts at each ':').
func addressPrefixes(ip string) []string {
	if ip == "" {
		return nil
	}
	sep := byte('.')
	if strings.IndexByte(ip, ':') >= 0 {
		sep = ':'
	}
	keys := []string{ip}
	for s := ip; ; {
		i := strings.LastIndexByte(s, sep)
		if i <= 0 {
			break
		}
		s = s[:i]
		keys = append(keys, s)
	}
	return keys
}

// LookupClient applies the access(5) order for an SMTP client. A cidr:
// table is consulted with the address only; regexp:/pcre: tables with the
// hostname and the address.
func LookupClient(tables []Table, hostname, ip string, parentMatches bool) (Action, string, bool, error) {
	keys := ClientKeys(hostname, ip, parentMatches)
	return lookupFirst(tables, func(t Table) []string {
		switch t.(type) {
		case *CIDRTable:
			if ip == "" {
				return nil
			}
			return []string{ip}
		case *patTable:
			var k []string
			if hostname != "" && hostname != "unknown" {
				k = append(k, hostname)
			}
			if ip != "" {
				k = append(k, ip)
			}
			return k
		}
		return keys
	})
}
