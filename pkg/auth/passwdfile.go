package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Field is one extra field: key=value as a passdb or userdb returns it.
type Field struct{ Key, Value string }

// Entry is one line of a passwd-file:
// user:password:uid:gid:gecos:home:shell:extra_fields.
type Entry struct {
	User, Password, UID, GID, Gecos, Home, Shell string
	Extra                                        []Field
	Line                                         int
}

// PasswdFile is a parsed passwd-file: entries by user name, and the
// problems with the lines that were skipped ("FILE line N: ...").
type PasswdFile struct {
	Users    map[string]*Entry
	Problems []string
}

// ParsePasswdFile parses a Dovecot passwd-file; name is the file's path,
// for messages. Blank lines and lines starting with '#' are skipped; a
// line with a bad uid or gid is skipped and listed in Problems.
func ParsePasswdFile(name string, data []byte) *PasswdFile {
	pf := &PasswdFile{Users: map[string]*Entry{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		parts := strings.SplitN(line, ":", 8)
		e := &Entry{User: parts[0], Line: n}
		if e.User == "" {
			pf.Problems = append(pf.Problems, fmt.Sprintf("passwd-file %s line %d: Empty user name", name, n))
			continue
		}
		get := func(i int) string {
			if i < len(parts) {
				return parts[i]
			}
			return ""
		}
		e.Password, e.UID, e.GID, e.Gecos, e.Home, e.Shell = get(1), get(2), get(3), get(4), get(5), get(6)
		bad := ""
		for _, id := range []struct{ what, v string }{{"UID", e.UID}, {"GID", e.GID}} {
			if id.v != "" {
				if _, err := strconv.ParseUint(id.v, 10, 32); err != nil {
					bad = fmt.Sprintf("passwd-file %s line %d: User %s has invalid %s '%s'", name, n, e.User, id.what, id.v)
				}
			}
		}
		if bad != "" {
			pf.Problems = append(pf.Problems, bad)
			continue
		}
		e.Extra = ParseFields(get(7))
		if _, dup := pf.Users[e.User]; dup {
			pf.Problems = append(pf.Problems, fmt.Sprintf("passwd-file %s line %d: User %s exists more than once", name, n, e.User))
			continue
		}
		pf.Users[e.User] = e
	}
	if err := sc.Err(); err != nil {
		pf.Problems = append(pf.Problems, fmt.Sprintf("passwd-file %s line %d: %v", name, n+1, err))
	}
	return pf
}

// ParseFields parses space-separated extra fields: "key=value", or a bare
// "key" (as "nopassword"), which gets an empty value.
func ParseFields(s string) []Field {
	var out []Field
	for _, w := range strings.Fields(s) {
		k, v, _ := strings.Cut(w, "=")
		if k == "" {
			continue
		}
		out = append(out, Field{k, v})
	}
	return out
}

// fieldValue returns the value of key in fs.
func fieldValue(fs []Field, key string) (string, bool) {
	for _, f := range fs {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// setField sets key in fs, replacing an existing value.
func setField(fs []Field, key, value string) []Field {
	for i := range fs {
		if fs[i].Key == key {
			fs[i].Value = value
			return fs
		}
	}
	return append(fs, Field{key, value})
}

// truthy is Dovecot's reading of a yes/no extra field: a bare key, "y",
// "yes", "1" or "true".
func truthy(fs []Field, key string) bool {
	v, ok := fieldValue(fs, key)
	if !ok {
		return false
	}
	switch strings.ToLower(v) {
	case "", "y", "yes", "1", "true":
		return true
	}
	return false
}
