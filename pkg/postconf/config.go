package postconf

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"postdove/pkg/syserr"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config is one main.cf (plus its master.cf, for the names its services
// add) with Postfix's defaults behind it. It is safe for concurrent use.
type Config struct {
	dir, path string

	mu       sync.RWMutex
	order    []string          // names set in main.cf, in file order
	set      map[string]string // main.cf values, unexpanded
	lines    map[string]int    // line of each main.cf entry
	over     map[string]string // Set overrides
	services []Service
	svcDefs  map[string]string
	cache    map[string]string
	warnings []string
	// MasterErr is why master.cf could not be read (nil when it was).
	masterErr error
}

// ConfigDir is the configuration directory: the -c flag value, else
// $MAIL_CONFIG, else /etc/postfix.
func ConfigDir(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if d := os.Getenv("MAIL_CONFIG"); d != "" {
		return d
	}
	return DefaultConfigDir
}

// Load reads dir/main.cf, and dir/master.cf when there is one. Errors read
// like Postfix's fatal messages ("open /etc/postfix/main.cf: No such file
// or directory", "/etc/postfix/main.cf, line 3: missing '=' after
// attribute name: ...", or a *MacroError).
func Load(dir string) (*Config, error) {
	c := newConfig(dir)
	f, err := os.Open(c.path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %s", c.path, syserr.Text(err))
	}
	defer f.Close()
	lines, err := readLogicalLines(f, c.path, c.warn)
	if err != nil {
		return nil, fmt.Errorf("read %s: %s", c.path, syserr.Text(err))
	}
	for _, l := range lines {
		name, value, err := splitNameValue(l.Text)
		if err != nil {
			return nil, fmt.Errorf("%s, line %d: %v", c.path, l.Line, err)
		}
		if old, dup := c.set[name]; dup {
			c.warn(fmt.Sprintf("%s, line %d: overriding earlier entry: %s=%s", c.path, l.Line, name, old))
		} else {
			c.order = append(c.order, name)
		}
		c.set[name] = value
		c.lines[name] = l.Line
	}
	c.services, c.masterErr = LoadMaster(dir)
	c.svcDefs = serviceDefaults(c.services)
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// Empty is a configuration with nothing set: Postfix's defaults (for
// postconf -d).
func Empty(dir string) *Config { return newConfig(dir) }

func newConfig(dir string) *Config {
	return &Config{
		dir:   dir,
		path:  filepath.Join(dir, "main.cf"),
		set:   map[string]string{},
		lines: map[string]int{},
		over:  map[string]string{},
		cache: map[string]string{},
	}
}

func (c *Config) warn(msg string) { c.warnings = append(c.warnings, msg) }

// check expands every value main.cf sets, as Postfix does on start-up, and
// records references to undefined names.
func (c *Config) check() error {
	// master.cf's references are checked first: they need no expansion.
	c.warnings = append(c.warnings, masterUndefined(c.services, c.lookup)...)
	seen := masterSet(c.services) // a master.cf -o defines a name too
	x := &expander{lookup: c.lookup, undefined: func(name string) {
		if !seen[name] {
			seen[name] = true
			c.warn(fmt.Sprintf("%s: undefined parameter: %s", c.path, name))
		}
	}}
	for _, name := range c.order {
		if rawParams[name] {
			continue
		}
		if _, err := x.expand(c.set[name], 1); err != nil {
			var me *MacroError
			if errors.As(err, &me) {
				me.Warnings = append([]string(nil), c.warnings...)
			}
			return err
		}
	}
	return nil
}

// rawParams are expanded by the daemon that uses them, with its own
// attributes ($home, $user, $client_address ...), never at load time.
var rawParams = map[string]bool{
	"command_execution_directory": true, "default_rbl_reply": true,
	"forward_path": true, "luser_relay": true, "mailbox_command": true,
	"postscreen_expansion_filter": true, "postscreen_reject_footer": true,
	"smtpd_expansion_filter": true, "smtpd_reject_footer": true,
}

// IsRaw reports whether a parameter is one whose $names the daemon
// expands itself (Get returns it unexpanded).
func IsRaw(name string) bool { return rawParams[name] }

// masterUndefined warns about master.cf -o values that refer to names
// nothing defines.
func masterUndefined(services []Service, lookup lookupFunc) []string {
	var out []string
	seen := masterSet(services)
	for _, s := range services {
		for _, o := range s.Options {
			for _, n := range references(o[1]) {
				if _, ok := lookup(n); !ok && !seen[n] {
					seen[n] = true
					out = append(out, s.File+": undefined parameter: "+n)
				}
			}
		}
	}
	return out
}

// masterSet are the names master.cf -o options set.
func masterSet(services []Service) map[string]bool {
	m := map[string]bool{}
	for _, s := range services {
		for _, o := range s.Options {
			m[o[0]] = true
		}
	}
	return m
}

// Warnings are the non-fatal messages Load produced, without the program
// name ("/etc/postfix/main.cf, line 4: overriding earlier entry: a=b").
func (c *Config) Warnings() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]string(nil), c.warnings...)
}

