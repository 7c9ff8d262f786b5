package doveconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"postdove/pkg/syserr"
)

// Match describes a connection: the filters (protocol, local, remote,
// local_name blocks) whose criteria it meets apply to it.
type Match struct {
	Protocol  string // "imap", "pop3", "lda", "lmtp", ...
	Local     string // the server's address
	Remote    string // the client's address
	LocalName string // the name the client asked for (TLS SNI)
}

// Settings is the configuration as one connection (or program) sees it:
// the global settings with the matching filters applied.
type Settings struct {
	cfg  *Config
	vals map[string]Value
	secs []*Section
}

// Global returns the settings outside every filter.
func (c *Config) Global() *Settings { return c.For(Match{}) }

// For returns the settings for a connection described by m.
func (c *Config) For(m Match) *Settings {
	top := newSection("", "", c.Path, 0)
	merge(top, c.Top)
	for _, f := range c.applying(m) {
		merge(top, f.Settings)
	}
	return &Settings{cfg: c, vals: top.values, secs: top.Sections}
}

// merge adds src's settings and sections to dst: a section of the same
// kind and name is merged, an unnamed passdb or userdb added.
func merge(dst, src *Section) {
	for k, v := range src.values {
		dst.values[k] = v
	}
	for _, c := range src.Sections {
		merge(dst.child(c.Kind, c.Name, c.File, c.Line), c)
	}
}

// applying returns the filters that match m, the least specific first.
func (c *Config) applying(m Match) []*Filter {
	var out []*Filter
	for _, f := range c.Filters {
		if f.matches(m) {
			out = append(out, f)
		}
	}
	score := func(f *Filter) int {
		n := 0
		if f.Protocol != "" {
			n++
		}
		if f.LocalName != "" {
			n += 2
		}
		if f.Local != "" {
			n += 4
		}
		if f.Remote != "" {
			n += 8
		}
		return n
	}
	sort.SliceStable(out, func(i, j int) bool { return score(out[i]) < score(out[j]) })
	return out
}

func (f *Filter) matches(m Match) bool {
	if f.Protocol != "" {
		if m.Protocol == "" {
			return false
		}
		if p, neg := strings.CutPrefix(f.Protocol, "!"); neg {
			if m.Protocol == p {
				return false
			}
		} else if m.Protocol != f.Protocol {
			return false
		}
	}
	if f.LocalName != "" && !nameMatches(f.LocalName, m.LocalName) {
		return false
	}
	if f.Local != "" && !addrMatches(f.Local, m.Local) {
		return false
	}
	if f.Remote != "" && !addrMatches(f.Remote, m.Remote) {
		return false
	}
	return true
}

// contradicts reports whether f can never apply to connections m
// describes (doveconf -f leaves such filters out); criteria m leaves empty
// do not contradict.
func (f *Filter) contradicts(m Match) bool {
	if f.Protocol != "" && m.Protocol != "" {
		if p, neg := strings.CutPrefix(f.Protocol, "!"); neg == (p == m.Protocol) {
			return true
		}
	}
	return f.Local != "" && m.Local != "" && !addrMatches(f.Local, m.Local) ||
		f.Remote != "" && m.Remote != "" && !addrMatches(f.Remote, m.Remote) ||
		f.LocalName != "" && m.LocalName != "" && !nameMatches(f.LocalName, m.LocalName)
}

// nameMatches matches a local_name (which may start with "*.") against a
// host name; several names may be given, separated by spaces.
func nameMatches(pattern, name string) bool {
	if name == "" {
		return false
	}
	for _, p := range strings.Fields(pattern) {
		if strings.EqualFold(p, name) {
			return true
		}
		if rest, ok := strings.CutPrefix(p, "*"); ok && strings.HasSuffix(strings.ToLower(name), strings.ToLower(rest)) {
			return true
		}
	}
	return false
}

// addrMatches matches an address or network ("10.0.0.0/8") against addr.
func addrMatches(pattern, addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	if p, err := netip.ParsePrefix(pattern); err == nil {
		return p.Contains(a.Unmap())
	}
	if b, err := netip.ParseAddr(pattern); err == nil {
		return b.Unmap() == a.Unmap()
	}
	return false
}

// Get returns a global setting's value: the configuration's, else the
// default. A "<file" value is returned as written; see File.
func (s *Settings) Get(name string) string {
	if v, ok := s.vals[name]; ok {
		return v.Text
	}
	return globalIndex[name].def
}

