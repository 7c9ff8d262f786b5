package local

import (
	"strings"
)

// TargetKind says what an alias or .forward entry delivers to.
type TargetKind int

// The kinds of alias(5) and forward targets.
const (
	Address TargetKind = iota // user or user@domain
	Command                   // |command
	File                      // /file/name
	Include                   // :include:/file/name
)

// Target is one destination from an alias value or a .forward file.
type Target struct {
	Kind  TargetKind
	Value string // the address, command (without |), or path
	// Backslash is set for \user: deliver to user's mailbox without
	// further alias or .forward expansion.
	Backslash bool
}

// ParseTargets splits an aliases(5) value or one .forward line into
// targets. Entries are separated by commas; a double-quoted entry may
// hold commas and white space ("|/usr/bin/prog -a b"); outside quotes,
// white space also separates addresses. A # starts a comment when it
// begins an entry.
func ParseTargets(value string) []Target {
	var out []Target
	for _, tok := range tokenize(value) {
		t := Target{Kind: Address, Value: tok}
		switch {
		case strings.HasPrefix(tok, "|"):
			t.Kind, t.Value = Command, strings.TrimSpace(tok[1:])
		case strings.HasPrefix(strings.ToLower(tok), ":include:"):
			t.Kind, t.Value = Include, strings.TrimSpace(tok[len(":include:"):])
		case strings.HasPrefix(tok, "/"):
			t.Kind = File
		case strings.HasPrefix(tok, "\\"):
			t.Value, t.Backslash = tok[1:], true
		}
		if t.Value == "" {
			continue
		}
		if t.Kind == Address {
			t.Value = strings.Trim(t.Value, "<>")
			if t.Value == "" {
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

// tokenize splits on commas (and on blanks outside quotes, except inside
// an unquoted |command or :include:), removing double quotes.
func tokenize(v string) []string {
	var toks []string
	var cur strings.Builder
	quoted, inQuote, rawToken := false, false, false
	flush := func() {
		s := cur.String()
		if !quoted {
			s = strings.TrimSpace(s)
		}
		if s != "" {
			toks = append(toks, s)
		}
		cur.Reset()
		quoted, rawToken = false, false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(v):
			i++
			cur.WriteByte(v[i])
		case c == '"':
			inQuote = !inQuote
			quoted = true
		case inQuote:
			cur.WriteByte(c)
		case c == ',' || c == '\n' || c == '\r':
			flush()
		case c == '#' && strings.TrimSpace(cur.String()) == "" && !quoted:
			// comment to end of line
			for i < len(v) && v[i] != '\n' {
				i++
			}
			flush()
		case c == ' ' || c == '\t':
			if rawToken {
				cur.WriteByte(c)
			} else if strings.TrimSpace(cur.String()) != "" || quoted {
				flush()
			}
		default:
			if cur.Len() == 0 && !quoted && (c == '|' || c == ':') {
				rawToken = true
			}
			cur.WriteByte(c)
		}
	}
	flush()
	return toks
}
