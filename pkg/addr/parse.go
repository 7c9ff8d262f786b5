package addr

import "strings"

// item is one element of an address list: s[start:end] is the address
// text to parse, and addrStart:addrEnd the address inside it (the part in
// <...>, or the bare address without comments); addrEnd < 0 when the
// item holds no address.
type item struct {
	addrStart, addrEnd int
}

// scanList finds the addresses of an address-list header value, splitting
// at commas (and group colons/semicolons) outside quotes, comments and
// angle brackets.
func scanList(s string) []item {
	var items []item
	angle := -1           // position after the last '<' of the current item
	angleEnd := -1        // position of its '>'
	first, last := -1, -1 // bare text outside comments
	commentInside, sawComment := false, false
	flush := func(end int) {
		it := item{addrStart: -1, addrEnd: -1}
		switch {
		case angle >= 0:
			e := angleEnd
			if e < 0 {
				e = end
			}
			it.addrStart, it.addrEnd = angle, e
		case first >= 0 && !commentInside:
			it.addrStart, it.addrEnd = first, last
		}
		if it.addrEnd >= 0 {
			for it.addrStart < it.addrEnd && isSpace(s[it.addrStart]) {
				it.addrStart++
			}
			for it.addrEnd > it.addrStart && isSpace(s[it.addrEnd-1]) {
				it.addrEnd--
			}
			if it.addrStart < it.addrEnd {
				items = append(items, it)
			}
		}
		angle, angleEnd, first, last, commentInside, sawComment = -1, -1, -1, -1, false, false
	}
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			if c == '\\' && i+1 < len(s) {
				i++
			} else if c == '"' {
				quoted = false
			}
			last = i + 1
			continue
		case depth > 0:
			if c == '\\' && i+1 < len(s) {
				i++
			} else if c == '(' {
				depth++
			} else if c == ')' {
				depth--
			}
			continue
		case c == '(':
			depth++
			sawComment = first >= 0
			continue
		case c == '"':
			quoted = true
		case c == '<' && angleEnd < 0:
			angle = i + 1
			continue
		case c == '>' && angle >= 0 && angleEnd < 0:
			angleEnd = i
			continue
		case angle >= 0 && angleEnd < 0:
			continue
		case c == ',' || c == ';':
			flush(i)
			continue
		case c == ':':
			// "group:" starts a group; its name is not an address.
			angle, angleEnd, first, last, commentInside, sawComment = -1, -1, -1, -1, false, false
			continue
		}
		if isSpace(c) {
			continue
		}
		if first < 0 {
			first = i
		} else if sawComment {
			// "a (x) b" is not one clean address: leave it alone.
			commentInside = true
		}
		last = i + 1
	}
	flush(len(s))
	return items
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// ParseList extracts the addresses from an address-list header value
// (To:, Cc:, Bcc:, From: ...): "Name <a@b>", "a@b (comment)", groups
// ("team: a, b;"), quoted local parts. Comments and display names are
// dropped.
func ParseList(s string) []string {
	var out []string
	for _, it := range scanList(s) {
		out = append(out, Unquote(dropSpace(s[it.addrStart:it.addrEnd])))
	}
	return out
}

// RewriteList replaces each address in an address-list header value by
// f(address), leaving display names, comments and punctuation as they
// were. Addresses f returns unchanged are left byte for byte.
func RewriteList(s string, f func(string) string) string {
	var b strings.Builder
	pos := 0
	for _, it := range scanList(s) {
		a := Unquote(dropSpace(s[it.addrStart:it.addrEnd]))
		n := f(a)
		if n == a {
			continue
		}
		b.WriteString(s[pos:it.addrStart])
		b.WriteString(Quote(n))
		pos = it.addrEnd
	}
	if pos == 0 {
		return s
	}
	b.WriteString(s[pos:])
	return b.String()
}

// dropSpace removes white space outside double quotes.
func dropSpace(s string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quoted && c == '\\' && i+1 < len(s) {
			b.WriteByte(c) // a quoted pair: its second character is plain
			i++
			c = s[i]
		} else if c == '"' {
			quoted = !quoted
		}
		if !quoted && isSpace(c) {
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Unquote removes the quotes around a quoted local part ("a b"@c
// becomes a b@c), the internal form Postfix uses.
func Unquote(a string) string {
	if !strings.HasPrefix(a, `"`) {
		return a
	}
	end := strings.LastIndexByte(a, '"')
	if end <= 0 {
		return a
	}
	var local strings.Builder
	for i := 1; i < end; i++ {
		if a[i] == '\\' && i+1 < end {
			i++ // a quoted pair stands for its second character
		}
		local.WriteByte(a[i])
	}
	return local.String() + a[end+1:]
}

// Quote is the external form of internal address a: a local part with
// spaces or specials is put in double quotes.
func Quote(a string) string {
	local, domain := Split(a)
	if !strings.ContainsAny(a, "@") {
		local, domain = a, ""
	}
	if !strings.ContainsAny(local, " \t\"(),:;<>[]\\") {
		return a
	}
	q := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(local) + `"`
	if domain != "" || strings.Contains(a, "@") {
		return q + "@" + domain
	}
	return q
}