// Value returns where the configuration sets name, if it does.
func (s *Settings) Value(name string) (Value, bool) {
	v, ok := s.vals[name]
	return v, ok
}

// Bool returns a yes/no setting.
func (s *Settings) Bool(name string) bool {
	b, _ := parseBool(s.Get(name))
	return b
}

// Uint returns a numeric setting.
func (s *Settings) Uint(name string) uint64 {
	n, _ := strconv.ParseUint(s.Get(name), 10, 64)
	return n
}

// Duration returns a time interval setting ("2 secs").
func (s *Settings) Duration(name string) time.Duration {
	d, _ := parseTime(s.Get(name))
	return d
}

// Size returns a size setting in bytes ("64 k").
func (s *Settings) Size(name string) uint64 {
	n, _ := parseSize(s.Get(name))
	return n
}

// List returns a list setting's words ("imap pop3", "*, ::").
func (s *Settings) List(name string) []string {
	return strings.FieldsFunc(s.Get(name), func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
}

// Protocols returns the protocols to serve.
func (s *Settings) Protocols() []string { return s.List("protocols") }

// File returns a setting's content: for "<path" the file's content (a
// relative path is taken from the folder of the file that sets it), else
// the value itself.
func (s *Settings) File(name string) (string, error) {
	text := s.Get(name)
	path, ok := strings.CutPrefix(text, "<")
	if !ok {
		return text, nil
	}
	if v, set := s.vals[name]; set && !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(v.File), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &Error{File: s.cfg.Path, Msg: name + ": Can't open file " + path + ": " + syserr.Text(err)}
	}
	return string(b), nil
}

// sectionValue returns a setting inside sec: the configuration's value,
// else the built-in default.
func sectionValue(sec, parent *Section, name string) string {
	if v, ok := sec.values[name]; ok {
		return v.Text
	}
	return sectionDefaults(sec, parent)[name]
}

// Namespace is a namespace block.
type Namespace struct {
	Name, Type, Separator, Prefix, Location string
	Inbox, Hidden, Subscriptions            bool
	List                                    string // yes, no or children
	Mailboxes                               []Mailbox
}

// Mailbox is a mailbox block inside a namespace.
type Mailbox struct {
	Name, SpecialUse, Auto string // Auto: no, create or subscribe
}

// Namespaces returns the namespace blocks in the order first seen.
func (s *Settings) Namespaces() []Namespace {
	var out []Namespace
	for _, sec := range s.secs {
		if sec.Kind != "namespace" {
			continue
		}
		get := func(n string) string { return sectionValue(sec, nil, n) }
		b := func(n string) bool { v, _ := parseBool(get(n)); return v }
		ns := Namespace{Name: sec.Name, Type: get("type"), Separator: get("separator"), Prefix: get("prefix"),
			Location: get("location"), Inbox: b("inbox"), Hidden: b("hidden"), Subscriptions: b("subscriptions"), List: get("list")}
		for _, m := range sec.Sections {
			ns.Mailboxes = append(ns.Mailboxes, Mailbox{Name: m.Name, SpecialUse: sectionValue(m, sec, "special_use"), Auto: sectionValue(m, sec, "auto")})
		}
		out = append(out, ns)
	}
	return out
}

// DB is a passdb or userdb block.
type DB struct {
	Driver, Args, Name string
	Fields             map[string]string // every setting, defaults included
}

// Passdbs returns the passdb blocks in order.
func (s *Settings) Passdbs() []DB { return s.dbs("passdb") }

// Userdbs returns the userdb blocks in order.
func (s *Settings) Userdbs() []DB { return s.dbs("userdb") }

func (s *Settings) dbs(kind string) []DB {
	var out []DB
	for _, sec := range s.secs {
		if sec.Kind != kind {
			continue
		}
		d := DB{Fields: map[string]string{}}
		for k, v := range sectionDefaults(sec, nil) {
			d.Fields[k] = v
		}
		for k, v := range sec.values {
			d.Fields[k] = v.Text
		}
		d.Driver, d.Args, d.Name = d.Fields["driver"], d.Fields["args"], d.Fields["name"]
		out = append(out, d)
	}
	return out
}

// Plugin returns the plugin block's settings.
func (s *Settings) Plugin() map[string]string {
	m := map[string]string{}
	for _, sec := range s.secs {
		if sec.Kind == "plugin" {
			for k, v := range sec.values {
				m[k] = v.Text
			}
		}
	}
	return m
}

