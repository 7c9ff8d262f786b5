package maps

// The regexp: and pcre: tables translate their patterns into Go regular
// expressions that use only constructs whose meaning is unambiguous: every
// character class is spelled out as explicit byte values, every anchor is
// spelled \A, \z, (?m:^) or (?m:$), and no Go flags are used. Postfix runs
// both libraries in byte mode (C locale, no UTF), so keys are matched as
// Latin-1 text: byte b is the rune U+00b, and "." matches one byte.

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// byteSet is a set of byte values.
type byteSet [4]uint64

func (s *byteSet) add(b byte) { s[b>>6] |= 1 << (b & 63) }

func (s *byteSet) addRange(lo, hi byte) {
	for c := int(lo); c <= int(hi); c++ {
		s.add(byte(c))
	}
}

func (s *byteSet) addSet(o byteSet) {
	for i := range s {
		s[i] |= o[i]
	}
}

func (s byteSet) has(b byte) bool { return s[b>>6]&(1<<(b&63)) != 0 }

func (s byteSet) negate() byteSet {
	for i := range s {
		s[i] = ^s[i]
	}
	return s
}

// foldASCII adds the other case of every ASCII letter (C locale folding).
func (s byteSet) foldASCII() byteSet {
	r := s
	for c := byte('a'); c <= 'z'; c++ {
		if s.has(c) || s.has(c-32) {
			r.add(c)
			r.add(c - 32)
		}
	}
	return r
}

func setOf(bs ...byte) byteSet {
	var s byteSet
	for _, b := range bs {
		s.add(b)
	}
	return s
}

func setRange(lo, hi byte) byteSet {
	var s byteSet
	s.addRange(lo, hi)
	return s
}

func union(sets ...byteSet) byteSet {
	var s byteSet
	for _, o := range sets {
		s.addSet(o)
	}
	return s
}

// The C-locale character classes.
var (
	setDigit  = setRange('0', '9')
	setUpper  = setRange('A', 'Z')
	setLower  = setRange('a', 'z')
	setAlpha  = union(setUpper, setLower)
	setAlnum  = union(setAlpha, setDigit)
	setWord   = union(setAlnum, setOf('_'))
	setXdigit = union(setDigit, setRange('a', 'f'), setRange('A', 'F'))
	setBlank  = setOf(' ', '\t')
	setSpaceC = setOf(' ', '\t', '\n', '\v', '\f', '\r') // isspace(); also PCRE2's \s
	setCntrl  = union(setRange(0, 31), setOf(127))
	setGraph  = setRange(33, 126)
	setPrint  = setRange(32, 126)
	setPunct  = func() byteSet {
		var s byteSet
		for c := 33; c <= 126; c++ {
			if !setAlnum.has(byte(c)) {
				s.add(byte(c))
			}
		}
		return s
	}()
	setASCII = setRange(0, 127)
	setAll   = setRange(0, 255)
	setNL    = setOf('\n')
)

// posixClasses are the [:name:] classes of both dialects.
var posixClasses = map[string]byteSet{
	"alpha": setAlpha, "digit": setDigit, "alnum": setAlnum, "upper": setUpper,
	"lower": setLower, "space": setSpaceC, "blank": setBlank, "cntrl": setCntrl,
	"graph": setGraph, "print": setPrint, "punct": setPunct, "xdigit": setXdigit,
}

// goClass spells the set as a Go regexp atom.
func (s byteSet) goClass() string {
	n := 0
	var one byte
	for c := 0; c < 256; c++ {
		if s.has(byte(c)) {
			n++
			one = byte(c)
		}
	}
	if n == 0 {
		return `[^\x00-\x{10FFFF}]`
	}
	if n == 1 {
		return fmt.Sprintf(`\x{%x}`, one)
	}
	var sb strings.Builder
	sb.WriteByte('[')
	for c := 0; c < 256; {
		if !s.has(byte(c)) {
			c++
			continue
		}
		lo := c
		for c < 256 && s.has(byte(c)) {
			c++
		}
		if c-1 == lo {
			fmt.Fprintf(&sb, `\x{%x}`, lo)
		} else {
			fmt.Fprintf(&sb, `\x{%x}-\x{%x}`, lo, c-1)
		}
	}
	sb.WriteByte(']')
	return sb.String()
}

