package postconf

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Service is one master.cf entry. The seven fields keep their text as
// written ("-" for a default); Command is the program name and Args the
// rest of the command line with the -o options taken out into Options.
type Service struct {
	Name, Type, Private, Unpriv, Chroot, Wakeup, Maxproc, Command string
	Args                                                          []string
	Options                                                       [][2]string
	File                                                          string
	Line                                                          int
}

// masterFields are master.cf's field names as postconf -F shows them.
var masterFields = []string{"service", "type", "private", "unprivileged", "chroot", "wakeup", "process_limit", "command"}

// LoadMaster reads dir/master.cf.
func LoadMaster(dir string) ([]Service, error) {
	path := filepath.Join(dir, "master.cf")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %s", path, errnoText(err))
	}
	defer f.Close()
	lines, err := readLogicalLines(f, path, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %s", path, errnoText(err))
	}
	var out []Service
	for _, l := range lines {
		s, err := parseService(l.Text)
		if err != nil {
			return nil, fmt.Errorf("file %s: line %d: %v", path, l.Line, err)
		}
		s.File, s.Line = path, l.Line
		out = append(out, s)
	}
	return out, nil
}

func parseService(text string) (Service, error) {
	f := strings.Fields(text)
	if len(f) < 8 {
		return Service{}, fmt.Errorf("bad field count")
	}
	s := Service{Name: f[0], Type: f[1], Private: f[2], Unpriv: f[3], Chroot: f[4], Wakeup: f[5], Maxproc: f[6], Command: f[7]}
	rest := f[8:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "-o" && i+1 < len(rest) {
			i++
			a = "-o" + rest[i]
		}
		if opt, ok := strings.CutPrefix(a, "-o"); ok && opt != "" {
			name, value, found := strings.Cut(opt, "=")
			if !found {
				return Service{}, fmt.Errorf("missing '=' after attribute name: \"%s\"", opt)
			}
			s.Options = append(s.Options, [2]string{name, value})
			continue
		}
		s.Args = append(s.Args, a)
	}
	return s, nil
}

// Chrooted reports whether the service runs chrooted; "-" means n, except
// that below compatibility level 1 it means y.
func (s Service) Chrooted(c *Config) bool {
	switch s.Chroot {
	case "y", "yes":
		return true
	case "-":
		lvl, err := parseLevel(strings.TrimSpace(c.Get("compatibility_level")))
		return err == nil && compareLevels(lvl, [3]int{1}) < 0
	}
	return false
}

// Option is the value a -o option gives name, if any (last one wins).
func (s Service) Option(name string) (string, bool) {
	v, ok := "", false
	for _, o := range s.Options {
		if o[0] == name {
			v, ok = o[1], true
		}
	}
	return v, ok
}

// fieldValue is the text of a master.cf field by its -F name.
func (s Service) fieldValue(field string) string {
	switch field {
	case "service":
		return s.Name
	case "type":
		return s.Type
	case "private":
		return s.Private
	case "unprivileged":
		return s.Unpriv
	case "chroot":
		return s.Chroot
	case "wakeup":
		return s.Wakeup
	case "process_limit":
		return s.Maxproc
	}
	return s.commandLine(false)
}

// commandLine is the command with its options and arguments; fold puts
// each -o on a line of its own, as postconf -Mf does.
func (s Service) commandLine(fold bool) string {
	sep := " "
	if fold {
		sep = "\n    "
	}
	var b strings.Builder
	b.WriteString(s.Command)
	for _, o := range s.Options {
		b.WriteString(sep + "-o " + o[0] + "=" + o[1])
	}
	for _, a := range s.Args {
		b.WriteString(" " + a)
	}
	return b.String()
}

// Format is the service as one master.cf entry in postconf -M's layout.
func (s Service) Format(fold bool) string {
	// Fields start at fixed columns; a long field pushes the rest along.
	stops := []int{11, 17, 25, 33, 41, 49, 57}
	var b strings.Builder
	for i, f := range []string{s.Name, s.Type, s.Private, s.Unpriv, s.Chroot, s.Wakeup, s.Maxproc} {
		b.WriteString(f)
		pad := stops[i] - b.Len()
		if pad < 1 {
			pad = 1
		}
		b.WriteString(strings.Repeat(" ", pad))
	}
	b.WriteString(s.commandLine(fold))
	return b.String()
}

// MatchService reports whether s matches a selector "name", "name/type"
// (either part may be "*").
func MatchService(s Service, sel string) bool {
	name, typ, _ := strings.Cut(sel, "/")
	return (name == "*" || name == s.Name) && (typ == "" || typ == "*" || typ == s.Type)
}

// splitSelector splits "name/type/item" for -F and -P; missing parts are "*".
func splitSelector(sel string) (svc, item string) {
	parts := strings.SplitN(sel, "/", 3)
	for len(parts) < 3 {
		parts = append(parts, "*")
	}
	return parts[0] + "/" + parts[1], parts[2]
}

// MasterFields is postconf -F: "name/type/field = value" lines for the
// selectors (all fields of all services when there are none).
func MasterFields(services []Service, selectors []string) []string {
	if len(selectors) == 0 {
		selectors = []string{"*/*/*"}
	}
	var out []string
	for _, sel := range selectors {
		svcSel, field := splitSelector(sel)
		for _, s := range services {
			if !MatchService(s, svcSel) {
				continue
			}
			for _, f := range masterFields {
				if field == "*" || field == f {
					out = append(out, s.Name+"/"+s.Type+"/"+f+" = "+s.fieldValue(f))
				}
			}
		}
	}
	return out
}

// MasterParams is postconf -P: the -o settings, sorted by name within each
// service.
func MasterParams(services []Service, selectors []string) []string {
	if len(selectors) == 0 {
		selectors = []string{"*/*/*"}
	}
	var out []string
	for _, sel := range selectors {
		svcSel, param := splitSelector(sel)
		for _, s := range services {
			if !MatchService(s, svcSel) {
				continue
			}
			opts := map[string]string{}
			for _, o := range s.Options {
				opts[o[0]] = o[1]
			}
			names := make([]string, 0, len(opts))
			for n := range opts {
				if param == "*" || param == n {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			for _, n := range names {
				out = append(out, s.Name+"/"+s.Type+"/"+n+" = "+opts[n])
			}
		}
	}
	return out
}
