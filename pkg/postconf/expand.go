package postconf

import (
	"strconv"
	"strings"
)

// MacroError is a $name expansion failure. Detail is Postfix's warning
// ("unreasonable macro call nesting: \"myorigin\""); Postfix follows it
// with "fatal: macro processing error".
type MacroError struct {
	Detail string
	// Warnings are what loading the configuration had reported before
	// the failure (Postfix prints them first).
	Warnings []string
}

func (e *MacroError) Error() string { return e.Detail }

// maxNesting is how deep $name references may nest before expansion is
// declared a loop.
const maxNesting = 100

// lookupFunc returns a parameter's unexpanded value.
type lookupFunc func(name string) (string, bool)

type expander struct {
	lookup    lookupFunc
	undefined func(name string) // called for references to unknown names
	// literal inserts looked-up values as they are, never expanding them
	// again (a daemon's attributes: an address is data, not a template);
	// filter, when set, is the set of bytes such a value may keep: others
	// become '_'. undef records a plain $name reference to an unknown name.
	literal bool
	filter  string
	undef   bool
}

// ExpandAttrs expands s as a daemon expands a parameter with its own
// attributes (local(8)'s $user, $home, $recipient, $extension ... in
// forward_path and luser_relay): $name, ${name}, $(name), ${name?text},
// ${name:text}, ${name?{t}:{f}} and ${{a} op {b}...}, with attrs giving
// each name's value (false: unknown). Values are inserted literally; when
// filter is not "", each byte of a value outside filter becomes '_' (the
// *_expansion_filter parameters). undefined reports whether a plain $name
// reference named an unknown attribute (Postfix skips such a value).
func ExpandAttrs(s string, attrs func(name string) (string, bool), filter string) (out string, undefined bool, err error) {
	x := &expander{lookup: attrs, literal: true, filter: filter}
	out, err = x.expand(s, 1)
	return out, x.undef, err
}

// FilterChars replaces each byte of s that is not in allowed with '_'.
func FilterChars(s, allowed string) string {
	b := []byte(s)
	for i, c := range b {
		if strings.IndexByte(allowed, c) < 0 {
			b[i] = '_'
		}
	}
	return string(b)
}

func isNameChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// expand replaces $name, ${name}, $(name), ${name?text}, ${name:text},
// ${name?{t}:{f}} and ${{a} op {b} ? {t} : {f}} in s, recursively.
func (x *expander) expand(s string, depth int) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			j := strings.IndexByte(s[i:], '$')
			if j < 0 {
				b.WriteString(s[i:])
				break
			}
			b.WriteString(s[i : i+j])
			i += j
			continue
		}
		if i+1 >= len(s) {
			return "", &MacroError{Detail: `empty macro name: "` + s[i:] + `"`}
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{', '(':
			closer := byte('}')
			if s[i+1] == '(' {
				closer = ')'
			}
			end := matchClose(s, i+1, s[i+1], closer)
			if end < 0 {
				return "", &MacroError{Detail: `truncated macro reference: "` + s[i:] + `"`}
			}
			v, err := x.braced(s[i+2:end], s[i:end+1], depth)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i = end + 1
		default:
			j := i + 1
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			if j == i+1 {
				return "", &MacroError{Detail: `empty macro name: "` + s[i:] + `"`}
			}
			v, err := x.value(s[i+1:j], depth)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i = j
		}
	}
	return b.String(), nil
}

// matchClose returns the index of the bracket that closes the one at open.
func matchClose(s string, open int, o, c byte) int {
	level := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case o:
			level++
		case c:
			level--
			if level == 0 {
				return i
			}
		}
	}
	return -1
}

// value is the recursively expanded value of a parameter.
func (x *expander) value(name string, depth int) (string, error) {
	if depth >= maxNesting {
		return "", &MacroError{Detail: `unreasonable macro call nesting: "` + name + `"`}
	}
	raw, ok := x.lookup(name)
	if !ok {
		if x.undefined != nil {
			x.undefined(name)
		}
		x.undef = true
		return "", nil
	}
	if x.literal {
		if x.filter != "" {
			raw = FilterChars(raw, x.filter)
		}
		return raw, nil
	}
	return x.expand(raw, depth+1)
}

