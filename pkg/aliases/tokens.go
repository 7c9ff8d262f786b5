package aliases

// A small RFC 822 tokenizer with the quoting rules Postfix applies when it
// stores aliases: atoms, "quoted strings", (comments), [domain literals]
// and the special characters, re-joined with single spaces where words
// meet.

import "strings"

const (
	tokAtom    = 'a'
	tokQuoted  = 'q'
	tokComment = 'c'
	tokDomLit  = 'd'
)

type token struct {
	kind    byte // one of tok*, or the special character itself
	text    string
	escaped bool // an atom with a quoted pair (\x) in it
}

const specials = "()<>@,;:\\\".[]"

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isAtomChar(c byte) bool {
	return !isSpace(c) && c >= 0x20 && c != 0x7f && strings.IndexByte(specials, c) < 0
}

// scan splits s into tokens. Unterminated quoted strings, comments and
// domain literals end at the end of s.
func scan(s string) []token {
	var toks []token
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isSpace(c):
			i++
		case c == '(':
			j, depth := i, 0
			for ; j < len(s); j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					continue
				}
				if s[j] == '(' {
					depth++
				} else if s[j] == ')' {
					depth--
					if depth == 0 {
						j++
						break
					}
				}
			}
			toks = append(toks, token{kind: tokComment, text: s[i:j]})
			i = j
		case c == '"':
			b.Reset()
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					if j+1 == len(s) {
						continue // a backslash that ends the text escapes nothing
					}
					j++
				}
				b.WriteByte(s[j])
			}
			if j < len(s) {
				j++
			}
			toks = append(toks, token{kind: tokQuoted, text: b.String()})
			i = j
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j = len(s)
			} else {
				j += i + 1
			}
			toks = append(toks, token{kind: tokDomLit, text: s[i:j]})
			i = j
		case c == '\\' || isAtomChar(c):
			// As in postalias, once an atom has a quoted pair, a bare '|'
			// ends it: \ |x is the words " " and |x.
			b.Reset()
			j := i
			escaped := false
			for ; j < len(s) && (s[j] == '\\' || isAtomChar(s[j])); j++ {
				if s[j] == '\\' {
					if j+1 >= len(s) {
						j++ // a backslash that ends the text escapes nothing
						break
					}
					j++
					escaped = true
				} else if escaped && s[j] == '|' {
					break
				}
				b.WriteByte(s[j])
			}
			toks = append(toks, token{kind: tokAtom, text: b.String(), escaped: escaped})
			i = j
		default:
			toks = append(toks, token{kind: c, text: string(c)})
			i++
		}
	}
	return toks
}

func isWord(t token) bool {
	return t.kind == tokAtom || t.kind == tokQuoted || t.kind == tokComment || t.kind == tokDomLit
}

// spaceBetween says whether a space separates t and next when tokens are
// joined again.
func spaceBetween(t, next token) bool {
	if t.kind == tokAtom && strings.HasSuffix(t.text, "|") {
		return false
	}
	if next.kind == tokAtom && strings.HasPrefix(next.text, "|") {
		return false
	}
	if next.kind == '<' {
		return isWord(t) || t.kind == '>'
	}
	return isWord(t) && isWord(next)
}

func needsQuote(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return true
		}
	}
	return false
}

func quote(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// join renders tokens; with quoted set, atoms and quoted strings keep or
// get the quotes they need (externalized), otherwise their bare text is
// used (internalized).
func join(toks []token, quoted bool) string {
	var b strings.Builder
	for i, t := range toks {
		switch t.kind {
		case ',':
			b.WriteString(", ")
			continue
		case tokAtom:
			// An escaped '|' is quoted so as not to be read as a command.
			if quoted && (needsQuote(t.text) || t.escaped && strings.Contains(t.text, "|")) {
				quote(&b, t.text)
			} else {
				b.WriteString(t.text)
			}
		case tokQuoted:
			if quoted {
				quote(&b, t.text)
			} else {
				b.WriteString(t.text)
			}
		default:
			b.WriteString(t.text)
		}
		if i+1 < len(toks) && spaceBetween(t, toks[i+1]) {
			b.WriteByte(' ')
		}
	}
	return b.String()
}
