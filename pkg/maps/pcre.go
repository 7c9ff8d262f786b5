package maps

// pcre:FILE (pcre_table(5)): Perl-compatible regular expressions. Postfix
// runs PCRE2 in byte mode with the C locale's character tables; postdove
// translates each pattern into an equivalent Go pattern. A construct Go's
// engine cannot reproduce exactly (backreferences, lookaround, atomic
// groups, possessive quantifiers, recursion, conditionals, \K, \R, Unicode
// properties, ...) is refused: the table does not open, and the error names
// the file, line, offset and construct. Nothing is approximated.

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

func init() {
	Register("pcre", func(name string, opts Options) (Table, error) {
		return openPatternTable(name, opts, pcreDialect, compilePCRESpec)
	})
}

var pcreDialect = &patDialect{
	name:          "pcre",
	flags:         "imsxAEU",
	obsoleteFlags: "X",
	noCloseAction: "ignoring",
	zeroIndexMsg:  "out of range",
}

// pcreFlags is the option state while scanning a pattern.
type pcreFlags struct {
	icase, multiline, dotall, extended, ungreedy, dollarEndOnly bool
}

func compilePCRESpec(p patSpec) (*byteMatcher, int, *reError) {
	f := pcreFlags{icase: true}
	anchored := false
	for i := 0; i < len(p.flags); i++ {
		switch p.flags[i] {
		case 'i':
			f.icase = !f.icase
		case 'm':
			f.multiline = true
		case 's':
			f.dotall = true
		case 'x':
			f.extended = true
		case 'A':
			anchored = true
		case 'E':
			f.dollarEndOnly = true
		case 'U':
			f.ungreedy = true
		}
	}
	if len(p.pattern) > 65535 {
		return nil, 0, &reError{msg: "regular expression is too large", offset: len(p.pattern)}
	}
	src, nsub, endSensitive, err := translatePCRE(p.pattern, f)
	if err != nil {
		return nil, 0, err
	}
	if anchored {
		src = `\A(?:` + src + `)`
	}
	parsed, cerr := syntax.Parse(src, syntax.Perl)
	if cerr != nil {
		return nil, 0, unsupportedAt(0, "pattern too large for postdove's engine")
	}
	if emptyRepeatedCapture(parsed) {
		return nil, 0, unsupportedAt(0, "a repeated group that can match the empty string and holds a capturing group (PCRE and Go report different captures)")
	}
	re, cerr := regexp.Compile(src)
	if cerr != nil {
		return nil, 0, unsupportedAt(0, "pattern too large for postdove's engine")
	}
	return &byteMatcher{re: re, endSensitive: endSensitive}, nsub, nil
}

// pcreScanner holds the state of one translation.
type pcreScanner struct {
	pat          string
	i            int
	f            pcreFlags
	b            *reBuilder
	endSensitive bool
}

func (s *pcreScanner) errorf(off int, format string, a ...any) *reError {
	return &reError{msg: fmt.Sprintf(format, a...), offset: off}
}

func (s *pcreScanner) literal(c byte) {
	set := setOf(c)
	if s.f.icase {
		set = set.foldASCII()
	}
	s.b.atom(set.goClass(), true)
}

func (s *pcreScanner) class(set byteSet) {
	s.b.atom(set.goClass(), true)
}

// translatePCRE turns a PCRE2 pattern into a Go pattern, or refuses it.
func translatePCRE(pat string, f pcreFlags) (string, int, bool, *reError) {
	s := &pcreScanner{pat: pat, f: f, b: newBuilder()}
	for s.i < len(pat) {
		if err := s.step(); err != nil {
			return "", 0, false, err
		}
	}
	out, open := s.b.finish()
	if open >= 0 {
		return "", 0, false, s.errorf(len(pat), "missing closing parenthesis")
	}
	return out, s.b.groups, s.endSensitive, nil
}

