package postconf

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"maps"
	pmaps "postdove/pkg/maps"
)

// Options are postconf's command-line settings (see cmd/postconf).
type Options struct {
	ConfigDir   string // -c, or "" for $MAIL_CONFIG / /etc/postfix
	FromFlag    bool   // the directory came from -c or $MAIL_CONFIG
	Defaults    bool   // -d
	NonDefault  bool   // -n
	NoNames     bool   // -h
	NoValues    bool   // -H
	Expand      bool   // -x
	Fold        bool   // -f
	Edit        bool   // -e
	Comment     bool   // -#
	Exclude     bool   // -X
	Master      bool   // -M
	Fields      bool   // -F
	MasterParam bool   // -P
	MapTypes    bool   // -m
	LockTypes   bool   // -l
	Overrides   []string
	Args        []string
}

// Fatal is an error postconf reports as "postconf: fatal: TEXT", exit 1.
// Warnings that go before it (e.g. for a *MacroError) are in Before.
type Fatal struct {
	Before []string
	Text   string
}

func (f *Fatal) Error() string { return f.Text }

func fatalf(format string, a ...any) error { return &Fatal{Text: fmt.Sprintf(format, a...)} }

// Run carries out one postconf invocation; warnings go to warn (without
// the program prefix), output to out. A returned error is fatal.
func Run(o Options, out io.Writer, warn func(string)) error {
	dir := ConfigDir(o.ConfigDir)
	if len(o.Args) > 0 && strings.Contains(o.Args[0], "=") {
		o.Edit = true // name=value means -e
	}
	if err := checkOptions(o); err != nil {
		return err
	}
	switch {
	case o.MapTypes:
		for _, t := range pmaps.Types() {
			fmt.Fprintln(out, t)
		}
		return nil
	case o.LockTypes:
		fmt.Fprintln(out, "flock\nfcntl\ndotlock")
		return nil
	case o.Edit || o.Comment || o.Exclude:
		return runEdit(o, dir, warn)
	case o.Master || o.Fields || o.MasterParam:
		return runMaster(o, dir, out, warn)
	}
	c, err := loadForQuery(dir, o.Defaults)
	if err != nil {
		return asFatal(err)
	}
	if o.FromFlag {
		c.Set("config_directory", dir)
	}
	for _, ov := range o.Overrides {
		n, v, err := splitNameValue(ov)
		if err != nil {
			return fatalf("%v", err)
		}
		c.Set(n, v)
	}
	if err := c.masterErr; err != nil {
		var oe *MasterOpenError
		if !errors.As(err, &oe) {
			return fatalf("%v", err)
		}
		warn(err.Error())
	}
	if !o.Defaults {
		for _, w := range c.Warnings() {
			warn(w)
		}
	}
	names := o.Args
	if len(names) == 0 {
		switch {
		case o.NonDefault:
			names = c.NonDefault()
		default:
			names = c.allNames()
		}
	}
	for _, n := range names {
		var v string
		var ok bool
		switch {
		case o.Defaults:
			v, ok = c.Default(n)
		case o.NonDefault:
			v, ok = c.Raw(n)
			if !ok {
				continue
			}
		default:
			c.mu.RLock()
			v, ok = c.lookup(n)
			c.mu.RUnlock()
		}
		if !ok || isUnused(c, n) {
			warn(n + ": unknown parameter")
			continue
		}
		if o.Expand && !rawParams[n] {
			if v, err = c.Expand(v); err != nil {
				return asFatal(err)
			}
		}
		printParam(out, n, v, o)
	}
	if !o.Defaults {
		for _, n := range c.Unused() {
			warn(fmt.Sprintf("%s: unused parameter: %s=%s", c.path, n, c.set[n]))
		}
		for _, w := range c.MasterUnused() {
			warn(w)
		}
	}
	return nil
}

// loadForQuery loads the configuration a query shows. For defaults (-d)
// main.cf is not read at all, only master.cf for its per-service names.
func loadForQuery(dir string, defaults bool) (*Config, error) {
	if !defaults {
		return Load(dir)
	}
	c := Empty(dir)
	c.services, c.masterErr = LoadMaster(dir)
	c.svcDefs = serviceDefaults(c.services)
	return c, nil
}

