package maps

// Shared by the cidr:, regexp: and pcre: table types: reading a pattern
// table file into logical lines, parsing "/pattern/flags result" rules and
// IF/ENDIF statements, and expanding $1..$9 in results.

import (
	"fmt"
	"io"
	"os"
	"postdove/pkg/syserr"
	"strconv"
	"strings"
)

// logicalLine is one rule of a table file: physical lines joined by
// continuation, numbered by its first physical line.
type logicalLine struct {
	text   string
	lineno int
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// openError is Postfix's wording for a table file that cannot be opened.
func openError(path string, err error) error {
	return fmt.Errorf("open %s: %s", path, syserr.Text(err))
}

// readTableFile reads a pattern table file as logical lines (see
// SourceReader: comments, blank lines and continuation lines as Postfix's
// readllines treats them).
func readTableFile(path string, warn func(string)) ([]logicalLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, openError(path, err)
	}
	defer f.Close()
	sr := NewSourceReader(f, path, warn)
	var out []logicalLine
	for {
		line, lineno, err := sr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, &readError{err: err}
		}
		out = append(out, logicalLine{text: string(line), lineno: lineno})
	}
}

type readError struct{ err error }

func (e *readError) Error() string { return "read error: " + syserr.Text(e.err) }

func warnFunc(opts Options) func(string) {
	if opts.Warn != nil {
		return opts.Warn
	}
	return func(string) {}
}

// template is a result with $n references to the pattern's groups.
type template struct {
	parts []tmplPart
	max   int // highest group referenced (reported as int32 in messages)
}

type tmplPart struct {
	lit   string
	group int // > 0: a group reference
}

// atoiC mimics C's int(strtol(s)): clamped to the C long range, then
// truncated to 32 bits.
func atoiC(s string) int32 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		v = 1<<63 - 1
	}
	return int32(v)
}

