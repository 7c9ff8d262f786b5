package maps

// The table engine shared by regexp: and pcre: files: rules tried in file
// order, first match wins, IF/ENDIF blocks skipped as a whole when their
// pattern does not match.

import (
	"errors"
	"fmt"
)

type patCompiled struct {
	m      *byteMatcher
	negate bool
}

// matches reports whether key satisfies the pattern (negation applied);
// groups are set for a positive pattern that matched.
func (p patCompiled) matches(key string) (bool, []string, error) {
	ok, groups, err := p.m.match(key)
	if err != nil {
		return false, nil, err
	}
	if p.negate {
		return !ok, nil, nil
	}
	return ok, groups, nil
}

type patEntry struct {
	op     int
	first  patCompiled
	second *patCompiled
	tmpl   template
	jump   int // opIf: index of the rule after the matching ENDIF
}

// patTable is an opened regexp: or pcre: table.
type patTable struct {
	typ, name string
	rules     []patEntry
	warn      func(string)
}

type patCompiler func(patSpec) (*byteMatcher, int, *reError)

// compileErrorText is the warning for an invalid pattern, in the original
// library's wording.
func (d *patDialect) compileErrorText(prefix string, e *reError) string {
	if d.name == "pcre" {
		return fmt.Sprintf("%s: error in regex at offset %d: %s", prefix, e.offset, e.msg)
	}
	return fmt.Sprintf("%s: %s", prefix, e.msg)
}

func openPatternTable(name string, opts Options, d *patDialect, compile patCompiler) (Table, error) {
	warn := warnFunc(opts)
	lines, err := inlineRules(name)
	if lines == nil && err == nil {
		lines, err = readTableFile(name, warn)
	}
	if err != nil {
		var re *readError
		if errors.As(err, &re) {
			// Postfix reads a directory as an empty regexp/pcre table.
			return &patTable{typ: d.name, name: name, warn: warn}, nil
		}
		return nil, err
	}
	t := &patTable{typ: d.name, name: name, warn: warn}
	type openIf struct{ idx, lineno int }
	var ifs []openIf
	for _, ln := range lines {
		r, ok := d.parseRule(name, ln, len(ifs), warn)
		if !ok {
			continue
		}
		prefix := fmt.Sprintf("%s map %s, line %d", d.name, name, ln.lineno)
		comp := func(p patSpec) (patCompiled, int, bool, error) {
			m, nsub, cerr := compile(p)
			if cerr != nil {
				if cerr.unsupported {
					return patCompiled{}, 0, false, fmt.Errorf("%s: unsupported regular expression construct at offset %d: %s: postdove cannot match it the way %s does", prefix, cerr.offset, cerr.msg, d.libraryName())
				}
				warn(d.compileErrorText(prefix, cerr))
				return patCompiled{}, 0, false, nil
			}
			return patCompiled{m: m, negate: p.negate}, nsub, true, nil
		}
		switch r.op {
		case opIf:
			pc, _, ok, err := comp(r.first)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			ifs = append(ifs, openIf{idx: len(t.rules), lineno: ln.lineno})
			t.rules = append(t.rules, patEntry{op: opIf, first: pc})
		case opEndif:
			top := ifs[len(ifs)-1]
			ifs = ifs[:len(ifs)-1]
			t.rules = append(t.rules, patEntry{op: opEndif})
			t.rules[top.idx].jump = len(t.rules)
		case opMatch:
			tmpl, ok := parseTemplate(r.value, prefix, d.zeroIndexMsg, warn)
			if !ok {
				continue
			}
			if r.first.negate && tmpl.hasRefs() {
				warn(prefix + ": $number found in negative match replacement text: skipping this rule")
				continue
			}
			pc, nsub, ok, err := comp(r.first)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			e := patEntry{op: opMatch, first: pc, tmpl: tmpl}
			if r.second != nil {
				pc2, _, ok, err := comp(*r.second)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
				e.second = &pc2
			}
			if tmpl.exceeds(nsub) {
				warn(fmt.Sprintf("%s: out of range replacement index \"%d\": skipping this rule", prefix, tmpl.max))
				continue
			}
			t.rules = append(t.rules, e)
		}
	}
	for k := len(ifs) - 1; k >= 0; k-- {
		warn(fmt.Sprintf("%s map %s, line %d: IF has no matching ENDIF", d.name, name, ifs[k].lineno))
		t.rules[ifs[k].idx].jump = len(t.rules)
	}
	return t, nil
}

func (d *patDialect) libraryName() string {
	if d.name == "pcre" {
		return "PCRE"
	}
	return "the C library's regex"
}

// Lookup returns the result of the first rule that matches key. Keys are
// matched as given (no case folding: the patterns carry their own case
// flags).
func (t *patTable) Lookup(key string) (string, bool, error) {
	for i := 0; i < len(t.rules); {
		r := &t.rules[i]
		switch r.op {
		case opIf:
			ok, _, err := r.first.matches(key)
			if err != nil {
				return "", false, fmt.Errorf("%s: %w", t.name, err)
			}
			if !ok {
				i = r.jump
				continue
			}
		case opMatch:
			ok, groups, err := r.first.matches(key)
			if err == nil && ok && r.second != nil {
				ok, _, err = r.second.matches(key)
			}
			if err != nil {
				return "", false, fmt.Errorf("%s: %w", t.name, err)
			}
			if ok {
				v := r.tmpl.expand(func(n int) string {
					if n < len(groups) {
						return groups[n]
					}
					return ""
				})
				if v == "" {
					// Postfix's dictionary layer complains about an empty result
					// (and still returns it).
					t.warn(fmt.Sprintf("table %s:%s: key %s: empty string result is not allowed", t.typ, t.name, key))
					t.warn(fmt.Sprintf("table %s:%s should return NO RESULT in case of NOT FOUND", t.typ, t.name))
				}
				return v, true, nil
			}
		}
		i++
	}
	return "", false, nil
}

// Close releases nothing: the rules live in memory.
func (t *patTable) Close() error { return nil }

// inlineRules are the rules of an inline pattern table,
// "regexp:{{/pattern/ result}, ...}" (nil when name is a file).
func inlineRules(name string) ([]logicalLine, error) {
	inner, ok := stripBraces(name)
	if !ok {
		return nil, nil
	}
	elems, err := splitInline(inner)
	if err != nil {
		return nil, fmt.Errorf("%v: %q", err, name)
	}
	lines := []logicalLine{}
	for i, e := range elems {
		if in, braced := stripBraces(e); braced {
			e = in
		}
		lines = append(lines, logicalLine{text: trimSpace(e), lineno: i + 1})
	}
	return lines, nil
}
