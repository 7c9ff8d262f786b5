package maps

// Table types without a file of their own: inline:{key=value, ...},
// static:value, unix:passwd.byname and unix:group.byname, and the proxy:
// prefix (which opens the table it names directly: postdove has no
// proxymap daemon to go through).

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

func init() {
	Register("inline", openInline)
	Register("static", openStatic)
	Register("unix", openUnix)
	Register("proxy", func(name string, opts Options) (Table, error) {
		return Open(name, opts)
	})
}

// stripBraces removes one pair of surrounding braces and the whitespace
// inside them; ok is false when s is not braced.
func stripBraces(s string) (string, bool) {
	s = trimSpace(s)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return s, false
	}
	return trimSpace(s[1 : len(s)-1]), true
}

// splitInline splits the inside of inline:{...} at commas and whitespace,
// keeping {...} groups whole.
func splitInline(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		if c == ',' || isSpace(c) {
			i++
			continue
		}
		j := i
		if c == '{' {
			depth := 0
			for ; j < len(s); j++ {
				if s[j] == '{' {
					depth++
				} else if s[j] == '}' {
					depth--
					if depth == 0 {
						j++
						break
					}
				}
			}
			if depth != 0 {
				return nil, fmt.Errorf("unbalanced '{'")
			}
		} else {
			for j < len(s) && s[j] != ',' && !isSpace(s[j]) {
				j++
			}
		}
		out = append(out, s[i:j])
		i = j
	}
	return out, nil
}

func openInline(name string, opts Options) (Table, error) {
	spec := "inline:" + name
	need := "; need \"inline:{name=value...}\""
	inner, ok := stripBraces(name)
	if !ok {
		return nil, fmt.Errorf("bad syntax: %q%s", spec, need)
	}
	elems, err := splitInline(inner)
	if err != nil {
		return nil, fmt.Errorf("%v: %q%s", err, spec, need)
	}
	t := &textTable{m: map[string]string{}, fold: opts.FoldCase}
	for _, e := range elems {
		if in, braced := stripBraces(e); braced {
			e = in
		}
		eq := strings.IndexByte(e, '=')
		if eq < 0 {
			return nil, fmt.Errorf("missing '=' after attribute name: %q%s", spec, need)
		}
		k, v := trimSpace(e[:eq]), trimSpace(e[eq+1:])
		if k == "" {
			return nil, fmt.Errorf("missing attribute name: %q%s", spec, need)
		}
		if opts.FoldCase {
			k = foldString(k)
		}
		if _, dup := t.m[k]; !dup {
			t.order = append(t.order, k)
		}
		t.m[k] = v
	}
	return t, nil
}

type staticTable string

func (t staticTable) Lookup(string) (string, bool, error) { return string(t), true, nil }
func (t staticTable) Close() error                        { return nil }

func openStatic(name string, opts Options) (Table, error) {
	if in, ok := stripBraces(name); ok {
		name = in
	}
	return staticTable(name), nil
}

// unixTable looks names up in /etc/passwd or /etc/group; the value is the
// whole entry, as getpwnam/getgrnam would give it.
type unixTable struct{ file string }

func (t unixTable) Lookup(key string) (string, bool, error) {
	f, err := os.Open(t.file)
	if err != nil {
		return "", false, openError(t.file, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, ':'); i > 0 && line[:i] == key {
			return line, true, nil
		}
	}
	return "", false, sc.Err()
}

func (t unixTable) Close() error { return nil }

func openUnix(name string, opts Options) (Table, error) {
	switch name {
	case "passwd.byname":
		return unixTable{file: "/etc/passwd"}, nil
	case "group.byname":
		return unixTable{file: "/etc/group"}, nil
	}
	return nil, fmt.Errorf("unknown table: unix:%s", name)
}
