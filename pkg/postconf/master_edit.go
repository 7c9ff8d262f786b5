package postconf

import (
	"fmt"
	"path/filepath"
	"strings"
)

// MasterPart is the part of master.cf a postconf edit names: whole
// entries (-M), their fields (-F) or their -o parameters (-P).
type MasterPart int

// The master.cf parts postconf edits.
const (
	MasterEntry MasterPart = iota // -M name/type = entry
	MasterField                   // -F name/type/field = value
	MasterParam                   // -P name/type/parameter = value
)

func (p MasterPart) flag() string { return [...]string{"-M", "-F", "-P"}[p] }

// masterRequest is one parsed edit argument.
type masterRequest struct {
	arg       string // as given, for messages
	svc, item string // "name/type" and the field or parameter name
	value     string
	entry     Service // for -M name/type = entry
	matched   bool
}

// masterChunk is one entry of master.cf with the comment and blank lines
// up to the next entry, or the lines before the first entry.
type masterChunk struct {
	lines   []string // physical lines, each with its newline
	isEntry []bool   // lines[i] is part of the entry (not a comment)
	svc     *Service // nil for the lines before the first entry
	changed bool     // svc was modified: write it anew
	removed bool
	comment bool
}

// EditMaster changes master.cf in dir as postconf -Me/-Fe/-Pe (mode
// EditSet), -MX/-PX (EditRemove) or -M# (EditComment) do. Entries that
// are not touched keep their text; comments stay where they are; the
// file is replaced atomically. Requests that match no entry are reported
// through warn (for -F and -P).
func EditMaster(dir string, part MasterPart, mode EditMode, args []string, warn func(string)) error {
	reqs, err := parseMasterRequests(part, mode, args)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "master.cf")
	data, err := readForEdit(path)
	if err != nil {
		return err
	}
	chunks, err := splitMasterChunks(data, path)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		applyMasterRequest(&chunks, part, mode, r)
		if !r.matched && part != MasterEntry {
			warn(fmt.Sprintf("unmatched service_name/type: \"%s\"", r.arg))
		}
	}
	return WriteFileAtomic(path, []byte(joinMasterChunks(chunks, part)))
}

// parseMasterRequests checks every argument before anything is changed.
func parseMasterRequests(part MasterPart, mode EditMode, args []string) ([]*masterRequest, error) {
	flag := part.flag()
	if part != MasterEntry && mode != EditSet && !(part == MasterParam && mode == EditRemove) {
		opt := "-X"
		if mode == EditComment {
			opt = "-#"
		}
		return nil, fmt.Errorf("with option %s, do not specify %s", flag, opt)
	}
	if len(args) == 0 {
		if mode == EditSet {
			return nil, fmt.Errorf("-e requires name=value argument")
		}
		return nil, fmt.Errorf("missing service argument")
	}
	var syntax string
	slashes := 2
	switch part {
	case MasterEntry:
		syntax, slashes = "-Me, -MX or -M# requires service_name/type", 1
	case MasterField:
		syntax = "-Fe or -FX requires service_name/type/field_name"
	default:
		syntax = "-Pe or -PX requires service_name/type/parameter"
	}
	var reqs []*masterRequest
	for _, a := range args {
		r := &masterRequest{arg: a}
		key := strings.TrimSpace(a)
		if mode == EditSet {
			n, v, err := splitNameValue(a)
			if err != nil {
				return nil, err
			}
			key, r.value = n, v
		}
		parts := strings.Split(key, "/")
		if len(parts) != slashes+1 || hasEmpty(parts) {
			return nil, fmt.Errorf("%s", syntax)
		}
		r.svc = parts[0] + "/" + parts[1]
		if slashes == 2 {
			r.item = parts[2]
		}
		if mode == EditSet {
			if err := checkMasterValue(part, r); err != nil {
				return nil, err
			}
		}
		reqs = append(reqs, r)
	}
	return reqs, nil
}

func hasEmpty(parts []string) bool {
	for _, p := range parts {
		if p == "" {
			return true
		}
	}
	return false
}

// checkMasterValue checks the value of a -Me, -Fe or -Pe request.
func checkMasterValue(part MasterPart, r *masterRequest) error {
	switch part {
	case MasterEntry:
		s, err := parseService(r.value)
		if err != nil {
			return fmt.Errorf("bad field count: \"%s\"", r.arg)
		}
		r.entry = s
	case MasterField:
		known := false
		for _, f := range masterFields {
			known = known || f == r.item
		}
		if !known {
			return fmt.Errorf("invalid service attribute name: \"%s\"", r.item)
		}
		if r.item != "command" && strings.ContainsAny(r.value, spaceChars) {
			return fmt.Errorf("-Fe does not accept whitespace in non-command field")
		}
		if r.value == "" {
			return fmt.Errorf("-Fe requires a non-empty %s field", r.item)
		}
	case MasterParam:
		if strings.ContainsAny(r.value, spaceChars) {
			return fmt.Errorf("-Pe does not accept whitespace in parameter value")
		}
	}
	return nil
}