// Service is a service block, built in or configured, with its settings
// and listeners; references to global settings ("$default_internal_user")
// are resolved.
type Service struct {
	Name      string
	Settings  map[string]string
	Listeners []Listener
}

// Listener is an inet_listener, unix_listener or fifo_listener block.
type Listener struct {
	Kind, Name, Address, Mode, User, Group string
	Port                                   int
	SSL, Haproxy                           bool
}

// Services returns every service: the built-in ones (with the
// configuration's changes) and those the configuration adds.
func (s *Settings) Services() []Service {
	byName := map[string][]*Section{}
	var names []string
	for _, n := range serviceOrder {
		names = append(names, n)
	}
	for _, sec := range s.secs {
		if sec.Kind == "service" {
			if _, ok := builtinServices[sec.Name]; !ok && len(byName[sec.Name]) == 0 {
				names = append(names, sec.Name)
			}
			byName[sec.Name] = append(byName[sec.Name], sec)
		}
	}
	var out []Service
	for _, n := range names {
		merged := newSection("service", n, "", 0)
		for _, sec := range byName[n] {
			for k, v := range sec.values {
				merged.values[k] = v
			}
			for _, l := range sec.Sections {
				ml := merged.child(l.Kind, l.Name, l.File, l.Line)
				for k, v := range l.values {
					ml.values[k] = v
				}
			}
		}
		svc := Service{Name: n, Settings: copyMap(sectionDefaults(merged, nil))}
		for k, v := range merged.values {
			svc.Settings[k] = v.Text
		}
		for k, v := range svc.Settings {
			svc.Settings[k] = s.global(v)
		}
		for _, l := range withBuiltinListeners(merged) {
			get := func(k string) string { return s.global(sectionValue(l, merged, k)) }
			port, _ := strconv.Atoi(get("port"))
			ssl, _ := parseBool(get("ssl"))
			hp, _ := parseBool(get("haproxy"))
			svc.Listeners = append(svc.Listeners, Listener{Kind: l.Kind, Name: l.Name, Address: get("address"),
				Mode: get("mode"), User: get("user"), Group: get("group"), Port: port, SSL: ssl, Haproxy: hp})
		}
		out = append(out, svc)
	}
	return out
}

// global resolves a value that is a reference to a global setting, as
// "user = $default_internal_user" in the built-in services.
func (s *Settings) global(v string) string {
	if name, ok := strings.CutPrefix(v, "$"); ok {
		if _, known := globalDefaults[name]; known {
			return s.Get(name)
		}
	}
	return v
}

// Service returns the service called name, if there is one.
func (s *Settings) Service(name string) (Service, bool) {
	for _, svc := range s.Services() {
		if svc.Name == name {
			return svc, true
		}
	}
	return Service{}, false
}

func copyMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Hostname returns the hostname setting, else the machine's name.
func (s *Settings) Hostname() string {
	if h := s.Get("hostname"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// PostmasterAddress returns postmaster_address for mail to domain (the
// recipient's domain, or ""), working out Dovecot 2.3's default
// "postmaster@%{if;%d;ne;;%d;%{hostname}}": postmaster@domain, else
// postmaster@ the host name.
func (s *Settings) PostmasterAddress(domain string) string {
	v := s.Get("postmaster_address")
	if v == globalDefaults["postmaster_address"] {
		if domain == "" {
			domain = s.Hostname()
		}
		return "postmaster@" + domain
	}
	return strings.NewReplacer("%{hostname}", s.Hostname(), "%d", domain, "%{domain}", domain).Replace(v)
}

// Location returns where a namespace's mail is: its own location, else
// mail_location.
func (s *Settings) Location(ns Namespace) MailLocation {
	if ns.Location != "" {
		return ParseMailLocation(ns.Location)
	}
	return s.MailLocation()
}

// Map returns every global setting's value as Get gives it: the defaults
// and what the configuration sets (a process that must not read
// dovecot.conf itself gets its settings so).
func (s *Settings) Map() map[string]string {
	m := copyMap(globalDefaults)
	for k, v := range s.vals {
		m[k] = v.Text
	}
	return m
}

// FromMap returns settings holding m's values, as Map gave them.
func FromMap(m map[string]string) *Settings {
	top := newSection("", "", "", 0)
	for k, v := range m {
		top.values[k] = Value{Text: v}
	}
	return &Settings{cfg: &Config{Top: top}, vals: top.values}
}
