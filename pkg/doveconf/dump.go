package doveconf

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// Version is the Dovecot version whose settings and defaults postdove
// follows; Revision stands where Dovecot prints its git revision.
const (
	Version  = "2.3.19.1"
	Revision = "postdove"
)

// item is one entry of a block in doveconf's output, with its sort key.
type item struct {
	key   string
	lines []string
}

// hidden reports whether doveconf hides the value of name unless -P.
func hidden(name string) bool {
	return strings.HasSuffix(name, "_password") || strings.HasSuffix(name, "_key") ||
		strings.HasSuffix(name, "_nonce") || name == "ssl_dh"
}

func formatValue(name, v string, showSecrets bool) string {
	if !showSecrets && v != "" && hidden(name) {
		return "# hidden, use -P to show it"
	}
	return quoteIfSpaced(v)
}

// escapeName makes a section name sort as Dovecot's escaped keys do.
func escapeName(s string) string {
	return strings.NewReplacer(`\`, `\\`, " ", `\_`, "/", `\s`, "=", `\e`).Replace(s)
}

func header(sec *Section) string {
	if sec.Kind == "passdb" || sec.Kind == "userdb" {
		return sec.Kind + " {"
	}
	name := sec.Name
	if name == "" {
		return sec.Kind + " {"
	}
	if strings.ContainsAny(name, " \t\"'{}#") {
		name = quote(name)
	}
	return sec.Kind + " " + name + " {"
}

// dumpOptions say what a dump shows.
type dumpOptions struct {
	all         bool   // every setting (-a), not only those that differ (-n)
	showSecrets bool   // -P
	match       *Match // -f: filters that cannot match are left out
	given       bool   // a filter's block: every setting given, default or not
	inFilter    bool   // inside a filter's block
}

// render returns the lines of sec's content, sorted as doveconf sorts
// them; parent is the enclosing section.
func render(sec, parent *Section, o dumpOptions) []string {
	defs := sectionDefaults(sec, parent)
	var items []item
	seen := map[string]bool{}
	for name, v := range sec.values {
		seen[name] = true
		d, isDefault := defs[name]
		if sec.Kind == "" && !isDefault {
			d, isDefault = globalIndex[name].def, true
		}
		if !o.all && !o.given && isDefault && d == v.Text && comparedWithDefault(sec) {
			continue
		}
		items = append(items, item{name, []string{name + " = " + formatValue(name, v.Text, o.showSecrets)}})
	}
	for name, d := range defs {
		if seen[name] || o.given || !(o.all || alwaysShown(sec, name, o)) {
			continue
		}
		items = append(items, item{name, []string{name + " = " + formatValue(name, d, o.showSecrets)}})
	}
	children := sec.Sections
	if o.all && sec.Kind == "" {
		children = withBuiltinServices(sec)
	}
	if o.all && sec.Kind == "service" {
		children = withBuiltinListeners(sec)
	}
	o.given = false
	for i, c := range children {
		lines := render(c, sec, o)
		if len(lines) == 0 {
			continue
		}
		items = append(items, item{sortKey(c, i), block(c, lines)})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].key < items[j].key })
	var out []string
	for _, it := range items {
		out = append(out, it.lines...)
	}
	return out
}

// comparedWithDefault reports whether doveconf -n leaves out a setting of
// sec that is set to its default: it does at the top level and in passdb
// and userdb blocks; in the other sections every setting given is shown.
func comparedWithDefault(sec *Section) bool {
	return sec.Kind == "" || sec.Kind == "passdb" || sec.Kind == "userdb"
}

// sortKey is a section's key among its siblings; i is its position, which
// orders unnamed passdb and userdb blocks.
func sortKey(c *Section, i int) string {
	if c.Kind == "passdb" || c.Kind == "userdb" {
		return fmt.Sprintf("%s/%06d/", c.Kind, i)
	}
	return c.Kind + "/" + escapeName(c.Name) + "/"
}

// block wraps a section's content lines in its header and closing brace.
func block(c *Section, lines []string) []string {
	out := []string{header(c)}
	for _, l := range lines {
		out = append(out, "  "+l)
	}
	return append(out, "}")
}

// alwaysShown: doveconf -n shows a namespace's location and prefix even
// when they are the defaults, and the name of a passdb or userdb inside a
// filter.
func alwaysShown(sec *Section, name string, o dumpOptions) bool {
	return sec.Kind == "namespace" && (name == "location" || name == "prefix") ||
		o.inFilter && (sec.Kind == "passdb" || sec.Kind == "userdb") && name == "name"
}

// withBuiltinServices returns top's sections with every built-in service
// added (merged with the configuration's own settings for it).
func withBuiltinServices(top *Section) []*Section {
	out := slices.Clone(top.Sections)
	for _, name := range serviceOrder {
		if top.Child("service", name) == nil {
			out = append(out, newSection("service", name, "", 0))
		}
	}
	return out
}

// withBuiltinListeners returns a service's listeners with the built-in
// ones it does not mention added.
func withBuiltinListeners(svc *Section) []*Section {
	out := slices.Clone(svc.Sections)
	var names []string
	for k := range builtinServices[svc.Name] {
		parts := strings.Split(k, "/")
		if len(parts) == 3 && !slices.Contains(names, parts[0]+"/"+parts[1]) {
			names = append(names, parts[0]+"/"+parts[1])
		}
	}
	sort.Strings(names)
	for _, n := range names {
		kind, name, _ := strings.Cut(n, "/")
		name = strings.ReplaceAll(name, `\s`, "/")
		if svc.Child(kind, name) == nil {
			out = append(out, newSection(kind, name, "", 0))
		}
	}
	return out
}

// renderFilters returns the filter blocks as doveconf -n prints them:
// protocol blocks first, then remote, local and local_name ones, each
// group in the order the configuration gives them.
func renderFilters(c *Config, o dumpOptions) []string {
	var fs []*Filter
	for _, f := range c.Filters {
		if o.match == nil || !f.contradicts(*o.match) {
			fs = append(fs, f)
		}
	}
	// A protocol block inside another filter follows that filter (and the
	// filter's own block, wherever that is).
	first := map[string]int{}
	for i, f := range fs {
		if _, ok := first[f.label()]; !ok {
			first[f.label()] = i
		}
	}
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].rank() != fs[j].rank() {
			return fs[i].rank() < fs[j].rank()
		}
		if first[fs[i].label()] != first[fs[j].label()] {
			return first[fs[i].label()] < first[fs[j].label()]
		}
		return fs[i].Protocol == "" && fs[j].Protocol != ""
	})
	var out []string
	for _, f := range fs {
		lines := render(f.Settings, nil, dumpOptions{given: true, inFilter: true, showSecrets: o.showSecrets})
		if len(lines) == 0 {
			continue
		}
		indent := "  "
		out = append(out, f.label()+" {")
		if f.Protocol != "" && f.rank() > 0 {
			out = append(out, "  protocol "+f.Protocol+" {")
			indent = "    "
		}
		for _, l := range lines {
			out = append(out, indent+l)
		}
		if indent == "    " {
			out = append(out, "  }")
		}
		out = append(out, "}")
	}
	return out
}

// writeVersion writes doveconf's first line: version and file.
func writeVersion(w io.Writer, path string) {
	fmt.Fprintf(w, "# %s (%s): %s\n", Version, Revision, path)
}

// writeSystem writes doveconf's lines about the machine: the operating
// system and the host name.
func writeSystem(w io.Writer, mailLocation string) {
	fmt.Fprintf(w, "# OS: %s\n", osLine(ParseMailLocation(mailLocation).Root))
	if h, err := os.Hostname(); err == nil {
		fmt.Fprintf(w, "# Hostname: %s\n", h)
	}
}

// osLine is "Linux RELEASE MACHINE DISTRIBUTION FILESYSTEM", the last
// being the type of the file system the mail root is on (empty when the
// root does not exist as written, as "~/Maildir" does not).
func osLine(mailRoot string) string {
	var u syscall.Utsname
	sysname, release, machine := runtime.GOOS, "", runtime.GOARCH
	if syscall.Uname(&u) == nil {
		sysname, release, machine = utsString(u.Sysname[:]), utsString(u.Release[:]), utsString(u.Machine[:])
	}
	return sysname + " " + release + " " + machine + " " + distribution() + " " + fsType(mailRoot)
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// distribution names the Linux distribution as Dovecot does: lsb-release's
// description, else the first line of the first release file there is
// (/etc/redhat-release on CentOS), else "Debian " and /etc/debian_version.
func distribution() string {
	if b, err := os.ReadFile("/etc/lsb-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "DISTRIB_DESCRIPTION="); ok {
				return strings.Trim(v, `"`)
			}
		}
	}
	for _, f := range []struct{ path, prefix string }{
		{"/etc/redhat-release", ""}, {"/etc/SuSE-release", ""}, {"/etc/mandriva-release", ""},
		{"/etc/fedora-release", ""}, {"/etc/sourcemage-release", ""}, {"/etc/slackware-version", ""},
		{"/etc/gentoo-release", ""}, {"/etc/debian_version", "Debian "},
	} {
		if b, err := os.ReadFile(f.path); err == nil {
			line, _, _ := strings.Cut(string(b), "\n")
			return f.prefix + strings.TrimSpace(line)
		}
	}
	return ""
}

// fsType returns the type of the file system dir is on, from /proc/mounts.
func fsType(dir string) string {
	if !filepath.IsAbs(dir) {
		return ""
	}
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return ""
	}
	best, typ := -1, ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, typ = len(mp), f[2]
		}
	}
	return typ
}
