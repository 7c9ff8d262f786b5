package maps

// regexp:FILE (regexp_table(5)): POSIX regular expressions, matched the way
// Postfix's regexp table uses the C library's regcomp/regexec in the C
// locale: extended syntax by default (flag x toggles to basic syntax),
// case-insensitive by default (flag i toggles), single-line by default
// (flag m toggles REG_NEWLINE), leftmost-longest matching.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

func init() {
	Register("regexp", func(name string, opts Options) (Table, error) {
		return openPatternTable(name, opts, regexpDialect, compileRegexpSpec)
	})
}

var regexpDialect = &patDialect{
	name:          "regexp",
	flags:         "imx",
	noCloseAction: "skipping",
	zeroIndexMsg:  "out-of-range",
	twoPatterns:   true,
}

// reError is a pattern the translator refused. unsupported marks a valid
// pattern whose meaning postdove cannot reproduce (the table then refuses to
// open); otherwise the pattern is invalid, as the original library would
// also say, and the rule is skipped.
type reError struct {
	msg         string
	offset      int
	unsupported bool
}

func (e *reError) Error() string { return e.msg }

func unsupportedAt(off int, what string) *reError {
	return &reError{msg: what, offset: off, unsupported: true}
}

// compileRegexpSpec compiles one /pattern/flags of a regexp: table.
func compileRegexpSpec(p patSpec) (*byteMatcher, int, *reError) {
	icase, ext, newline := true, true, false
	for i := 0; i < len(p.flags); i++ {
		switch p.flags[i] {
		case 'i':
			icase = !icase
		case 'x':
			ext = !ext
		case 'm':
			newline = !newline
		}
	}
	src, nsub, err := translatePOSIX(p.pattern, ext, icase, newline)
	if err != nil {
		return nil, 0, err
	}
	re, cerr := regexp.Compile(src)
	if cerr != nil {
		return nil, 0, &reError{msg: "Regular expression too big", unsupported: strings.Contains(cerr.Error(), "too large")}
	}
	re.Longest()
	return &byteMatcher{re: re}, nsub, nil
}

// translatePOSIX turns a POSIX (GNU C library) regular expression into a Go
// pattern. Error texts are the C library's regerror() wording.
func translatePOSIX(pat string, ext, icase, newline bool) (string, int, *reError) {
	b := newBuilder()
	lit := func(c byte) {
		s := setOf(c)
		if icase {
			s = s.foldASCII()
		}
		b.atom(s.goClass(), true)
	}
	// atStart: a BRE '*' or '^' here is special (start of RE, after \( or \|).
	atStart := true
	for i := 0; i < len(pat); {
		c := pat[i]
		start := atStart
		atStart = false
		switch {
		case c == '\\':
			if i+1 >= len(pat) {
				return "", 0, &reError{msg: "Trailing backslash", offset: i}
			}
			e := pat[i+1]
			i += 2
			if !ext {
				switch e {
				case '(':
					b.openGroup(true, nil, i-2)
					atStart = true
					continue
				case ')':
					if _, ok := b.closeGroup(); !ok {
						return "", 0, &reError{msg: "Unmatched ) or \\)", offset: i - 2}
					}
					continue
				case '|':
					b.alternate()
					atStart = true
					continue
				case '{':
					n, err := posixInterval(pat, i, b, true)
					if err != nil {
						return "", 0, err
					}
					i = n
					continue
				case '+', '?':
					if a := b.last(); a == nil || !a.repeatable {
						if start || a == nil {
							lit(e)
							continue
						}
						return "", 0, &reError{msg: "Invalid preceding regular expression", offset: i - 2}
					}
					b.quantify(string(e))
					continue
				}
			}
			switch e {
			case 'w':
				b.atom(setWord.goClass(), true)
			case 'W':
				b.atom(setWord.negate().goClass(), true)
			case 's':
				b.atom(setSpaceC.goClass(), true)
			case 'S':
				b.atom(setSpaceC.negate().goClass(), true)
			case 'b':
				b.atom(`\b`, false)
			case 'B':
				b.atom(`\B`, false)
			case '`':
				b.atom(`\A`, false)
			case '\'':
				b.atom(`\z`, false)
			case '<', '>':
				return "", 0, unsupportedAt(i-2, fmt.Sprintf("word-%s anchor \\%c", map[byte]string{'<': "start", '>': "end"}[e], e))
			case '1', '2', '3', '4', '5', '6', '7', '8', '9':
				return "", 0, unsupportedAt(i-2, fmt.Sprintf("backreference \\%c", e))
			default:
				lit(e)
			}
		case c == '[':
			set, n, err := posixBracket(pat, i, icase, newline)
			if err != nil {
				return "", 0, err
			}
			b.atom(set.goClass(), true)
			i = n
		case c == '.':
			s := setAll
			if newline {
				s = setNL.negate()
			}
			b.atom(s.goClass(), true)
			i++
		case ext && c == '(':
			b.openGroup(true, nil, i)
			i++
		case ext && c == ')':
			if _, ok := b.closeGroup(); !ok {
				return "", 0, &reError{msg: "Unmatched ) or \\)", offset: i}
			}
			i++
		case ext && c == '|':
			b.alternate()
			i++
		case c == '*' || ext && (c == '+' || c == '?'):
			a := b.last()
			if a == nil || !a.repeatable {
				if !ext && (start || a == nil) {
					lit(c)
					i++
					continue
				}
				return "", 0, &reError{msg: "Invalid preceding regular expression", offset: i}
			}
			b.quantify(string(c))
			i++
		case ext && c == '{':
			n, err := posixInterval(pat, i+1, b, false)
			if err != nil {
				return "", 0, err
			}
			i = n
		case c == '^' && (ext || start):
			if newline {
				b.atom(`(?m:^)`, false)
			} else {
				b.atom(`\A`, false)
			}
			i++
			atStart = !ext
		case c == '$' && (ext || i+1 == len(pat) || strings.HasPrefix(pat[i+1:], `\)`) || strings.HasPrefix(pat[i+1:], `\|`)):
			if newline {
				b.atom(`(?m:$)`, false)
			} else {
				b.atom(`\z`, false)
			}
			i++
		default:
			lit(c)
			i++
		}
	}
	out, open := b.finish()
	if open >= 0 {
		return "", 0, &reError{msg: "Unmatched ( or \\(", offset: open}
	}
	return out, b.groups, nil
}

