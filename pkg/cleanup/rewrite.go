package cleanup

import (
	"errors"
	"fmt"
	"strings"

	"postdove/pkg/addr"
	"postdove/pkg/maps"
	"postdove/pkg/queue"
)

// lookup searches the tables of main.cf parameter param in order and
// returns the first value found for key. A table that cannot be consulted
// is logged as Postfix logs it and is an error: the message is not
// accepted now and is tried again later.
func (c *Cleanup) lookup(param string, tables []string, key string) (string, bool, error) {
	for _, spec := range tables {
		v, found, err := c.tables.Lookup(spec, key)
		if err != nil {
			c.tableProblem(spec, err)
			c.warning("%s lookup error for \"%s\"", spec, key)
			return "", false, err
		}
		if found {
			return v, true, nil
		}
	}
	return "", false, nil
}

// tableProblem logs why a table could not be consulted and, when
// rebuilding it is the fix, the command to run.
func (c *Cleanup) tableProblem(spec string, err error) {
	var ue *maps.UnavailableError
	if errors.As(err, &ue) {
		c.warning("%s", ue)
	}
	if adv := maps.RebuildAdvice(spec, "postmap", err); adv != "" {
		c.warning("%s", adv)
	}
}

// mapProblem is the error for an address whose param tables could not
// be consulted.
func mapProblem(param, a string) error {
	return fmt.Errorf("%s map lookup problem for %s -- message not accepted, try again later", param, a)
}

// keys are the lookup keys for address a in canonical and virtual tables:
// user@domain, then user when the domain is local, then @domain.
func (c *Cleanup) keys(a string) ([]string, error) {
	local, domain := addr.Split(a)
	if domain == "" {
		return []string{a}, nil
	}
	d := strings.ToLower(domain)
	keys := []string{a}
	isLocal := d == c.origin
	if !isLocal {
		var err error
		if isLocal, err = c.rs.LocalDomain(d); err != nil {
			var te *addr.TableError
			if errors.As(err, &te) {
				for _, w := range te.Warnings() {
					c.warning("%s", w)
				}
			}
			return nil, err
		}
	}
	if isLocal {
		keys = append(keys, local)
	}
	return append(keys, "@"+domain), nil
}

// mapOne applies one canonical mapping (a single address result) to a,
// from the tables of main.cf parameter param.
func (c *Cleanup) mapOne(param string, tables []string, a string) (string, error) {
	if len(tables) == 0 {
		return a, nil
	}
	keys, err := c.keys(a)
	if err != nil {
		return "", mapProblem(param, a)
	}
	for _, k := range keys {
		v, found, err := c.lookup(param, tables, k)
		if err != nil {
			return "", mapProblem(param, a)
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
	a, err := c.mapOne("sender_canonical_maps", c.senderCanonical, a)
	if err != nil {
		return "", err
	}
	return c.mapOne("canonical_maps", c.canonical, a)
}

// mapRecipientHeader rewrites a recipient address in a header:
// canonicalization and canonical maps (virtual aliasing applies to the
// envelope only).
func (c *Cleanup) mapRecipientHeader(a string) (string, error) {
	a = c.rw.Canonicalize(a)
	a, err := c.mapOne("recipient_canonical_maps", c.recipientCanonical, a)
	if err != nil {
		return "", err
	}
	return c.mapOne("canonical_maps", c.canonical, a)
}

// recipients rewrites the envelope recipients and expands virtual
// aliases; duplicates are dropped. An expansion beyond
// virtual_alias_recursion_limit or virtual_alias_expansion_limit is a
// *Defer naming the recipient given, as Postfix words it.
func (c *Cleanup) recipients(in []string, dsn []RecipientDSN) ([]queue.Recipient, error) {
	var out []queue.Recipient
	seen := map[string]bool{}
	for i, r := range in {
		var d RecipientDSN
		if i < len(dsn) {
			d = dsn[i]
		}
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
			// As Postfix's cleanup, recipients with different DSN
			// parameters are kept apart.
			k := strings.ToLower(e) + "\x00" + d.Notify + "\x00" + d.ORCPT
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, queue.Recipient{Address: e, Orig: orig, Notify: d.Notify, ORCPT: d.ORCPT, Status: queue.Pending})
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
	keys, err := c.keys(a)
	if err != nil {
		return nil, mapProblem("virtual_alias_maps", a)
	}
	for _, k := range keys {
		v, ok, err := c.lookup("virtual_alias_maps", c.virtual, k)
		if err != nil {
			return nil, mapProblem("virtual_alias_maps", a)
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