// MasterError is why master.cf could not be read, or nil.
func (c *Config) MasterError() error { return c.masterErr }

// Services are the master.cf services read by Load.
func (c *Config) Services() []Service { return c.services }

// Dir is the configuration directory.
func (c *Config) Dir() string { return c.dir }

// Path is the main.cf file name.
func (c *Config) Path() string { return c.path }

// lookup is a name's unexpanded value in force; callers hold c.mu or own c.
func (c *Config) lookup(name string) (string, bool) {
	if v, ok := c.over[name]; ok {
		return v, true
	}
	if v, ok := c.set[name]; ok {
		return v, true
	}
	if v, ok := c.svcDefs[name]; ok {
		return v, true
	}
	if name == "config_directory" && c.dir != "" {
		// As in Postfix, the directory main.cf was read from (-c,
		// $MAIL_CONFIG) is $config_directory unless main.cf says
		// otherwise; postconf -d still shows the built-in default.
		return c.dir, true
	}
	return builtinDefault(name, c.lookup)
}

// Default is a parameter's default in force for this configuration,
// unexpanded (what postconf -d prints).
func (c *Config) Default(name string) (string, bool) {
	if v, ok := c.svcDefs[name]; ok {
		return v, true
	}
	return builtinDefault(name, nil)
}

// Expand expands $name references in s against this configuration.
func (c *Config) Expand(s string) (string, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	x := &expander{lookup: c.lookup}
	return x.expand(s, 1)
}

// GetErr is Get with the expansion error, if any.
func (c *Config) GetErr(name string) (string, error) {
	c.mu.RLock()
	if v, ok := c.cache[name]; ok {
		c.mu.RUnlock()
		return v, nil
	}
	raw, ok := c.lookup(name)
	if !ok {
		c.mu.RUnlock()
		return "", nil
	}
	v, err := raw, error(nil)
	if !rawParams[name] {
		x := &expander{lookup: c.lookup}
		v, err = x.expand(raw, 1)
	}
	c.mu.RUnlock()
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.cache[name] = v
	c.mu.Unlock()
	return v, nil
}

// Get is the fully expanded value of a parameter: the override, else
// main.cf's value, else the default in force; "" for an unknown name.
func (c *Config) Get(name string) string {
	v, _ := c.GetErr(name)
	return v
}

// Raw is the unexpanded value as set in main.cf (or by Set).
func (c *Config) Raw(name string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v, ok := c.over[name]; ok {
		return v, true
	}
	v, ok := c.set[name]
	return v, ok
}

// Set overrides a parameter (master.cf -o, postfix -o, postconf -o).
func (c *Config) Set(name, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.over[name] = value
	c.cache = map[string]string{}
}

// Known reports whether a parameter has a built-in default (including the
// per-service names master.cf's delivery services add).
func (c *Config) Known(name string) bool {
	if _, ok := c.svcDefs[name]; ok {
		return true
	}
	_, ok := builtinDefault(name, nil)
	return ok
}

// Names lists the names set in main.cf, in file order.
func (c *Config) Names() []string { return append([]string(nil), c.order...) }

// Line is the main.cf line number where name is set, or 0.
func (c *Config) Line(name string) int { return c.lines[name] }

// Overrides lists the names given to Set, sorted.
func (c *Config) Overrides() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var n []string
	for k := range c.over {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// List is the expanded value split on commas and white space; text in
// {braces} stays together.
func (c *Config) List(name string) []string { return SplitList(c.Get(name)) }

// SplitList splits a parameter value on commas and white space, keeping
// {braced text} in one piece, as Postfix does for list-valued parameters.
func SplitList(s string) []string {
	var out []string
	start, level := -1, 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '{':
			level++
		case ch == '}' && level > 0:
			level--
		}
		sep := level == 0 && (ch == ',' || isSpace(ch))
		if sep {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// Bool is a yes/no parameter (also true/false, any case).
func (c *Config) Bool(name string) bool {
	switch strings.ToLower(strings.TrimSpace(c.Get(name))) {
	case "yes", "true", "y", "1", "on":
		return true
	}
	return false
}

// Int is a numeric parameter; 0 when it does not parse.
func (c *Config) Int(name string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(c.Get(name)))
	return n
}

// Size is a byte-count parameter (message_size_limit, ...).
func (c *Config) Size(name string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(c.Get(name)), 10, 64)
	return n
}