func (s *pcreScanner) step() *reError {
	c := s.pat[s.i]
	start := s.i
	if s.f.extended {
		if isSpace(c) {
			s.i++
			return nil
		}
		if c == '#' {
			for s.i < len(s.pat) && s.pat[s.i] != '\n' {
				s.i++
			}
			return nil
		}
	}
	switch c {
	case '\\':
		return s.escape()
	case '[':
		set, err := s.bracket()
		if err != nil {
			return err
		}
		s.class(set)
	case '.':
		if s.f.dotall {
			s.class(setAll)
		} else {
			s.class(setNL.negate())
		}
		s.i++
	case '^':
		if s.f.multiline {
			s.b.atom(`(?m:^)`, false)
			s.endSensitive = true
		} else {
			s.b.atom(`\A`, false)
		}
		s.i++
	case '$':
		switch {
		case s.f.multiline:
			s.b.atom(`(?m:$)`, false)
		case s.f.dollarEndOnly:
			s.b.atom(`\z`, false)
		default:
			s.b.atom(`\z`, false)
			s.endSensitive = true
		}
		s.i++
	case '|':
		s.b.alternate()
		s.i++
	case '(':
		return s.group()
	case ')':
		saved, ok := s.b.closeGroup()
		if !ok {
			return s.errorf(start, "unmatched closing parenthesis")
		}
		s.f = saved.(pcreFlags)
		s.i++
	case '*', '+', '?':
		s.i++
		return s.quantifier(string(c), start)
	case '{':
		if q, n, ok := pcreInterval(s.pat, s.i); ok {
			s.i = n
			return s.quantifier(q, start)
		}
		s.literal(c)
		s.i++
	default:
		s.literal(c)
		s.i++
	}
	return nil
}

// pcreInterval recognises {n}, {n,}, {n,m} at pat[i]; PCRE2 10.42 takes
// anything else as literal text.
func pcreInterval(pat string, i int) (string, int, bool) {
	j := i + 1
	digits := func() string {
		k := j
		for j < len(pat) && pat[j] >= '0' && pat[j] <= '9' {
			j++
		}
		return pat[k:j]
	}
	lo := digits()
	if lo == "" {
		return "", 0, false
	}
	hi := lo
	if j < len(pat) && pat[j] == ',' {
		j++
		hi = digits()
	}
	if j >= len(pat) || pat[j] != '}' {
		return "", 0, false
	}
	if hi == "" {
		return "{" + lo + ",}", j + 1, true
	}
	return "{" + lo + "," + hi + "}", j + 1, true
}