// parseTemplate parses a rule's result. prefix is "regexp map F, line N".
// zeroMsg is the wording for index 0 ("out-of-range" for regexp, "out of
// range" for pcre). ok is false when the rule must be skipped (the
// messages were already given).
func parseTemplate(value, prefix, zeroMsg string, warn func(string)) (template, bool) {
	var t template
	var lit strings.Builder
	maxIdx := uint32(0)
	bad := func() (template, bool) {
		warn(prefix + ": bad replacement syntax: skipping this rule")
		return template{}, false
	}
	for i := 0; i < len(value); {
		c := value[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(value) && value[i+1] == '$' {
			lit.WriteByte('$')
			i += 2
			continue
		}
		i++
		var name string
		if i < len(value) && (value[i] == '{' || value[i] == '(') {
			open, closer := value[i], byte('}')
			if open == '(' {
				closer = ')'
			}
			depth, j := 1, i+1
			for ; j < len(value); j++ {
				if value[j] == open {
					depth++
				} else if value[j] == closer {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			if j >= len(value) {
				warn(fmt.Sprintf("truncated macro reference: \"%s\"", value))
				return bad()
			}
			name = value[i+1 : j]
			i = j + 1
		} else {
			j := i
			for j < len(value) && (isAlnum(value[j]) || value[j] == '_') {
				j++
			}
			name = value[i:j]
			i = j
		}
		if name == "" {
			warn(fmt.Sprintf("empty macro name: \"%s\"", value))
			return bad()
		}
		if !allDigits(name) {
			warn(fmt.Sprintf("%s: non-numeric replacement index \"%s\"", prefix, name))
			return bad()
		}
		n := atoiC(name)
		if n == 0 {
			warn(fmt.Sprintf("%s: %s replacement index \"%s\"", prefix, zeroMsg, name))
			return bad()
		}
		if uint32(n) > maxIdx {
			maxIdx = uint32(n)
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, tmplPart{lit: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, tmplPart{group: int(uint32(n))})
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, tmplPart{lit: lit.String()})
	}
	t.max = int(int32(maxIdx))
	if maxIdx > 0 && t.max < 0 {
		t.max = -1 // compared as "larger than any group count"
	}
	return t, true
}

// exceeds reports whether the template refers to a group beyond nsub.
func (t template) exceeds(nsub int) bool {
	return t.max < 0 || t.max > nsub
}

func (t template) hasRefs() bool { return t.max != 0 }

// expand fills in the template; group(n) returns group n's text ("" when
// the group did not take part in the match).
func (t template) expand(group func(int) string) string {
	if len(t.parts) == 1 && t.parts[0].group == 0 {
		return t.parts[0].lit
	}
	var sb strings.Builder
	for _, p := range t.parts {
		if p.group > 0 {
			sb.WriteString(group(p.group))
		} else {
			sb.WriteString(p.lit)
		}
	}
	return sb.String()
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// keyword reports whether line starts with the (case-insensitive) keyword
// followed by a non-alphanumeric character, and returns the rest.
func keyword(line, kw string) (string, bool) {
	if len(line) < len(kw) || !strings.EqualFold(line[:len(kw)], kw) {
		return "", false
	}
	if len(line) > len(kw) && isAlnum(line[len(kw)]) {
		return "", false
	}
	return line[len(kw):], true
}

// Rule operations in a pattern table.
const (
	opMatch = iota
	opIf
	opEndif
)

// patSpec is one "/pattern/flags" with its negation.
type patSpec struct {
	pattern string
	flags   string
	negate  bool
}

// patRule is a parsed line of a regexp: or pcre: table.
type patRule struct {
	op     int
	first  patSpec
	second *patSpec // regexp only: /pattern1/!/pattern2/
	value  string
}

// patDialect describes the differences between regexp: and pcre: files.
type patDialect struct {
	name          string // "regexp" or "pcre"
	flags         string // accepted flag letters
	obsoleteFlags string // accepted with a warning
	noCloseAction string // "skipping" or "ignoring"
	zeroIndexMsg  string
	twoPatterns   bool
}

// getPattern reads "[!...]/pattern/flags" at the start of s.
func (d *patDialect) getPattern(s, prefix string, warn func(string)) (patSpec, string, bool) {
	var p patSpec
	for {
		s = strings.TrimLeft(s, " \t\v\f\r\n")
		if s != "" && s[0] == '!' {
			p.negate = !p.negate
			s = s[1:]
			continue
		}
		break
	}
	if s == "" {
		warn(prefix + ": no regexp: skipping this rule")
		return p, "", false
	}
	if isAlnum(s[0]) || isSpace(s[0]) {
		warn(prefix + ": ignoring unrecognized request")
		return p, "", false
	}
	delim := s[0]
	i := 1
	for ; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			continue
		}
		if s[i] == delim {
			break
		}
	}
	if i >= len(s) {
		warn(fmt.Sprintf("%s: no closing regexp delimiter \"%s\": %s this rule", prefix, string([]byte{delim}), d.noCloseAction))
		return p, "", false
	}
	p.pattern = s[1:i]
	s = s[i+1:]
	j := 0
	for j < len(s) && !isSpace(s[j]) {
		c := s[j]
		if c == '!' && d.twoPatterns {
			break
		}
		switch {
		case strings.IndexByte(d.flags, c) >= 0:
		case strings.IndexByte(d.obsoleteFlags, c) >= 0:
			warn(fmt.Sprintf("%s: ignoring obsolete regexp option \"%s\"", prefix, string([]byte{c})))
		default:
			warn(fmt.Sprintf("%s: unknown regexp option \"%s\": skipping this rule", prefix, string([]byte{c})))
			return p, "", false
		}
		j++
	}
	p.flags = s[:j]
	return p, s[j:], true
}

// parseRule parses one logical line; ok is false when it is skipped.
// nesting is the current IF depth (for the ENDIF check).
func (d *patDialect) parseRule(mapName string, ln logicalLine, nesting int, warn func(string)) (patRule, bool) {
	prefix := fmt.Sprintf("%s map %s, line %d", d.name, mapName, ln.lineno)
	line := ln.text
	if rest, ok := keyword(line, "if"); ok {
		p, rest, ok := d.getPattern(rest, prefix, warn)
		if !ok {
			return patRule{}, false
		}
		if rest = trimSpace(rest); rest != "" {
			warn(fmt.Sprintf("%s: ignoring extra text after IF statement: \"%s\"", prefix, rest))
			warn(prefix + ": do not prepend whitespace to statements between IF and ENDIF")
		}
		return patRule{op: opIf, first: p}, true
	}
	if rest, ok := keyword(line, "endif"); ok {
		if nesting == 0 {
			warn(prefix + ": ignoring ENDIF without matching IF")
			return patRule{}, false
		}
		if trimSpace(rest) != "" {
			warn(prefix + ": ignoring extra text after ENDIF")
		}
		return patRule{op: opEndif}, true
	}
	p, rest, ok := d.getPattern(line, prefix, warn)
	if !ok {
		return patRule{}, false
	}
	r := patRule{op: opMatch, first: p}
	if d.twoPatterns && strings.HasPrefix(rest, "!") {
		p2, rest2, ok := d.getPattern(rest[1:], prefix, warn)
		if !ok {
			return patRule{}, false
		}
		p2.negate = !p2.negate
		r.second = &p2
		rest = rest2
	}
	r.value = trimSpace(rest)
	if r.value == "" {
		warn(prefix + ": no replacement text: using empty string")
	}
	return r, true
}