// posixInterval parses "n}", "n,}", "n,m}" at pat[i:] (after the '{'; for
// basic syntax the closer is "\}") and applies it to the last atom.
func posixInterval(pat string, i int, b *reBuilder, basic bool) (int, *reError) {
	start := i
	num := func() (int, bool) {
		j := i
		for i < len(pat) && pat[i] >= '0' && pat[i] <= '9' {
			i++
		}
		if i == j {
			return -1, false
		}
		n, err := strconv.Atoi(pat[j:i])
		if err != nil || n > 32767 {
			return 1 << 30, true
		}
		return n, true
	}
	lo, okLo := num()
	hi := lo
	if i < len(pat) && pat[i] == ',' {
		i++
		var okHi bool
		hi, okHi = num()
		if !okHi {
			hi = -1
		}
	}
	closer := "}"
	if basic {
		closer = `\}`
	}
	if !strings.HasPrefix(pat[i:], closer) {
		if i >= len(pat) || basic && i+1 >= len(pat) {
			return 0, &reError{msg: "Unmatched \\{", offset: start}
		}
		return 0, &reError{msg: "Invalid content of \\{\\}", offset: start}
	}
	i += len(closer)
	if !okLo {
		lo = 0
	}
	if lo >= 1<<30 || hi >= 1<<30 {
		return 0, &reError{msg: "Regular expression too big", offset: start}
	}
	if hi >= 0 && hi < lo {
		return 0, &reError{msg: "Invalid content of \\{\\}", offset: start}
	}
	if lo > 1000 || hi > 1000 {
		return 0, unsupportedAt(start, "repeat count above 1000")
	}
	a := b.last()
	if a == nil || !a.repeatable {
		return 0, &reError{msg: "Invalid preceding regular expression", offset: start}
	}
	switch {
	case hi < 0:
		b.quantify(fmt.Sprintf("{%d,}", lo))
	case hi == lo:
		b.quantify(fmt.Sprintf("{%d}", lo))
	default:
		b.quantify(fmt.Sprintf("{%d,%d}", lo, hi))
	}
	return i, nil
}

// posixBracket parses a bracket expression starting at pat[i] == '['.
// Backslash is an ordinary character inside it.
func posixBracket(pat string, i int, icase, newline bool) (byteSet, int, *reError) {
	start := i
	unmatched := &reError{msg: "Unmatched [, [^, [:, [., or [=", offset: start}
	i++
	neg := false
	if i < len(pat) && pat[i] == '^' {
		neg = true
		i++
	}
	var set byteSet
	first := true
	// element reads one bracket element; class is set for [:name:].
	element := func() (byte, *byteSet, *reError) {
		if i >= len(pat) {
			return 0, nil, unmatched
		}
		if pat[i] == '[' && i+1 < len(pat) && (pat[i+1] == ':' || pat[i+1] == '=' || pat[i+1] == '.') {
			kind := pat[i+1]
			end := strings.Index(pat[i+2:], string(kind)+"]")
			if end < 0 {
				return 0, nil, unmatched
			}
			name := pat[i+2 : i+2+end]
			i += 2 + end + 2
			if kind == ':' {
				cls, ok := posixClasses[name]
				if !ok {
					return 0, nil, &reError{msg: "Invalid character class name", offset: start}
				}
				return 0, &cls, nil
			}
			if len(name) != 1 {
				return 0, nil, &reError{msg: "Invalid collation character", offset: start}
			}
			return name[0], nil, nil
		}
		c := pat[i]
		i++
		return c, nil, nil
	}
	for {
		if i >= len(pat) {
			return set, 0, unmatched
		}
		if pat[i] == ']' && !first {
			i++
			break
		}
		first = false
		lo, cls, err := element()
		if err != nil {
			return set, 0, err
		}
		if cls != nil {
			set.addSet(*cls)
			continue
		}
		if i+1 < len(pat) && pat[i] == '-' && pat[i+1] != ']' {
			i++
			hi, cls2, err := element()
			if err != nil {
				return set, 0, err
			}
			if cls2 != nil || hi < lo {
				return set, 0, &reError{msg: "Invalid range end", offset: start}
			}
			set.addRange(lo, hi)
			continue
		}
		set.add(lo)
	}
	if icase {
		set = set.foldASCII()
	}
	if neg {
		set = set.negate()
		if newline {
			set[0] &^= 1 << '\n'
		}
	}
	return set, i, nil
}
