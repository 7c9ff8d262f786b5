package addr

import "strings"

// addrSpecials are the characters that are tokens of their own in an
// RFC 822 address list (RFC 822 section 3.3).
const addrSpecials = "()<>@,;:\\\".[]"

// Token kinds of an address list; a special character is its own kind.
const (
	tokAtom    = 'a'
	tokQuoted  = 'q'
	tokComment = 'c'
	tokDomLit  = 'd'
)

// token is one RFC 822 token of an address list: s[start:end].
type token struct {
	kind       byte
	start, end int
}

// scanTokens splits s into at most max tokens (max <= 0: all): an atom,
// a special character, a "quoted string", a (comment) and a [domain
// literal] are one token each; white space separates them. Unterminated
// quotes, comments and literals run to the end of s.
func scanTokens(s string, max int) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		if isSpace(c) {
			i++
			continue
		}
		if max > 0 && len(toks) == max {
			break
		}
		t := token{kind: c, start: i}
		switch {
		case c == '(':
			t.kind, i = tokComment, skipNested(s, i)
		case c == '"':
			t.kind, i = tokQuoted, skipQuoted(s, i+1, '"')
		case c == '[':
			t.kind, i = tokDomLit, skipQuoted(s, i+1, ']')
		case c != '\\' && strings.IndexByte(addrSpecials, c) >= 0:
			i++
		default:
			t.kind = tokAtom
			for i < len(s) && !isSpace(s[i]) && (s[i] == '\\' || strings.IndexByte(addrSpecials, s[i]) < 0) {
				if s[i] == '\\' {
					i++
				}
				i++
			}
		}
		t.end = min(i, len(s))
		toks = append(toks, t)
	}
	return toks
}

// skipNested returns the position after the (comment) that starts at i.
func skipNested(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(s)
}

// skipQuoted returns the position after the closing end, from i.
func skipQuoted(s string, i int, end byte) int {
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case end:
			return i + 1
		}
	}
	return len(s)
}

// CutTokens returns s up to the end of its max-th token (the whole of s
// when it has no more), as Postfix's header_address_token_limit cuts an
// address header. max <= 0 means no limit.
func CutTokens(s string, max int) string {
	if max <= 0 {
		return s
	}
	toks := scanTokens(s, max)
	if len(toks) < max || toks[len(toks)-1].end >= len(s) {
		return s
	}
	return s[:toks[len(toks)-1].end]
}

// foldWidth is where Postfix breaks a header line it writes.
const foldWidth = 70

// FoldHeader lays out an address-list header as Postfix's cleanup writes
// one whose addresses it has rewritten: "name: " and the value's tokens
// with single spaces between words (none around '@', '.', '<', '>' and
// before ',', ';', ':'), a comma after a group's ';' when more follows,
// and a line break (newline and TAB) after a comma where the next item
// would take the line to foldWidth columns or more. The result ends in a
// newline.
func FoldHeader(name, value string) string {
	// An unterminated quote or comment must not take the header's final
	// newline (a blank line would end the header block).
	value = strings.TrimRight(value, " \t\r\n")
	toks := scanTokens(value, 0)
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(":")
	var item strings.Builder // text since the last comma
	lineLen := b.Len()       // the current line, TAB not counted
	first := true            // nothing written after "name:" yet
	flush := func() {
		if item.Len() == 0 && first {
			return
		}
		if first || lineLen+1+item.Len() < foldWidth {
			b.WriteByte(' ')
			lineLen++
		} else {
			b.WriteString("\n\t")
			lineLen = 0
		}
		b.WriteString(item.String())
		lineLen += item.Len()
		item.Reset()
		first = false
	}
	var prev byte
	angle, group := false, false // inside <...>; inside "group: ...;"
	for i, t := range toks {
		text := value[t.start:t.end]
		if item.Len() > 0 && spaced(prev, t.kind) {
			item.WriteByte(' ')
		}
		item.WriteString(text)
		prev = t.kind
		switch {
		case t.kind == '<':
			angle = true
		case t.kind == '>':
			angle = false
		case angle:
			// A route's ':' and ',' stay as they are.
			prev = 0
			if t.kind == tokAtom || t.kind == tokQuoted || t.kind == tokDomLit {
				prev = t.kind
			}
		case t.kind == ':':
			group = true
		case t.kind == ';' && group:
			group = false
			if i+1 < len(toks) && toks[i+1].kind != ',' {
				item.WriteByte(',')
				t.kind = ','
			}
		}
		if t.kind == ',' && !angle {
			flush()
			prev = 0
		}
	}
	if item.Len() > 0 {
		flush()
	}
	b.WriteByte('\n')
	return b.String()
}

// spaced says whether a space goes between tokens of kinds a and b.
func spaced(a, b byte) bool {
	word := func(k byte) bool { return k == tokAtom || k == tokQuoted || k == tokDomLit }
	switch {
	case a == ':':
		return true
	case b == tokComment:
		return word(a) || a == tokComment
	case b == '<':
		return word(a) || a == tokComment
	case word(b):
		return word(a) || a == tokComment
	}
	return false
}