func isUnused(c *Config, name string) bool {
	for _, n := range c.Unused() {
		if n == name {
			return true
		}
	}
	return false
}

// allNames is every parameter bare postconf shows: the built-in ones, the
// per-service ones and the used names set in main.cf or by Set.
func (c *Config) allNames() []string {
	m := map[string]bool{}
	for _, n := range KnownNames() {
		m[n] = true
	}
	for n := range c.svcDefs {
		m[n] = true
	}
	for _, n := range c.NonDefault() {
		m[n] = true
	}
	return slices.Sorted(maps.Keys(m))
}

// asFatal turns a Load or expansion error into a Fatal.
func asFatal(err error) error {
	var me *MacroError
	if errors.As(err, &me) {
		return &Fatal{Before: append(append([]string(nil), me.Warnings...), me.Detail), Text: "macro processing error"}
	}
	var f *Fatal
	if errors.As(err, &f) {
		return f
	}
	return &Fatal{Text: err.Error()}
}

// printParam writes one "name = value" line in postconf's layout: runs of
// white space become one space, and -f folds lines longer than 80 columns.
func printParam(out io.Writer, name, value string, o Options) {
	value = strings.Join(strings.Fields(value), " ")
	var line string
	switch {
	case o.NoNames:
		line = value
	case o.NoValues:
		line = name
	default:
		line = nameValue(name, value)
	}
	if o.Fold {
		line = foldLine(line, 80, "    ")
	}
	fmt.Fprintln(out, line)
}

// foldLine breaks s at spaces so that no line is longer than width (unless a
// word is), continuing with indent.
func foldLine(s string, width int, indent string) string {
	var b strings.Builder
	col := 0
	for i, w := range strings.Split(s, " ") {
		if i > 0 {
			if col+1+len(w) > width {
				b.WriteString("\n" + indent)
				col = len(indent)
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}

func runEdit(o Options, dir string, warn func(string)) error {
	mode := EditSet
	switch {
	case o.Comment:
		mode = EditComment
	case o.Exclude:
		mode = EditRemove
	}
	if o.Master || o.Fields || o.MasterParam {
		part := MasterEntry
		switch {
		case o.Fields:
			part = MasterField
		case o.MasterParam:
			part = MasterParam
		}
		if err := EditMaster(dir, part, mode, o.Args, warn); err != nil {
			return fatalf("%v", err)
		}
		return nil
	}
	if len(o.Args) == 0 {
		switch mode {
		case EditSet:
			return fatalf("-e requires name=value argument")
		case EditComment:
			return fatalf("-# requires name argument")
		default:
			return fatalf("-X requires name argument")
		}
	}
	if err := Edit(dir, mode, o.Args, warn); err != nil {
		return fatalf("%v", err)
	}
	return nil
}

func runMaster(o Options, dir string, out io.Writer, warn func(string)) error {
	c, err := Load(dir)
	if err != nil {
		return asFatal(err)
	}
	if c.masterErr != nil {
		return fatalf("%v", c.masterErr)
	}
	for _, w := range c.Warnings() {
		warn(w)
	}
	services := c.services
	var lines, unmatched []string
	switch {
	case o.Fields:
		if lines, unmatched, err = MasterFields(services, o.Args); err != nil {
			return fatalf("%v", err)
		}
	case o.MasterParam:
		lines, unmatched = MasterParams(services, o.Args)
	default:
		lines, unmatched = MasterEntries(services, o.Args, o.Fold)
	}
	for _, u := range unmatched {
		warn(fmt.Sprintf("unmatched request: \"%s\"", u))
	}
	for _, w := range c.MasterUnused() {
		warn(w)
	}
	for _, l := range lines {
		if o.NoNames {
			if _, v, ok := strings.Cut(l, " = "); ok {
				l = v
			} else if strings.HasSuffix(l, " =") {
				l = ""
			}
		}
		if o.NoValues && (o.Fields || o.MasterParam) {
			l, _, _ = strings.Cut(l, " =")
		}
		fmt.Fprintln(out, l)
	}
	return nil
}