// Duration is a time parameter in Postfix units (s, m, h, d, w); a bare
// number is in the parameter's default unit, the unit of its built-in
// default (seconds when that has none).
func (c *Config) Duration(name string) time.Duration {
	d, _ := ParseDuration(c.Get(name), c.defaultUnit(name))
	return d
}

func (c *Config) defaultUnit(name string) byte {
	v, _ := c.Default(name)
	for i := 0; i < 8 && strings.HasPrefix(v, "$"); i++ {
		v, _ = c.Default(strings.Trim(v, "${}()"))
	}
	if v != "" {
		if u := v[len(v)-1]; strings.IndexByte("smhdw", u) >= 0 {
			return u
		}
	}
	return 's'
}

// ErrBadTime is returned by ParseDuration for a malformed time value.
var ErrBadTime = errors.New("bad time value")

// ParseDuration parses a Postfix time value: a number with an optional
// unit s, m, h, d or w; unit is used when there is none.
func ParseDuration(s string, unit byte) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, ErrBadTime
	}
	if u := s[len(s)-1]; u < '0' || u > '9' {
		unit, s = u|0x20, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, ErrBadTime
	}
	var mult time.Duration
	switch unit {
	case 's':
		mult = time.Second
	case 'm':
		mult = time.Minute
	case 'h':
		mult = time.Hour
	case 'd':
		mult = 24 * time.Hour
	case 'w':
		mult = 7 * 24 * time.Hour
	default:
		return 0, ErrBadTime
	}
	return time.Duration(n) * mult, nil
}

// references returns the parameter names s refers to with $name, ${name...}
// or $(name).
func references(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			continue
		}
		j := i + 1
		if s[j] == '$' {
			i = j
			continue
		}
		if s[j] == '{' || s[j] == '(' {
			j++
		}
		k := j
		for k < len(s) && isNameChar(s[k]) {
			k++
		}
		if k > j {
			out = append(out, s[j:k])
		}
	}
	return out
}

// usedNames are the names something refers to: $name in a main.cf value
// or a master.cf -o value, and the restriction classes.
func (c *Config) usedNames() map[string]bool {
	used := map[string]bool{}
	mark := func(v string) {
		for _, n := range references(v) {
			used[n] = true
		}
	}
	for _, v := range c.set {
		mark(v)
	}
	for _, s := range c.services {
		for _, o := range s.Options {
			mark(o[1])
		}
	}
	for _, n := range SplitList(c.Get("smtpd_restriction_classes")) {
		used[n] = true
	}
	return used
}

// Unused lists names set in main.cf that nothing uses: not built in, not
// added by a master.cf service, not referenced as $name from main.cf or a
// master.cf -o value, and not a restriction class. File order.
func (c *Config) Unused() []string {
	used := c.usedNames()
	var out []string
	for _, n := range c.order {
		if !used[n] && !c.Known(n) {
			out = append(out, n)
		}
	}
	return out
}

// MasterUnused are Postfix's warnings about master.cf -o settings of
// names that nothing uses (the same test as Unused), in file order.
func (c *Config) MasterUnused() []string {
	used := c.usedNames()
	var out []string
	for _, s := range c.services {
		for _, o := range s.Options {
			if !used[o[0]] && !c.Known(o[0]) {
				out = append(out, fmt.Sprintf("%s: unused parameter: %s=%s", s.File, o[0], o[1]))
			}
		}
	}
	return out
}

// NonDefault lists, sorted, the names postconf -n shows: those set in
// main.cf that are used, plus overrides.
func (c *Config) NonDefault() []string {
	unused := map[string]bool{}
	for _, n := range c.Unused() {
		unused[n] = true
	}
	m := map[string]bool{}
	for _, n := range c.order {
		if !unused[n] {
			m[n] = true
		}
	}
	for _, n := range c.Overrides() {
		m[n] = true
	}
	return slices.Sorted(maps.Keys(m))
}
