package doveconf

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ExitFatal is the exit code of a Dovecot program that stops on a fatal
// error, such as a configuration error (Dovecot's FATAL_DEFAULT).
const ExitFatal = 89

// Error is a configuration error in Dovecot's wording. Line is 0 for an
// error that belongs to the whole file.
type Error struct {
	File string
	Line int
	Msg  string

	lineZero bool // Dovecot says "line 0" (an included file not yet read)
}

func (e *Error) Error() string {
	if e.Line > 0 || e.lineZero {
		return fmt.Sprintf("Error in configuration file %s line %d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("Error in configuration file %s: %s", e.File, e.Msg)
}

// Value is one setting as the configuration gives it: quotes removed,
// "$name" self-references expanded, a "<file" reference kept as written.
type Value struct {
	Text string
	File string
	Line int
}

// Section is the top level of the configuration or one of its sections:
// namespace (with mailbox sections), passdb, userdb, service (with
// inet_listener, unix_listener and fifo_listener sections), plugin, dict.
type Section struct {
	Kind     string // "" for the top level
	Name     string // the instance name: "inbox" in "namespace inbox {"
	File     string
	Line     int
	Sections []*Section // the sections inside, in the order first seen
	values   map[string]Value
}

// Filter is a protocol, local, remote or local_name block (or a protocol
// block inside one of the others): settings that apply only to the
// connections it matches.
type Filter struct {
	Protocol, Local, Remote, LocalName string
	File                               string
	Line                               int
	Settings                           *Section
}

// Config is a parsed dovecot.conf with everything it includes.
type Config struct {
	Path     string // the main file, as given
	Top      *Section
	Filters  []*Filter
	Warnings []string // what doveconf prints as "Warning: ..."
	Errors   []string // what doveconf prints as "Error: ..." and goes on
}

func newSection(kind, name, file string, line int) *Section {
	return &Section{Kind: kind, Name: name, File: file, Line: line, values: map[string]Value{}}
}

// Set reports the value the configuration gives name in s, if it gives one.
func (s *Section) Set(name string) (Value, bool) {
	v, ok := s.values[name]
	return v, ok
}

// Names lists the settings the configuration gives s, sorted.
func (s *Section) Names() []string {
	names := make([]string, 0, len(s.values))
	for k := range s.values {
		names = append(names, k)
	}
	sortStrings(names)
	return names
}

// child returns the section of kind and name inside s, adding it unless it
// is there; unnamed passdb and userdb sections are always new.
func (s *Section) child(kind, name, file string, line int) *Section {
	if name != "" || (kind != "passdb" && kind != "userdb") {
		for _, c := range s.Sections {
			if c.Kind == kind && c.Name == name {
				return c
			}
		}
	}
	c := newSection(kind, name, file, line)
	s.Sections = append(s.Sections, c)
	return c
}

// Child returns the section of kind and name inside s, or nil.
func (s *Section) Child(kind, name string) *Section {
	for _, c := range s.Sections {
		if c.Kind == kind && c.Name == name {
			return c
		}
	}
	return nil
}

// label is what a filter's opening line says: "protocol imap",
// "remote 10.0.0.0/8"; for a protocol block inside another, the outer one.
func (f *Filter) label() string {
	switch {
	case f.Remote != "":
		return "remote " + f.Remote
	case f.Local != "":
		return "local " + f.Local
	case f.LocalName != "":
		return "local_name " + f.LocalName
	}
	return "protocol " + f.Protocol
}

// rank orders filters as doveconf prints them: protocol blocks, then
// remote, local and local_name blocks.
func (f *Filter) rank() int {
	switch {
	case f.Remote != "":
		return 1
	case f.Local != "":
		return 2
	case f.LocalName != "":
		return 3
	}
	return 0
}

func (f *Filter) same(g *Filter) bool {
	return f.Protocol == g.Protocol && f.Local == g.Local && f.Remote == g.Remote && f.LocalName == g.LocalName
}

func quoteIfSpaced(s string) string {
	if s == "" || (s[0] != ' ' && s[0] != '\t' && s[len(s)-1] != ' ' && s[len(s)-1] != '\t') {
		return s
	}
	return quote(s)
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

func itoa(n int) string { return strconv.Itoa(n) }

func sortStrings(s []string) { sort.Strings(s) }