// braced handles the inside of ${...}; whole is the full reference for
// messages.
func (x *expander) braced(in, whole string, depth int) (string, error) {
	if strings.HasPrefix(in, "{") {
		return x.expression(in, whole, depth)
	}
	j := 0
	for j < len(in) && isNameChar(in[j]) {
		j++
	}
	name, rest := in[:j], in[j:]
	if name == "" {
		if rest == "" {
			return "", &MacroError{Detail: `empty macro name: "` + whole + `"`}
		}
		return "", &MacroError{Detail: `attribute name syntax error at: "...` + ">>>" + rest + `"`}
	}
	if rest == "" {
		return x.value(name, depth)
	}
	op := rest[0]
	if op != '?' && op != ':' {
		return "", &MacroError{Detail: `attribute name syntax error at: "...` + name + ">>>" + rest + `"`}
	}
	raw, ok := x.lookup(name)
	if !ok && x.undefined != nil {
		x.undefined(name)
	}
	set := raw != ""
	arg := rest[1:]
	if op == '?' && strings.HasPrefix(arg, "{") {
		// ${name?{t}:{f}}
		t, after, ok := takeBraced(arg)
		f := ""
		if ok {
			after = strings.TrimLeft(after, spaceChars)
			if strings.HasPrefix(after, ":") {
				f, _, ok = takeBraced(strings.TrimLeft(after[1:], spaceChars))
			}
		}
		if !ok {
			return "", &MacroError{Detail: `syntax error in conditional: "` + whole + `"`}
		}
		if set {
			return x.expand(t, depth)
		}
		return x.expand(f, depth)
	}
	if set == (op == '?') {
		return x.expand(arg, depth)
	}
	return "", nil
}

// takeBraced takes "{text}" from the front of s.
func takeBraced(s string) (text, rest string, ok bool) {
	if !strings.HasPrefix(s, "{") {
		return "", s, false
	}
	end := matchClose(s, 0, '{', '}')
	if end < 0 {
		return "", s, false
	}
	return s[1:end], s[end+1:], true
}

var relOps = []string{"==level", "!=level", "<=level", ">=level", "<level", ">level", "==", "!=", "<=", ">=", "<", ">"}

// expression evaluates ${{a} op {b}}, optionally followed by ? {t} : {f}.
func (x *expander) expression(in, whole string, depth int) (string, error) {
	a, rest, ok := takeBraced(in)
	if !ok {
		return "", &MacroError{Detail: `truncated macro reference: "` + whole + `"`}
	}
	rest = strings.TrimLeft(rest, spaceChars)
	op := ""
	for _, o := range relOps {
		if strings.HasPrefix(rest, o) {
			op = o
			break
		}
	}
	if op == "" {
		return "", &MacroError{Detail: `"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...` + a + "}>>>" + rest + `"`}
	}
	bv, rest, ok := takeBraced(strings.TrimLeft(rest[len(op):], spaceChars))
	if !ok {
		return "", &MacroError{Detail: `truncated macro reference: "` + whole + `"`}
	}
	av, err := x.expand(a, depth)
	if err != nil {
		return "", err
	}
	bx, err := x.expand(bv, depth)
	if err != nil {
		return "", err
	}
	truth, err := compare(strings.TrimSpace(av), op, strings.TrimSpace(bx))
	if err != nil {
		return "", err
	}
	rest = strings.TrimLeft(rest, spaceChars)
	if rest == "" {
		if truth {
			return "true", nil
		}
		return "", nil
	}
	if rest[0] != '?' {
		return "", &MacroError{Detail: `"?" expected at: "...}>>>` + rest + `"`}
	}
	t, rest, ok := takeBraced(strings.TrimLeft(rest[1:], spaceChars))
	if !ok {
		return "", &MacroError{Detail: `"{expression}" expected at: "...?>>>` + rest + `"`}
	}
	f := ""
	rest = strings.TrimLeft(rest, spaceChars)
	if rest != "" {
		if rest[0] != ':' {
			return "", &MacroError{Detail: `":" expected at: "...}>>>` + rest + `"`}
		}
		f, rest, ok = takeBraced(strings.TrimLeft(rest[1:], spaceChars))
		if !ok || strings.TrimSpace(rest) != "" {
			return "", &MacroError{Detail: `"{expression}" expected at: "...:>>>` + rest + `"`}
		}
	}
	if truth {
		return x.expand(t, depth)
	}
	return x.expand(f, depth)
}

func compare(a, op, b string) (bool, error) {
	if base, ok := strings.CutSuffix(op, "level"); ok {
		la, err := parseLevel(a)
		if err != nil {
			return false, err
		}
		lb, err := parseLevel(b)
		if err != nil {
			return false, err
		}
		return cmpResult(compareLevels(la, lb), base), nil
	}
	if op == "==" || op == "!=" {
		return (a == b) == (op == "=="), nil
	}
	ia, err1 := strconv.ParseInt(a, 10, 64)
	ib, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return false, nil
	}
	c := 0
	if ia < ib {
		c = -1
	} else if ia > ib {
		c = 1
	}
	return cmpResult(c, op), nil
}

func cmpResult(c int, op string) bool {
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	default:
		return c >= 0
	}
}

// parseLevel parses a compatibility level: "0", "2", "3.6", "3.6.1".
func parseLevel(s string) ([3]int, error) {
	var l [3]int
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 3 {
		return l, &MacroError{Detail: `malformed compatibility level syntax: "` + s + `"`}
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || p[0] == '+' {
			return l, &MacroError{Detail: `malformed compatibility level syntax: "` + s + `"`}
		}
		l[i] = n
	}
	return l, nil
}

func compareLevels(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
