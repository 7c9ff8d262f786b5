package postconf

import (
	"fmt"
	"os"
	"path/filepath"
	"postdove/pkg/syserr"
	"sort"
	"strings"
)

// Service is one master.cf entry. The seven fields keep their text as
// written ("-" for a default); Command is the program name. Argv is the
// rest of the command line in order, each daemon option as one item
// "-o name=value"; Options are those daemon options (the -o settings
// before the first word that does not start with '-', as the daemon's
// getopt sees them) and Args the other words.
type Service struct {
	Name, Type, Private, Unpriv, Chroot, Wakeup, Maxproc, Command string
	Argv                                                          []string
	Args                                                          []string
	Options                                                       [][2]string
	File                                                          string
	Line                                                          int
}

// masterFields are master.cf's field names as postconf -F shows them.
var masterFields = []string{"service", "type", "private", "unprivileged", "chroot", "wakeup", "process_limit", "command"}

// MasterOpenError is a master.cf that could not be opened. A parameter
// query only warns of it, as Postfix does; an error in the file's content
// is fatal.
type MasterOpenError struct{ msg string }

func (e *MasterOpenError) Error() string { return e.msg }

// LoadMaster reads dir/master.cf.
func LoadMaster(dir string) ([]Service, error) {
	path := filepath.Join(dir, "master.cf")
	f, err := os.Open(path)
	if err != nil {
		return nil, &MasterOpenError{fmt.Sprintf("open %s: %s", path, syserr.Text(err))}
	}
	defer f.Close()
	lines, err := readLogicalLines(f, path, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %s", path, syserr.Text(err))
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
	s.setArgs(f[8:])
	return s, nil
}

// setArgs sets Argv, Options and Args from the words after the command.
// An option without '=' ("-o foo") stays in Argv but sets nothing, as in
// Postfix.
func (s *Service) setArgs(words []string) {
	s.Argv, s.Args, s.Options = nil, nil, nil
	inOptions := true
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !inOptions || !strings.HasPrefix(w, "-") {
			inOptions = false
			s.Argv = append(s.Argv, w)
			s.Args = append(s.Args, w)
			continue
		}
		opt, ok := strings.CutPrefix(w, "-o")
		if ok && opt == "" && i+1 < len(words) {
			i++
			opt = words[i]
		}
		if !ok || opt == "" {
			s.Argv = append(s.Argv, w)
			s.Args = append(s.Args, w)
			continue
		}
		if name, value, found := strings.Cut(opt, "="); found {
			s.Options = append(s.Options, [2]string{name, value})
		}
		s.Argv = append(s.Argv, "-o "+opt)
	}
}

// isOptionItem reports whether an Argv item is a daemon option; words
// never hold a space, options always do.
func isOptionItem(item string) bool { return strings.HasPrefix(item, "-o ") }

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
	return s.commandLine()
}

// commandLine is the command with its options and arguments in order.
func (s Service) commandLine() string {
	return strings.Join(append([]string{s.Command}, s.Argv...), " ")
}

// masterLineLimit is the width postconf -Mf folds master.cf entries to:
// a folded line stays shorter than this.
const masterLineLimit = 80

// Format is the service as one master.cf entry in postconf -M's layout.
// With fold (postconf -Mf, and entries postconf writes to master.cf), each
// daemon option goes on a line of its own, the word after one starts a
// new line, and other words wrap before column 80, continuation lines
// indented by four spaces.
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
	if !fold {
		b.WriteString(s.commandLine())
		return b.String()
	}
	b.WriteString(s.Command)
	col := b.Len()
	prevOption := false
	for _, item := range s.Argv {
		option := isOptionItem(item)
		if option || prevOption || col+1+len(item) >= masterLineLimit {
			b.WriteString("\n    ")
			col = 4
		} else {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(item)
		col += len(item)
		prevOption = option
	}
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
// selectors (all fields of all services when there are none), services in
// file order, then selectors in the order given. Unmatched are the
// selectors that matched nothing; a field name that does not exist is an
// error.
func MasterFields(services []Service, selectors []string) (lines, unmatched []string, err error) {
	for _, sel := range selectors {
		if _, f := splitSelector(sel); f != "*" && !isMasterField(f) {
			return nil, nil, fmt.Errorf("invalid service attribute name: \"%s\"", f)
		}
	}
	lines, unmatched = masterQuery(services, selectors, func(s Service, item string) []string {
		var out []string
		for _, f := range masterFields {
			if item == "*" || item == f {
				out = append(out, nameValue(s.Name+"/"+s.Type+"/"+f, s.fieldValue(f)))
			}
		}
		return out
	})
	return lines, unmatched, nil
}

func isMasterField(name string) bool {
	for _, f := range masterFields {
		if f == name {
			return true
		}
	}
	return false
}

// MasterParams is postconf -P: the -o settings, sorted by name within each
// service, in the order of MasterFields.
func MasterParams(services []Service, selectors []string) (lines, unmatched []string) {
	return masterQuery(services, selectors, func(s Service, item string) []string {
		opts := map[string]string{}
		for _, o := range s.Options {
			opts[o[0]] = o[1]
		}
		names := make([]string, 0, len(opts))
		for n := range opts {
			if item == "*" || item == n {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		var out []string
		for _, n := range names {
			out = append(out, nameValue(s.Name+"/"+s.Type+"/"+n, opts[n]))
		}
		return out
	})
}

// masterQuery runs show(service, item) for every service (file order)
// and selector "name/type/item" (given order) that match.
func masterQuery(services []Service, selectors []string, show func(Service, string) []string) (lines, unmatched []string) {
	implicit := len(selectors) == 0 // nothing to show is no warning then
	if implicit {
		selectors = []string{"*/*/*"}
	}
	hit := make([]bool, len(selectors))
	for _, s := range services {
		for i, sel := range selectors {
			svcSel, item := splitSelector(sel)
			if !MatchService(s, svcSel) {
				continue
			}
			out := show(s, item)
			hit[i] = hit[i] || len(out) > 0
			lines = append(lines, out...)
		}
	}
	for i, sel := range selectors {
		if !hit[i] && !implicit {
			unmatched = append(unmatched, sel)
		}
	}
	return lines, unmatched
}

// MasterEntries is postconf -M: the entries matching any of the selectors
// ("name" or "name/type", all when there are none), each once, in file
// order.
func MasterEntries(services []Service, selectors []string, fold bool) (lines, unmatched []string) {
	implicit := len(selectors) == 0 // nothing to show is no warning then
	if implicit {
		selectors = []string{"*"}
	}
	hit := make([]bool, len(selectors))
	for _, s := range services {
		shown := false
		for i, sel := range selectors {
			if MatchService(s, sel) {
				hit[i] = true
				if !shown {
					lines = append(lines, s.Format(fold))
					shown = true
				}
			}
		}
	}
	for i, sel := range selectors {
		if !hit[i] && !implicit {
			unmatched = append(unmatched, sel)
		}
	}
	return lines, unmatched
}

// nameValue is "name = value" as postconf prints it: "name =" when the
// value is empty.
func nameValue(name, value string) string {
	if value == "" {
		return name + " ="
	}
	return name + " = " + value
}