// splitMasterChunks cuts master.cf into entries, each followed by the
// comment and blank lines before the next one.
func splitMasterChunks(data, path string) ([]*masterChunk, error) {
	lines := strings.SplitAfter(data, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	chunks := []*masterChunk{{}}
	var text []string // the entry's lines, for parsing
	startLine := 0
	finish := func() error {
		c := chunks[len(chunks)-1]
		if c.svc == nil {
			return nil
		}
		s, err := parseService(strings.Join(text, ""))
		if err != nil {
			return fmt.Errorf("file %s: line %d: %v", path, startLine, err)
		}
		s.File, s.Line = path, startLine
		*c.svc = s
		return nil
	}
	for i, raw := range lines {
		line := strings.TrimRight(raw, spaceChars)
		c := chunks[len(chunks)-1]
		switch {
		case isFiller(line):
			c.lines, c.isEntry = append(c.lines, raw), append(c.isEntry, false)
		case isSpace(line[0]):
			c.lines, c.isEntry = append(c.lines, raw), append(c.isEntry, c.svc != nil)
			if c.svc != nil {
				text = append(text, line)
			}
		default:
			if err := finish(); err != nil {
				return nil, err
			}
			chunks = append(chunks, &masterChunk{lines: []string{raw}, isEntry: []bool{true}, svc: &Service{}})
			text, startLine = []string{line}, i+1
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return chunks, nil
}

// applyMasterRequest carries out one request on every entry it matches
// (-M adds an entry when none has its name/type).
func applyMasterRequest(chunks *[]*masterChunk, part MasterPart, mode EditMode, r *masterRequest) {
	for _, c := range *chunks {
		if c.svc == nil || c.removed || !MatchService(*c.svc, r.svc) {
			continue
		}
		r.matched = true
		switch {
		case mode == EditRemove && part == MasterEntry:
			c.removed = true
		case mode == EditComment:
			c.comment = true
		case mode == EditRemove:
			// The entry is written anew even when it had no such -o.
			removeMasterParam(c.svc, r.item)
			c.changed = true
		case part == MasterEntry:
			e := r.entry
			e.File, e.Line = c.svc.File, c.svc.Line
			*c.svc, c.changed = e, true
		case part == MasterField:
			setMasterField(c.svc, r.item, r.value)
			c.changed = true
		default:
			setMasterParam(c.svc, r.item, r.value)
			c.changed = true
		}
	}
	if !r.matched && part == MasterEntry && mode == EditSet {
		e := r.entry
		*chunks = append(*chunks, &masterChunk{svc: &e, changed: true})
		r.matched = true
	}
}

func setMasterField(s *Service, field, value string) {
	switch field {
	case "service":
		s.Name = value
	case "type":
		s.Type = value
	case "private":
		s.Private = value
	case "unprivileged":
		s.Unpriv = value
	case "chroot":
		s.Chroot = value
	case "wakeup":
		s.Wakeup = value
	case "process_limit":
		s.Maxproc = value
	default:
		words := strings.Fields(value)
		s.Command = words[0]
		s.setArgs(words[1:])
	}
}

// optionName is the name an Argv item sets, if it is a daemon option
// with a value ("-o foo" sets nothing).
func optionName(item string) (string, bool) {
	if !isOptionItem(item) {
		return "", false
	}
	name, _, ok := strings.Cut(item[3:], "=")
	return name, ok
}

// setMasterParam replaces -o name=... in place, or adds it after the
// daemon options.
func setMasterParam(s *Service, name, value string) {
	argv := append([]string(nil), s.Argv...)
	item := "-o " + name + "=" + value
	done := false
	for i, a := range argv {
		if n, ok := optionName(a); ok && n == name {
			argv[i], done = item, true
		}
	}
	if !done {
		at := 0
		for at < len(argv) && strings.HasPrefix(argv[at], "-") {
			at++
		}
		argv = append(argv[:at], append([]string{item}, argv[at:]...)...)
	}
	s.setArgs(strings.Fields(strings.Join(argv, " ")))
}

// removeMasterParam drops every -o name=...
func removeMasterParam(s *Service, name string) {
	var argv []string
	for _, a := range s.Argv {
		if n, ok := optionName(a); ok && n == name {
			continue
		}
		argv = append(argv, a)
	}
	s.setArgs(strings.Fields(strings.Join(argv, " ")))
}

// joinMasterChunks writes master.cf back. A replaced entry (-M) takes the
// place of its first line; an entry with a changed field or parameter
// (-F, -P) is written where it ended, after the comments inside it, as
// Postfix does.
func joinMasterChunks(chunks []*masterChunk, part MasterPart) string {
	var b strings.Builder
	newline := func() {
		if s := b.String(); s != "" && !strings.HasSuffix(s, "\n") {
			b.WriteByte('\n')
		}
	}
	for _, c := range chunks {
		if !c.changed && !c.removed && !c.comment {
			for _, l := range c.lines {
				b.WriteString(l)
			}
			continue
		}
		entry := ""
		if c.changed && !c.removed {
			entry = c.svc.Format(true) + "\n"
		}
		if len(c.lines) == 0 || part == MasterEntry && entry != "" {
			newline()
			b.WriteString(entry)
			entry = ""
		}
		for i, l := range c.lines {
			switch {
			case !c.isEntry[i]:
				b.WriteString(l)
			case c.comment && !c.removed && !c.changed:
				b.WriteString("#" + l)
			}
		}
		if entry != "" {
			newline()
			b.WriteString(entry)
		}
	}
	return b.String()
}
