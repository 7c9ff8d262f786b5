package doveconf

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"postdove/pkg/syserr"
)

// childKinds lists the sections each kind of section may hold.
var childKinds = map[string][]string{
	"":          {"namespace", "passdb", "userdb", "service", "plugin", "dict"},
	"namespace": {"mailbox"},
	"service":   {"inet_listener", "unix_listener", "fifo_listener"},
}

// strlistKinds hold free-form "key = value" settings.
var strlistKinds = map[string]bool{"plugin": true, "dict": true}

var (
	obsolete     = map[string]string{} // name -> doveconf's warning
	globalIndex  = map[string]setting{}
	sectionIndex = map[string]map[string]setting{}
)

func init() {
	for _, s := range globalTable {
		globalIndex[s.name] = s
	}
	for _, s := range unlistedTable {
		globalIndex[s.name] = s
	}
	for _, o := range obsoleteTable {
		obsolete[o[0]] = o[1]
	}
	for kind, list := range sectionTable {
		m := map[string]setting{}
		for _, s := range list {
			m[s.name] = s
		}
		sectionIndex[kind] = m
	}
}

// lookup returns the definition of setting name inside a section of kind.
func lookup(kind, name string) (setting, bool) {
	if kind == "" {
		s, ok := globalIndex[name]
		return s, ok
	}
	s, ok := sectionIndex[kind][name]
	return s, ok
}

// maxIncludeDepth stops include loops.
const maxIncludeDepth = 20

// frame is one open block while parsing.
type frame struct {
	sec    *Section
	filter *Filter // set for a filter block
	file   string
	line   int
}

type parser struct {
	cfg   *Config
	stack []frame
	depth int
	err   error

	warnedObsolete bool
}

// Load reads the configuration in path and everything it includes.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "open(" + path + ") failed: " + syserr.Text(err)}
	}
	return Parse(path, data)
}

// Parse parses data as the configuration file path; includes are read
// relative to path's folder. When only a closing '}' is missing at the end,
// the configuration is returned along with the error (doveconf still shows
// it); any error makes the configuration unusable for a daemon.
func Parse(path string, data []byte) (*Config, error) {
	p := &parser{cfg: &Config{Path: path, Top: newSection("", "", path, 0)}}
	p.stack = []frame{{sec: p.cfg.Top, file: path}}
	if err := p.parseFile(path, data); err != nil {
		return nil, err
	}
	if len(p.stack) > 1 {
		f := p.stack[len(p.stack)-1]
		return p.cfg, &Error{File: path, Msg: "Missing '}' (section started at " + f.file + ":" + itoa(f.line) + ")"}
	}
	return p.cfg, nil
}

