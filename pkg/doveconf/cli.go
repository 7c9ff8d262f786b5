package doveconf

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"sort"
	"strings"

	"postdove/pkg/syserr"
)

// DefaultPath is where Dovecot's configuration lives.
const DefaultPath = "/etc/dovecot/dovecot.conf"

// Options are doveconf's command-line options.
type Options struct {
	Config      string   // -c
	All         bool     // -a (the default without names)
	NonDefault  bool     // -n
	Defaults    bool     // -d: the built-in defaults
	NoNames     bool     // -h: values only
	ShowSecrets bool     // -P
	Filters     []string // -f protocol=imap ...
	Names       []string
}

// parseArgs reads doveconf's options the way getopt does (options and
// names may be mixed; "--" ends the options).
func parseArgs(prog string, args []string) (Options, string) {
	o := Options{Config: DefaultPath}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.Names = append(o.Names, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			o.Names = append(o.Names, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch c {
			case 'a':
				o.All = true
			case 'n', 'N':
				o.NonDefault = true
			case 'd':
				o.Defaults = true
			case 'h':
				o.NoNames = true
			case 'P':
				o.ShowSecrets = true
			case 's', 'p', 'x', 'S', 'I':
				// Hidden settings, fixed paths, expansion, simple output
				// and config import change nothing postdove shows.
			case 'c', 'f', 'm', 'i', 'e':
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return o, fmt.Sprintf("%s: option requires an argument -- '%c'", prog, c)
					}
					i++
					val = args[i]
				}
				switch c {
				case 'c':
					o.Config = val
				case 'f':
					o.Filters = append(o.Filters, val)
				}
				j = len(a)
			default:
				return o, fmt.Sprintf("%s: invalid option -- '%c'", prog, c)
			}
		}
	}
	return o, ""
}

// match turns the -f arguments into a Match.
func (o Options) match() (Match, string) {
	var m Match
	for _, f := range o.Filters {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case ok && (k == "protocol" || k == "service"):
			m.Protocol = v
		case ok && k == "local":
			m.Local = v
		case ok && k == "remote":
			m.Remote = v
		case ok && (k == "local_name" || k == "lname"):
			m.LocalName = v
		default:
			return m, "Unknown filter argument: " + f
		}
	}
	return m, ""
}

// Main runs doveconf with args (args[0] is the program's name) and returns
// its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	prog := "doveconf"
	o, msg := parseArgs(args[0], args[1:])
	if msg != "" {
		fmt.Fprintln(stderr, msg)
		return ExitFatal
	}
	fatal := func(msg string) int {
		fmt.Fprintf(stderr, "%s: Fatal: %s\n", prog, msg)
		return ExitFatal
	}
	m, msg := o.match()
	if msg != "" {
		return fatal(msg)
	}
	dump := len(o.Names) == 0
	if dump {
		writeVersion(stdout, o.Config)
	}
	data, err := os.ReadFile(o.Config)
	if err != nil {
		return fatal(fmt.Sprintf("open(%s) failed: %s", o.Config, syserr.Text(err)))
	}
	cfg, late := Parse(o.Config, data)
	if cfg == nil {
		return fatal(late.Error())
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "%s: Warning: %s\n", prog, w)
	}
	for _, e := range cfg.Errors {
		fmt.Fprintf(stderr, "%s: Error: %s\n", prog, e)
	}
	s := cfg.For(m)
	filterConflict := false
	if len(o.Filters) > 0 {
		if key, at := cfg.conflict(&m); at != nil {
			// doveconf -f says so; a query then fails, a dump shows the
			// filters only.
			filterConflict = true
			fmt.Fprintf(stderr, "%s: Error: %s\n", prog, conflictMsg(key, at))
			if !dump {
				return fatal("Errors in configuration")
			}
		}
	}
	if o.Defaults {
		cfg = &Config{Path: cfg.Path, Top: newSection("", "", cfg.Path, 0)}
		s = cfg.Global()
	}
	dopts := dumpOptions{all: !o.NonDefault, showSecrets: o.ShowSecrets}
	if len(o.Filters) > 0 {
		dopts.match = &m
	}
	if dump {
		writeSystem(stdout, s.Get("mail_location"))
		if dopts.all {
			fmt.Fprintln(stdout, "# NOTE: Send doveconf -n output instead when asking for help.")
		}
		top := cfg.Top
		if len(o.Filters) > 0 {
			top = &Section{Kind: "", values: s.vals, Sections: s.secs}
		}
		if !filterConflict {
			for _, l := range render(top, nil, dopts) {
				fmt.Fprintln(stdout, l)
			}
		}
		for _, l := range renderFilters(cfg, dopts) {
			fmt.Fprintln(stdout, l)
		}
	} else {
		for _, name := range o.Names {
			printName(stdout, s, name, o)
		}
	}
	if late != nil {
		return fatal(late.Error())
	}
	if err := cfg.Conflict(); dump && err != nil {
		return fatal(err.Error())
	}
	if errs := Check(s); dump && len(errs) > 0 {
		// Queries by name print without the whole-configuration checks.
		fmt.Fprintf(stderr, "%s: Error: %s\n", prog, errs[0])
		return fatal((&Error{File: cfg.Path, Msg: errs[0]}).Error())
	}
	return 0
}

