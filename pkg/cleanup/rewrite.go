package cleanup

import (
	"errors"
	"fmt"
	"strings"

	"postdove/pkg/addr"
	"postdove/pkg/maps"
	"postdove/pkg/queue"
)

// lookup searches the tables of one main.cf list in order and returns the
// first value found for key.
func (c *Cleanup) lookup(tables []string, key string) (string, bool, error) {
	for _, spec := range tables {
		t, err := c.table(spec)
		if err != nil {
			return "", false, err
		}
		v, found, err := t.Lookup(key)
		if err != nil {
			return "", false, fmt.Errorf("%s lookup error for \"%s\": %w", spec, key, err)
		}
		if found {
			return v, true, nil
		}
	}
	return "", false, nil
}

func (c *Cleanup) table(spec string) (maps.Table, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.tables[spec]; ok {
		return t, nil
	}
	t, err := maps.Open(spec, maps.Options{FoldCase: true})
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", spec, err)
	}
	c.tables[spec] = t
	return t, nil
}

// keys are the lookup keys for address a in canonical and virtual tables:
// user@domain, then user when the domain is local, then @domain.
func (c *Cleanup) keys(a string) []string {
	local, domain := addr.Split(a)
	if domain == "" {
		return []string{a}
	}
	d := strings.ToLower(domain)
	keys := []string{a}
	if d == c.origin || c.rs.IsLocalDomain(d) {
		keys = append(keys, local)
	}
	return append(keys, "@"+domain)
}

// mapOne applies one canonical mapping (a single address result) to a.
func (c *Cleanup) mapOne(tables []string, a string) (string, error) {
	if len(tables) == 0 {
		return a, nil
	}
	for _, k := range c.keys(a) {
		v, found, err := c.lookup(tables, k)
		if err != nil {
			return "", err
		}
		if found {
			v = strings.TrimSpace(v)
			if strings.HasPrefix(v, "@") {
				// "@domain" keeps the local part.
				local, _ := addr.Split(a)
				v = local + v
			}
			return c.rw.Canonicalize(v), nil
		}
	}
	return a, nil
}

// mapSender canonicalizes a sender address and applies
// sender_canonical_maps then canonical_maps.
func (c *Cleanup) mapSender(a string) (string, error) {
	a = c.rw.Canonicalize(a)
	a, err := c.mapOne(c.senderCanonical, a)
	if err != nil {
		return "", err
	}
	return c.mapOne(c.canonical, a)
}

// mapRecipientHeader rewrites a recipient address in a header:
// canonicalization and canonical maps (virtual aliasing applies to the
// envelope only).
func (c *Cleanup) mapRecipientHeader(a string) (string, error) {
	a = c.rw.Canonicalize(a)
	a, err := c.mapOne(c.recipientCanonical, a)
	if err != nil {
		return "", err
	}
	return c.mapOne(c.canonical, a)
}

// recipients rewrites the envelope recipients and expands virtual
// aliases; duplicates are dropped. An expansion beyond
// virtual_alias_recursion_limit or virtual_alias_expansion_limit is a
// *Defer naming the recipient given, as Postfix words it.
func (c *Cleanup) recipients(in []string) ([]queue.Recipient, error) {
	var out []queue.Recipient
	seen := map[string]bool{}
	for _, r := range in {
		a, err := c.mapRecipientHeader(r)
		if err != nil {
			return nil, err
		}
		orig := r // as given: local logs it as orig_to=<...>
		n := 1
		expanded, err := c.expand(a, nil, 0, &n)
		switch {
		case errors.Is(err, errNesting):
			return nil, &Defer{fmt.Sprintf("unreasonable virtual_alias_maps map nesting for %s -- message not accepted, try again later", a)}
		case errors.Is(err, errExpansion):
			return nil, &Defer{fmt.Sprintf("unreasonable virtual_alias_maps map expansion size for %s -- message not accepted, try again later", a)}
		case err != nil:
			return nil, err
		}
		for _, e := range expanded {
			k := strings.ToLower(e)
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, queue.Recipient{Address: e, Orig: orig, Status: queue.Pending})
		}
	}
	return out, nil
}

// Why a virtual alias expansion failed.
var (
	errNesting   = errors.New("virtual alias nesting too deep")
	errExpansion = errors.New("virtual alias expansion too large")
)

// expand resolves a through virtual_alias_maps recursively; *n counts the
// addresses one original recipient stands for so far (as Postfix counts
// against virtual_alias_expansion_limit). An address that appears in
// its own expansion chain is delivered as is.
func (c *Cleanup) expand(a string, chain []string, depth int, n *int) ([]string, error) {
	if len(c.virtual) == 0 {
		return []string{a}, nil
	}
	if depth > c.recMax {
		return nil, errNesting
	}
	for _, p := range chain {
		if strings.EqualFold(p, a) {
			return []string{a}, nil
		}
	}
	var value string
	found := false
	for _, k := range c.keys(a) {
		v, ok, err := c.lookup(c.virtual, k)
		if err != nil {
			return nil, err
		}
		if ok {
			value, found = v, true
			if strings.HasPrefix(k, "@") {
				// catch-all "@domain" results that are "@other" keep the
				// local part.
				local, _ := addr.Split(a)
				value = catchAll(value, local)
			}
			break
		}
	}
	if !found {
		return []string{a}, nil
	}
	values := addr.ParseList(value)
	if *n += len(values) - 1; *n > c.expMax {
		return nil, errExpansion
	}
	var out []string
	chain = append(chain, a)
	for _, v := range values {
		v = c.rw.Canonicalize(v)
		sub, err := c.expand(v, chain, depth+1, n)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return out, nil
}

func catchAll(value, local string) string {
	parts := strings.Split(value, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if strings.HasPrefix(p, "@") {
			parts[i] = local + p
		}
	}
	return strings.Join(parts, ",")
}