// logicalLines splits data into lines, joining a line that ends in '\'
// with the next one; each line has the number of its last physical line,
// as Dovecot reports it. A continuation the file ends in, or that an empty
// line or a comment follows, is dropped.
func logicalLines(data []byte) ([]string, []int) {
	var lines []string
	var nums []int
	text := strings.TrimSuffix(string(data), "\n")
	phys := strings.Split(text, "\n")
	for i := 0; i < len(phys); i++ {
		l := strings.TrimRight(phys[i], " \t\r")
		for strings.HasSuffix(l, `\`) && i+1 < len(phys) {
			i++
			next := strings.TrimSpace(phys[i])
			if next == "" || next[0] == '#' {
				l = "" // Dovecot drops a continuation into an empty line or a comment
				break
			}
			l = strings.TrimRight(l[:len(l)-1], " \t") + " " + next
		}
		if strings.HasSuffix(l, `\`) {
			break
		}
		lines = append(lines, l)
		nums = append(nums, i+1)
	}
	return lines, nums
}

func (p *parser) parseFile(file string, data []byte) error {
	lines, nums := logicalLines(data)
	for i, raw := range lines {
		line, warn := stripComment(strings.TrimLeft(raw, " \t"))
		if warn {
			p.cfg.Warnings = append(p.cfg.Warnings, "Configuration file "+file+" line "+itoa(nums[i])+": Ambiguous '#' character in line, treating it as comment. Add a space before it to remove this warning.")
		}
		line = strings.TrimRight(line, " \t")
		if line == "" {
			continue
		}
		if msg := p.parseLine(file, nums[i], line); msg != "" {
			if msg == errReported {
				return p.err
			}
			return &Error{File: file, Line: nums[i], Msg: msg}
		}
	}
	return nil
}

// errReported says parseLine's error is already in p.err (it came from an
// included file).
const errReported = "\x00"

// stripComment cuts a '#' comment off line, outside quotes; warn says the
// '#' did not follow a space, which Dovecot warns about.
func stripComment(line string) (string, bool) {
	var q byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case q != 0:
			if c == '\\' && i+1 < len(line) {
				i++
			} else if c == q {
				q = 0
			}
		case (c == '"' || c == '\'') && (i == 0 || strings.IndexByte(" \t=", line[i-1]) >= 0):
			q = c
		case c == '#':
			if i == 0 || line[i-1] == ' ' || line[i-1] == '\t' {
				return line[:i], false
			}
			return line[:i], true
		}
	}
	return line, false
}

func (p *parser) top() *frame { return &p.stack[len(p.stack)-1] }

// sectionPath is how Dovecot names the enclosing sections in "Unknown
// setting" errors: "service { ", "service { inet_listener { ".
func (p *parser) sectionPath() string {
	var b strings.Builder
	for _, f := range p.stack[1:] {
		if f.filter == nil {
			b.WriteString(f.sec.Kind + " { ")
		}
	}
	return b.String()
}

func (p *parser) parseLine(file string, num int, line string) string {
	if line == "}" {
		if len(p.stack) == 1 {
			return "Unexpected '}'"
		}
		p.stack = p.stack[:len(p.stack)-1]
		return ""
	}
	if rest, ok := strings.CutPrefix(line, "!include_try"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		return p.include(file, num, strings.TrimSpace(rest), true)
	}
	if rest, ok := strings.CutPrefix(line, "!include"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		return p.include(file, num, strings.TrimSpace(rest), false)
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		i = len(line)
	}
	key, rest := line[:i], strings.TrimLeft(line[i:], " \t")
	if key == "" && strings.HasPrefix(rest, "=") {
		return "Missing key name ('=' at the beginning of line)"
	}
	if v, ok := strings.CutPrefix(rest, "="); ok {
		return p.setting(file, num, key, strings.TrimLeft(v, " \t"))
	}
	name := ""
	if !strings.HasPrefix(rest, "{") {
		var j int
		if rest != "" && (rest[0] == '"' || rest[0] == '\'') {
			j = closingQuote(rest)
			name = unquote(rest[:j])
		} else {
			j = strings.IndexAny(rest, " \t")
			if j < 0 {
				j = len(rest)
			}
			name = rest[:j]
		}
		rest = strings.TrimLeft(rest[j:], " \t")
		if !strings.HasPrefix(rest, "{") {
			return "Expecting '{'"
		}
	}
	if strings.TrimSpace(rest[1:]) != "" {
		return "Garbage after '{'"
	}
	return p.open(file, num, key, name)
}

// closingQuote returns the index just past the quoted string s starts with.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		} else if s[i] == s[0] {
			return i + 1
		}
	}
	return len(s)
}

// unquote removes the quotes around a value and its backslash escapes;
// a value that does not both start and end with the same quote is kept.
func unquote(s string) string {
	if len(s) < 2 || (s[0] != '"' && s[0] != '\'') || s[len(s)-1] != s[0] || closingQuote(s) != len(s) {
		return s
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (p *parser) include(file string, num int, pattern string, try bool) string {
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(file), pattern)
	}
	matches, err := filepath.Glob(pattern)
	if err != nil || len(matches) == 0 {
		if try {
			return ""
		}
		return "No matches"
	}
	if p.depth >= maxIncludeDepth {
		return "Recursive include file: " + matches[0]
	}
	sort.Strings(matches)
	// Dovecot opens every match before reading the first, the last one
	// first, each becoming the current file (at line 0): a match it cannot
	// open is reported against the match after it.
	datas := make([][]byte, len(matches))
	for i := len(matches) - 1; i >= 0; i-- {
		m := matches[i]
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			continue // Dovecot reads nothing from a folder
		}
		data, err := os.ReadFile(m)
		if err != nil {
			if try && os.IsNotExist(err) {
				continue
			}
			msg := "Couldn't open include file " + m + ": " + syserr.Text(err)
			if i+1 < len(matches) {
				p.err = &Error{File: matches[i+1], Msg: msg, lineZero: true}
				return errReported
			}
			return msg
		}
		datas[i] = data
	}
	for i, m := range matches {
		if datas[i] == nil {
			continue
		}
		p.depth++
		err := p.parseFile(m, datas[i])
		p.depth--
		if err != nil {
			p.err = err
			return errReported
		}
	}
	return ""
}

// setting stores "key = value" in the innermost open block.
func (p *parser) setting(file string, num int, key, value string) string {
	f := p.top()
	sec := f.sec
	value = unquote(value)
	if rest, ok := strings.CutPrefix(value, "<"); ok {
		value = "<" + strings.TrimLeft(rest, " \t")
	}
	if old, ok := sec.values[key]; ok || sec.Kind == "" {
		// "$key" is the value so far: this block's, else (in a filter)
		// the global one, else the default.
		cur := old.Text
		if !ok {
			if g, set := p.cfg.Top.values[key]; set {
				cur = g.Text
			} else if s, known := lookup(sec.Kind, key); known {
				cur = s.def
			}
		}
		value = expandSelf(value, key, cur)
	}
	if strlistKinds[sec.Kind] {
		sec.values[key] = Value{Text: value, File: file, Line: num}
		return ""
	}
	def, ok := lookup(sec.Kind, key)
	if msg, old := obsolete[key]; !ok && sec.Kind == "" && old {
		return p.obsolete(sec, file, num, key, value, msg)
	}
	if !ok {
		return "Unknown setting: " + p.sectionPath() + key
	}
	if f.filter != nil && (f.filter.Local != "" || f.filter.Remote != "") && strings.HasPrefix(key, "auth_") {
		return "Auth settings not supported inside local/remote blocks: " + key
	}
	enumKey := key
	if sec.Kind != "" {
		enumKey = sec.Kind + "/" + key
	}
	if msg := check(def.kind, enumKey, value); msg != "" {
		return msg
	}
	sec.values[key] = Value{Text: normalize(def.kind, value), File: file, Line: num}
	return ""
}

// expandSelf replaces "$key" in value with the setting's current value,
// which is how "mail_plugins = $mail_plugins quota" appends.
// Only a space-separated word "$key" is replaced.
func expandSelf(value, key, cur string) string {
	if !strings.Contains(value, "$"+key) {
		return value
	}
	words := strings.Split(value, " ")
	for i, w := range words {
		if w == "$"+key {
			words[i] = cur
		}
	}
	return strings.Join(words, " ")
}

var filterKinds = map[string]bool{"protocol": true, "local": true, "remote": true, "local_name": true}

// open starts a section or filter block.
func (p *parser) open(file string, num int, kind, name string) string {
	f := p.top()
	if filterKinds[kind] && f.sec.Kind == "" {
		nf := &Filter{File: file, Line: num}
		if f.filter != nil {
			*nf = *f.filter
			nf.File, nf.Line, nf.Settings = file, num, nil
			if f.filter.Protocol != "" {
				if kind == "protocol" {
					return "Nested protocol { protocol { .. } } block not allowed"
				}
				return "protocol { " + kind + " { .. } } not allowed (use " + kind + " { protocol { .. } } instead)"
			}
		}
		switch kind {
		case "protocol":
			nf.Protocol = name
		case "local":
			nf.Local = name
		case "remote":
			nf.Remote = name
		case "local_name":
			nf.LocalName = name
		}
		for _, g := range p.cfg.Filters {
			if g.same(nf) {
				nf = g
				break
			}
		}
		if nf.Settings == nil {
			nf.Settings = newSection("", "", file, num)
			p.cfg.Filters = append(p.cfg.Filters, nf)
		}
		p.stack = append(p.stack, frame{sec: nf.Settings, filter: nf, file: file, line: num})
		return ""
	}
	allowed := false
	for _, k := range childKinds[f.sec.Kind] {
		allowed = allowed || k == kind
	}
	if !allowed || strlistKinds[f.sec.Kind] {
		return "Unknown setting: " + p.sectionPath() + kind + " { " + kind
	}
	c := f.sec.child(kind, name, file, num)
	if (kind == "passdb" || kind == "userdb") && name != "" {
		c.values["name"] = Value{Text: name, File: file, Line: num}
	}
	p.stack = append(p.stack, frame{sec: c, file: file, line: num})
	return ""
}

// obsolete handles a setting of an older Dovecot release: it warns as
// doveconf does and converts those that map onto one current setting.
func (p *parser) obsolete(sec *Section, file string, num int, key, value, msg string) string {
	if !p.warnedObsolete {
		p.warnedObsolete = true
		p.cfg.Warnings = append(p.cfg.Warnings, "NOTE: You can get a new clean config file with: doveconf -Pn > dovecot-new.conf")
	}
	if msg != "" {
		p.cfg.Warnings = append(p.cfg.Warnings, "Obsolete setting in "+file+":"+itoa(num)+": "+msg)
	}
	set := func(name, v string) { sec.values[name] = Value{Text: v, File: file, Line: num} }
	switch key {
	case "ssl_cert_file", "ssl_key_file", "ssl_ca_file":
		set(strings.TrimSuffix(key, "_file"), "<"+value)
	case "ssl_disable":
		if b, ok := parseBool(value); ok {
			set("ssl", map[bool]string{true: "no", false: "yes"}[b])
		}
	case "ssl_protocols":
		min, bad := minProtocol(value)
		if bad != "" {
			p.cfg.Errors = append(p.cfg.Errors, "Could not find a minimum ssl_min_protocol setting from ssl_protocols = "+value+": Unrecognized protocol '"+bad+"'")
		} else if min != "" {
			set("ssl_min_protocol", min)
		}
	}
	return ""
}

// sslProtocols are the protocols ssl_protocols could name, oldest first.
var sslProtocols = []string{"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2"}

// minProtocol turns a Dovecot 2.2 ssl_protocols list ("!SSLv3 !TLSv1",
// "TLSv1.1 TLSv1.2") into the oldest protocol it allows; bad is a word
// it does not know.
func minProtocol(list string) (min, bad string) {
	allowed := map[string]bool{}
	positive := false
	for _, w := range strings.Fields(list) {
		name, neg := strings.CutPrefix(w, "!")
		if !slices.Contains(sslProtocols, name) {
			return "", name
		}
		if !neg {
			positive = true
			allowed[name] = true
		}
	}
	if !positive {
		for _, p := range sslProtocols {
			allowed[p] = true
		}
	}
	for _, w := range strings.Fields(list) {
		if name, neg := strings.CutPrefix(w, "!"); neg {
			delete(allowed, name)
		}
	}
	for _, p := range sslProtocols {
		if allowed[p] {
			return p, ""
		}
	}
	return "", ""
}