// printName prints one setting, section kind or section path asked for by
// name.
func printName(w io.Writer, s *Settings, name string, o Options) {
	top := &Section{values: s.vals, Sections: s.secs}
	show := func(v string) {
		if o.NoNames {
			fmt.Fprintln(w, v)
		} else {
			fmt.Fprintf(w, "%s = %s\n", name, quoteIfSpaced(v))
		}
	}
	if def, ok := globalIndex[name]; ok {
		v := s.Get(name)
		if _, set := s.vals[name]; o.NonDefault && (!set || v == def.def) {
			return
		}
		show(v)
		return
	}
	if isTopKind(name) {
		if o.NoNames {
			return
		}
		dopts := dumpOptions{all: !o.NonDefault, showSecrets: o.ShowSecrets}
		secs := top.Sections
		if name == "service" && dopts.all {
			secs = withBuiltinServices(top)
		}
		var items []item
		for i, c := range secs {
			if lines := render(c, top, dopts); c.Kind == name && len(lines) > 0 {
				items = append(items, item{sortKey(c, i), block(c, lines)})
			}
		}
		sort.SliceStable(items, func(i, j int) bool { return items[i].key < items[j].key })
		for _, it := range items {
			for _, l := range it.lines {
				fmt.Fprintln(w, l)
			}
		}
		return
	}
	if v, ok := lookupPath(top, name); ok {
		show(v)
	}
}

func isTopKind(name string) bool {
	for _, k := range childKinds[""] {
		if k == name {
			return true
		}
	}
	return false
}

// lookupPath finds a setting by its path: "service/imap/process_limit",
// "service/imap-login/inet_listener/imap/port", "namespace/inbox/separator",
// "plugin/quota".
func lookupPath(top *Section, path string) (string, bool) {
	parts := strings.Split(path, "/")
	sec, parent := top, (*Section)(nil)
	for len(parts) >= 3 {
		kind, name := parts[0], parts[1]
		c := sec.Child(kind, name)
		if c == nil {
			if kind == "service" && sec == top {
				if _, ok := builtinServices[name]; ok {
					c = newSection(kind, name, "", 0)
				}
			} else if strings.HasSuffix(kind, "_listener") && parent == nil && sec.Kind == "service" {
				c = newSection(kind, name, "", 0)
			}
		}
		if c == nil {
			return "", false
		}
		if c.Kind != "service" {
			parent = sec
		}
		sec = c
		parts = parts[2:]
	}
	if len(parts) == 2 && strlistKinds[parts[0]] {
		for _, c := range top.Sections {
			if c.Kind == parts[0] {
				if v, ok := c.values[parts[1]]; ok {
					return v.Text, true
				}
			}
		}
		return "", false
	}
	if len(parts) != 1 || sec == top {
		return "", false
	}
	if sec.Kind == "service" {
		parent = nil
	}
	if v, ok := sec.values[parts[0]]; ok {
		return v.Text, true
	}
	v, ok := sectionDefaults(sec, parent)[parts[0]]
	return v, ok
}

// workarounds are the client workarounds Dovecot 2.3 knows.
var workarounds = map[string][]string{
	"imap_client_workarounds": {"delay-newmail", "tb-extra-mailbox-sep", "tb-lsub-flags"},
	"pop3_client_workarounds": {"outlook-no-nuls", "oe-ns-eoh"},
}

// Check makes Dovecot's whole-configuration checks and returns their
// complaints: settings that must not be empty, passdb and userdb blocks
// without a driver, and the unprivileged users the services run as.
func Check(s *Settings) []string {
	var errs []string
	for _, name := range []string{"default_login_user", "default_internal_user"} {
		u := s.Get(name)
		if _, err := user.Lookup(u); err != nil {
			errs = append(errs, name+" doesn't exist: "+u)
		}
	}
	if strings.TrimSpace(s.Get("listen")) == "" {
		errs = append(errs, "listen can't be set empty")
	}
	for name, known := range workarounds {
		for _, w := range s.List(name) {
			if !slices.Contains(known, w) {
				errs = append(errs, name+": Unknown workaround: "+w)
			}
		}
	}
	for _, kind := range []string{"passdb", "userdb"} {
		for _, d := range s.dbs(kind) {
			if d.Driver == "" {
				errs = append(errs, kind+" is missing driver")
			}
		}
	}
	return errs
}