// reAtom is one translated piece of a pattern.
type reAtom struct {
	text       string
	repeatable bool // can take a quantifier
	quantified bool
}

// reLevel is one open group while translating.
type reLevel struct {
	open  string // "(" or "(?:"
	alts  []string
	cur   []reAtom
	saved any // the dialect's flags to restore at ')'
	pos   int // offset of the '(' in the source pattern
}

// reBuilder assembles a Go pattern from atoms, groups and alternations.
type reBuilder struct {
	stack  []*reLevel
	groups int
}

func newBuilder() *reBuilder {
	return &reBuilder{stack: []*reLevel{{}}}
}

func (b *reBuilder) top() *reLevel { return b.stack[len(b.stack)-1] }

func (b *reBuilder) atom(text string, repeatable bool) {
	t := b.top()
	t.cur = append(t.cur, reAtom{text: text, repeatable: repeatable})
}

// last returns the atom a quantifier would apply to.
func (b *reBuilder) last() *reAtom {
	t := b.top()
	if len(t.cur) == 0 {
		return nil
	}
	return &t.cur[len(t.cur)-1]
}

// quantify applies q ("*", "+?", "{2,5}") to the last atom.
func (b *reBuilder) quantify(q string) {
	a := b.last()
	if a.quantified {
		a.text = "(?:" + a.text + ")"
	}
	a.text += q
	a.quantified = true
}

func (b *reBuilder) alternate() {
	t := b.top()
	t.alts = append(t.alts, joinAtoms(t.cur))
	t.cur = nil
}

func joinAtoms(as []reAtom) string {
	var sb strings.Builder
	for _, a := range as {
		sb.WriteString(a.text)
	}
	return sb.String()
}

func (b *reBuilder) openGroup(capture bool, saved any, pos int) {
	open := "(?:"
	if capture {
		open = "("
		b.groups++
	}
	b.stack = append(b.stack, &reLevel{open: open, saved: saved, pos: pos})
}

// closeGroup ends the innermost group; it returns the flags saved at its
// '(' and false when no group is open.
func (b *reBuilder) closeGroup() (any, bool) {
	if len(b.stack) < 2 {
		return nil, false
	}
	t := b.top()
	b.stack = b.stack[:len(b.stack)-1]
	alts := append(t.alts, joinAtoms(t.cur))
	b.atom(t.open+strings.Join(alts, "|")+")", true)
	return t.saved, true
}

// finish returns the whole Go pattern; open is the offset of an unclosed
// '(' or -1.
func (b *reBuilder) finish() (string, int) {
	if len(b.stack) > 1 {
		return "", b.stack[len(b.stack)-1].pos
	}
	t := b.top()
	alts := append(t.alts, joinAtoms(t.cur))
	return strings.Join(alts, "|"), -1
}

// byteMatcher runs a translated pattern against keys taken as bytes.
type byteMatcher struct {
	re *regexp.Regexp
	// endSensitive: the translation is exact only for keys that do not end
	// in a newline (PCRE's $ and \Z also match before a final newline).
	endSensitive bool
}

// isASCII reports whether s has no byte above 0x7f (latin1 and unLatin1
// leave such strings as they are).
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// latin1 turns each byte of s into one rune, so that the Go engine steps
// through the key byte by byte.
func latin1(s string) string {
	if isASCII(s) {
		return s
	}
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

// unLatin1 undoes latin1.
func unLatin1(s string) string {
	if isASCII(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

// match runs the matcher; groups holds the submatch texts (index 0 is the
// whole match; "" for a group that did not take part).
func (m *byteMatcher) match(key string) (bool, []string, error) {
	if m.endSensitive && strings.HasSuffix(key, "\n") {
		return false, nil, fmt.Errorf("cannot match a key that ends in a newline against a pattern with $, \\Z or multi-line ^")
	}
	k := latin1(key)
	loc := m.re.FindStringSubmatchIndex(k)
	if loc == nil {
		return false, nil, nil
	}
	groups := make([]string, len(loc)/2)
	for i := range groups {
		if loc[2*i] >= 0 {
			groups[i] = unLatin1(k[loc[2*i]:loc[2*i+1]])
		}
	}
	return true, groups, nil
}