// quantifier applies q (already consumed) plus any lazy/possessive suffix.
func (s *pcreScanner) quantifier(q string, start int) *reError {
	a := s.b.last()
	if a == nil || !a.repeatable {
		if a != nil {
			return unsupportedAt(start, "quantifier on an assertion")
		}
		return s.errorf(start, "quantifier does not follow a repeatable item")
	}
	if strings.HasPrefix(q, "{") {
		body := strings.Trim(q, "{}")
		lo, hi, _ := strings.Cut(body, ",")
		nlo, err1 := strconv.Atoi(lo)
		nhi := nlo
		var err2 error
		if hi != "" {
			nhi, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || nlo > 65535 || nhi > 65535 {
			return s.errorf(start, "number too big in {} quantifier")
		}
		if strings.Contains(body, ",") && hi != "" && nhi < nlo {
			return s.errorf(start, "numbers out of order in {} quantifier")
		}
		if nlo > 1000 || nhi > 1000 {
			return unsupportedAt(start, "repeat count above 1000")
		}
	}
	lazy := s.f.ungreedy
	if s.i < len(s.pat) {
		switch s.pat[s.i] {
		case '?':
			lazy = !lazy
			s.i++
		case '+':
			return unsupportedAt(start, "possessive quantifier "+q+"+")
		}
	}
	if lazy {
		q += "?"
	}
	s.b.quantify(q)
	return nil
}

// group handles everything that starts with '('.
func (s *pcreScanner) group() *reError {
	start := s.i
	rest := s.pat[s.i+1:]
	if strings.HasPrefix(rest, "*") {
		return unsupportedAt(start, "backtracking control verb or option setting (*...)")
	}
	if !strings.HasPrefix(rest, "?") {
		s.b.openGroup(true, s.f, start)
		s.i++
		return nil
	}
	// "(?"
	s.i += 2
	if s.i >= len(s.pat) {
		return s.errorf(start, "missing closing parenthesis")
	}
	c := s.pat[s.i]
	switch {
	case c == ':':
		s.b.openGroup(false, s.f, start)
		s.i++
		return nil
	case c == '#':
		end := strings.IndexByte(s.pat[s.i:], ')')
		if end < 0 {
			return s.errorf(len(s.pat), "missing ) at end of (?# comment")
		}
		s.i += end + 1
		return nil
	case strings.HasPrefix(s.pat[s.i:], "<=") || strings.HasPrefix(s.pat[s.i:], "<!"):
		return unsupportedAt(start, "lookbehind assertion (?"+s.pat[s.i:s.i+2])
	case c == '=' || c == '!':
		return unsupportedAt(start, "lookahead assertion (?"+string(c))
	case c == '>':
		return unsupportedAt(start, "atomic group (?>")
	case c == '|':
		return unsupportedAt(start, "branch reset group (?|")
	case c == '(':
		return unsupportedAt(start, "conditional group (?(")
	case c == '<' || c == '\'' || strings.HasPrefix(s.pat[s.i:], "P<"):
		if c == 'P' {
			s.i++
		}
		closer := byte('>')
		if s.pat[s.i] == '\'' {
			closer = '\''
		}
		j := s.i + 1
		for j < len(s.pat) && (isAlnum(s.pat[j]) || s.pat[j] == '_') {
			j++
		}
		if j == s.i+1 || j >= len(s.pat) || s.pat[j] != closer || s.pat[s.i+1] >= '0' && s.pat[s.i+1] <= '9' {
			return s.errorf(s.i, "syntax error in subpattern name (missing terminator?)")
		}
		s.i = j + 1
		s.b.openGroup(true, s.f, start)
		return nil
	case c == 'P' || c == 'R' || c == '&' || c == '+' || c == '-' && s.i+1 < len(s.pat) && s.pat[s.i+1] >= '0' && s.pat[s.i+1] <= '9' || c >= '0' && c <= '9':
		return unsupportedAt(start, "recursion or subroutine call (?"+string(c))
	case c == 'C':
		return unsupportedAt(start, "callout (?C")
	}
	// Option setting: (?imsxU-imsxU) or (?imsxU-imsxU: ... )
	nf := s.f
	on := true
	for s.i < len(s.pat) {
		c := s.pat[s.i]
		switch c {
		case 'i':
			nf.icase = on
		case 'm':
			nf.multiline = on
		case 's':
			nf.dotall = on
		case 'x':
			if on && s.i+1 < len(s.pat) && s.pat[s.i+1] == 'x' {
				return unsupportedAt(start, "option (?xx")
			}
			nf.extended = on
		case 'U':
			nf.ungreedy = on
		case '-':
			if !on {
				return s.errorf(s.i, "unrecognized character after (? or (?-")
			}
			on = false
		case ')':
			s.f = nf
			s.i++
			return nil
		case ':':
			s.b.openGroup(false, s.f, start)
			s.f = nf
			s.i++
			return nil
		case 'J', 'n', '^':
			return unsupportedAt(start, "option (?"+string(c))
		default:
			return s.errorf(s.i, "unrecognized character after (? or (?-")
		}
		s.i++
	}
	return s.errorf(len(s.pat), "missing closing parenthesis")
}

// escapeClass returns the class for \d \D \w \W \s \S \h \H \v \V \N.
func escapeClass(e byte) (byteSet, bool) {
	switch e {
	case 'd':
		return setDigit, true
	case 'D':
		return setDigit.negate(), true
	case 'w':
		return setWord, true
	case 'W':
		return setWord.negate(), true
	case 's':
		return setSpaceC, true
	case 'S':
		return setSpaceC.negate(), true
	case 'h':
		return setOf('\t', ' ', 0xa0), true
	case 'H':
		return setOf('\t', ' ', 0xa0).negate(), true
	case 'v':
		return union(setRange('\n', '\r'), setOf(0x85)), true
	case 'V':
		return union(setRange('\n', '\r'), setOf(0x85)).negate(), true
	}
	return byteSet{}, false
}

// escapeChar decodes a backslash escape that stands for one byte, at
// pat[i] (just after the backslash). n is the index after it.
func escapeChar(pat string, i int) (byte, int, *reError, bool) {
	e := pat[i]
	switch e {
	case 'a':
		return 7, i + 1, nil, true
	case 'e':
		return 0x1b, i + 1, nil, true
	case 'f':
		return '\f', i + 1, nil, true
	case 'n':
		return '\n', i + 1, nil, true
	case 'r':
		return '\r', i + 1, nil, true
	case 't':
		return '\t', i + 1, nil, true
	case '0':
		j := i + 1
		for j < len(pat) && j < i+3 && pat[j] >= '0' && pat[j] <= '7' {
			j++
		}
		v, _ := strconv.ParseUint(pat[i:j], 8, 16)
		return byte(v), j, nil, true
	case 'o':
		if i+1 >= len(pat) || pat[i+1] != '{' {
			return 0, 0, &reError{msg: "missing opening brace after \\o", offset: i + 1}, true
		}
		end := strings.IndexByte(pat[i:], '}')
		if end < 0 {
			return 0, 0, &reError{msg: "missing closing brace", offset: i}, true
		}
		v, err := strconv.ParseUint(pat[i+2:i+end], 8, 32)
		if err != nil || v > 255 {
			return 0, 0, &reError{msg: "character code point value in \\x{} or \\o{} is too large", offset: i}, true
		}
		return byte(v), i + end + 1, nil, true
	case 'x':
		if i+1 < len(pat) && pat[i+1] == '{' {
			end := strings.IndexByte(pat[i:], '}')
			if end < 0 {
				return 0, 0, &reError{msg: "missing closing brace", offset: i}, true
			}
			v, err := strconv.ParseUint(pat[i+2:i+end], 16, 32)
			if err != nil || v > 255 {
				return 0, 0, &reError{msg: "character code point value in \\x{} or \\o{} is too large", offset: i}, true
			}
			return byte(v), i + end + 1, nil, true
		}
		j := i + 1
		for j < len(pat) && j < i+3 && strings.IndexByte("0123456789abcdefABCDEF", pat[j]) >= 0 {
			j++
		}
		if j == i+1 {
			return 0, j, nil, true
		}
		v, _ := strconv.ParseUint(pat[i+1:j], 16, 8)
		return byte(v), j, nil, true
	case 'c':
		if i+1 >= len(pat) || pat[i+1] < 32 || pat[i+1] > 126 {
			return 0, 0, &reError{msg: "\\c must be followed by a printable ASCII character", offset: i}, true
		}
		x := pat[i+1]
		if x >= 'a' && x <= 'z' {
			x -= 32
		}
		return x ^ 0x40, i + 2, nil, true
	}
	if !isAlnum(e) {
		return e, i + 1, nil, true
	}
	return 0, 0, nil, false
}

// escape handles a backslash outside a character class.
func (s *pcreScanner) escape() *reError {
	start := s.i
	if s.i+1 >= len(s.pat) {
		return s.errorf(s.i+1, "\\ at end of pattern")
	}
	e := s.pat[s.i+1]
	if set, ok := escapeClass(e); ok {
		s.class(set)
		s.i += 2
		return nil
	}
	switch e {
	case 'N':
		if s.i+2 < len(s.pat) && s.pat[s.i+2] == '{' {
			return unsupportedAt(start, "\\N{...}")
		}
		s.class(setNL.negate())
		s.i += 2
		return nil
	case 'C':
		s.class(setAll)
		s.i += 2
		return nil
	case 'b':
		s.b.atom(`\b`, false)
	case 'B':
		s.b.atom(`\B`, false)
	case 'A', 'G':
		// One match attempt from offset 0: \G is the start of the subject.
		s.b.atom(`\A`, false)
	case 'z':
		s.b.atom(`\z`, false)
	case 'Z':
		s.b.atom(`\z`, false)
		s.endSensitive = true
	case 'Q':
		s.i += 2
		end := strings.Index(s.pat[s.i:], `\E`)
		text := s.pat[s.i:]
		if end >= 0 {
			text = s.pat[s.i : s.i+end]
			s.i += end + 2
		} else {
			s.i = len(s.pat)
		}
		for k := 0; k < len(text); k++ {
			s.literal(text[k])
		}
		return nil
	case 'E':
		// \E without \Q is ignored.
	case 'K':
		return unsupportedAt(start, "\\K (reset match start)")
	case 'R':
		return unsupportedAt(start, "\\R (newline sequence)")
	case 'X':
		return unsupportedAt(start, "\\X (extended grapheme cluster)")
	case 'p', 'P':
		return unsupportedAt(start, "Unicode property \\"+string(e))
	case 'g', 'k':
		return unsupportedAt(start, "backreference or subroutine call \\"+string(e))
	case '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return unsupportedAt(start, "backreference or octal escape \\"+string(e))
	default:
		c, n, err, ok := escapeChar(s.pat, s.i+1)
		if err != nil {
			return err
		}
		if !ok {
			return s.errorf(s.i+1, "unrecognized character follows \\")
		}
		s.literal(c)
		s.i = n
		return nil
	}
	s.i += 2
	return nil
}

// bracket parses a character class at pat[i] == '['.
func (s *pcreScanner) bracket() (byteSet, *reError) {
	start := s.i
	pat := s.pat
	i := s.i + 1
	neg := false
	if i < len(pat) && pat[i] == '^' {
		neg = true
		i++
	}
	var set byteSet
	first := true
	missing := s.errorf(len(pat), "missing terminating ] for character class")
	// item reads one class item: a byte (isChar) or a set.
	item := func() (byte, byteSet, bool, *reError) {
		if i >= len(pat) {
			return 0, set, false, missing
		}
		c := pat[i]
		if c == '[' && i+1 < len(pat) && (pat[i+1] == ':' || pat[i+1] == '.' || pat[i+1] == '=') {
			kind := pat[i+1]
			end := strings.Index(pat[i+2:], string(kind)+"]")
			if end >= 0 && !strings.ContainsAny(pat[i+2:i+2+end], "]\\") {
				if kind != ':' {
					return 0, set, false, s.errorf(i, "POSIX collating elements are not supported")
				}
				name := pat[i+2 : i+2+end]
				i += 2 + end + 2
				negc := strings.HasPrefix(name, "^")
				name = strings.TrimPrefix(name, "^")
				cls, ok := posixClasses[name]
				switch name {
				case "word":
					cls, ok = setWord, true
				case "ascii":
					cls, ok = setASCII, true
				}
				if !ok {
					return 0, set, false, s.errorf(i, "unknown POSIX class name")
				}
				if negc {
					cls = cls.negate()
				}
				return 0, cls, false, nil
			}
		}
		if c != '\\' {
			i++
			return c, set, true, nil
		}
		if i+1 >= len(pat) {
			return 0, set, false, s.errorf(i+1, "\\ at end of pattern")
		}
		e := pat[i+1]
		if cls, ok := escapeClass(e); ok {
			i += 2
			return 0, cls, false, nil
		}
		switch e {
		case 'b':
			i += 2
			return 8, set, true, nil
		case 'Q', 'E':
			return 0, set, false, unsupportedAt(i, "\\Q...\\E inside a character class")
		case 'N', 'R', 'X', 'B':
			return 0, set, false, s.errorf(i+1, "escape sequence is invalid in character class")
		case 'p', 'P':
			return 0, set, false, unsupportedAt(i, "Unicode property \\"+string(e))
		case '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return 0, set, false, unsupportedAt(i, "octal escape \\"+string(e)+" in a character class")
		}
		b, n, err, ok := escapeChar(pat, i+1)
		if err != nil {
			return 0, set, false, err
		}
		if !ok {
			return 0, set, false, s.errorf(i+1, "unrecognized character follows \\")
		}
		i = n
		return b, set, true, nil
	}
	for {
		if i >= len(pat) {
			return set, missing
		}
		if pat[i] == ']' && !first {
			i++
			break
		}
		first = false
		lo, cls, isChar, err := item()
		if err != nil {
			return set, err
		}
		if !isChar {
			set.addSet(cls)
			if i+1 < len(pat) && pat[i] == '-' && pat[i+1] != ']' {
				return set, s.errorf(i, "invalid range in character class")
			}
			continue
		}
		if i+1 < len(pat) && pat[i] == '-' && pat[i+1] != ']' {
			save := i
			i++
			hi, _, hiChar, err := item()
			if err != nil {
				return set, err
			}
			if !hiChar {
				return set, s.errorf(save, "invalid range in character class")
			}
			if hi < lo {
				return set, s.errorf(i-1, "range out of order in character class")
			}
			set.addRange(lo, hi)
			continue
		}
		set.add(lo)
	}
	if s.f.icase {
		set = set.foldASCII()
	}
	if neg {
		set = set.negate()
	}
	_ = start
	s.i = i
	return set, nil
}

// nullable reports whether re can match the empty string.
func nullable(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune) == 0
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL, syntax.OpNoMatch:
		return false
	case syntax.OpCapture, syntax.OpPlus:
		return nullable(re.Sub[0])
	case syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpRepeat:
		return re.Min == 0 || nullable(re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !nullable(s) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if nullable(s) {
				return true
			}
		}
		return false
	}
	return true // empty match, anchors, word boundaries
}

func hasCapture(re *syntax.Regexp) bool {
	if re.Op == syntax.OpCapture {
		return true
	}
	for _, s := range re.Sub {
		if hasCapture(s) {
			return true
		}
	}
	return false
}

// emptyRepeatedCapture finds (x*)* style patterns: an unbounded or multiple
// repetition whose body can match the empty string and captures. PCRE
// records the last, empty, iteration; Go's engine does not.
func emptyRepeatedCapture(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpStar, syntax.OpPlus:
		if nullable(re.Sub[0]) && hasCapture(re.Sub[0]) {
			return true
		}
	case syntax.OpRepeat:
		if (re.Max < 0 || re.Max > 1) && nullable(re.Sub[0]) && hasCapture(re.Sub[0]) {
			return true
		}
	}
	for _, s := range re.Sub {
		if emptyRepeatedCapture(s) {
			return true
		}
	}
	return false
}
