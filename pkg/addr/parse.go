package addr

import "strings"

// ParseList extracts the addresses from an address-list header value
// (To:, Cc:, Bcc:, From: ...): "Name <a@b>", "a@b (comment)", groups
// ("team: a, b;"), quoted local parts. Comments and display names are
// dropped; what cannot be parsed is kept as written, as Postfix does,
// rather than dropped.
func ParseList(s string) []string {
	var out []string
	for _, item := range splitItems(s) {
		if a := itemAddress(item); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// splitItems splits at commas (and group colons/semicolons) outside
// quotes, comments and angle brackets.
func splitItems(s string) []string {
	var items []string
	var cur strings.Builder
	depth, angle, quoted := 0, false, false
	flush := func() {
		items = append(items, cur.String())
		cur.Reset()
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			if c == '\\' && i+1 < len(s) {
				cur.WriteByte(c)
				i++
				c = s[i]
			} else if c == '"' {
				quoted = false
			}
		case depth > 0:
			if c == '\\' && i+1 < len(s) {
				i++
				continue
			}
			if c == '(' {
				depth++
			} else if c == ')' {
				depth--
			}
			continue
		case c == '(':
			depth++
			continue
		case c == '"':
			quoted = true
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case !angle && (c == ',' || c == ';'):
			flush()
			continue
		case !angle && c == ':':
			// "group:" starts a group; its name is not an address.
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	flush()
	return items
}

// itemAddress is the address of one list item: the text in <...> when
// there is any, else the item itself with its white space removed.
func itemAddress(item string) string {
	if i := strings.LastIndexByte(item, '<'); i >= 0 {
		rest := item[i+1:]
		if j := strings.IndexByte(rest, '>'); j >= 0 {
			rest = rest[:j]
		}
		return unquoteLocal(strings.TrimSpace(rest))
	}
	return unquoteLocal(dropSpace(item))
}

// dropSpace removes white space outside double quotes.
func dropSpace(s string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			quoted = !quoted
		}
		if !quoted && (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// unquoteLocal removes the quotes around a quoted local part
// ("a b"@c becomes a b@c), the internal form Postfix uses.
func unquoteLocal(a string) string {
	if !strings.HasPrefix(a, `"`) {
		return a
	}
	end := strings.LastIndexByte(a, '"')
	if end <= 0 {
		return a
	}
	local := strings.ReplaceAll(a[1:end], `\`, "")
	return local + a[end+1:]
}
