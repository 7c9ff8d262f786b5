package addr

import "strings"

// Rewriter is trivial-rewrite's canonicalize step with the main.cf
// settings it obeys.
type Rewriter struct {
	MyOrigin          string // myorigin
	MyDomain          string // mydomain
	AppendAtMyOrigin  bool   // append_at_myorigin
	AppendDotMyDomain bool   // append_dot_mydomain
	SwapBangPath      bool   // swap_bangpath
	PercentHack       bool   // allow_percent_hack
}

// NewRewriter reads the rewriting settings from main.cf.
func NewRewriter(p Params) *Rewriter {
	return &Rewriter{
		MyOrigin:          strings.TrimSpace(p.Get("myorigin")),
		MyDomain:          strings.TrimSpace(p.Get("mydomain")),
		AppendAtMyOrigin:  p.Bool("append_at_myorigin"),
		AppendDotMyDomain: p.Bool("append_dot_mydomain"),
		SwapBangPath:      p.Bool("swap_bangpath"),
		PercentHack:       p.Bool("allow_percent_hack"),
	}
}

// Split returns the local part and domain of address a, split at its last
// '@' ("" domain when there is none).
func Split(a string) (local, domain string) {
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		return a[:i], a[i+1:]
	}
	return a, ""
}

// Domain is the lower-cased domain of a, without a trailing dot.
func Domain(a string) string {
	_, d := Split(a)
	return strings.TrimSuffix(strings.ToLower(d), ".")
}

// Canonicalize rewrites a into the fully qualified form Postfix's
// "local" rewriting context produces. The empty address (the null sender
// <>) stays empty.
func (r *Rewriter) Canonicalize(a string) string {
	a = strings.TrimSpace(a)
	if a == "" {
		return ""
	}
	// A source route "@hop1,@hop2:user@domain" keeps only its destination.
	if strings.HasPrefix(a, "@") {
		if i := strings.IndexByte(a, ':'); i >= 0 {
			a = a[i+1:]
		}
	}
	local, domain := Split(a)
	hasAt := strings.IndexByte(a, '@') >= 0
	if !hasAt && r.SwapBangPath {
		// host!user becomes user@host.
		if i := strings.IndexByte(local, '!'); i > 0 && i < len(local)-1 {
			local, domain, hasAt = local[i+1:], local[:i], true
		}
	}
	if !hasAt && r.PercentHack {
		// user%host becomes user@host.
		if i := strings.LastIndexByte(local, '%'); i > 0 && i < len(local)-1 {
			local, domain, hasAt = local[:i], local[i+1:], true
		}
	}
	domain = strings.TrimSuffix(domain, ".")
	if !hasAt || domain == "" {
		if !r.AppendAtMyOrigin || r.MyOrigin == "" {
			if domain == "" {
				return local
			}
		} else {
			domain = r.MyOrigin
		}
	}
	if r.AppendDotMyDomain && r.MyDomain != "" && domain != "" &&
		!strings.Contains(domain, ".") && !strings.HasPrefix(domain, "[") {
		domain += "." + r.MyDomain
	}
	if domain == "" {
		return local
	}
	return local + "@" + domain
}
