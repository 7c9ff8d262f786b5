package postconf

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"postdove/pkg/syserr"
	"strings"
)

// EditMode is what Edit does to main.cf.
type EditMode int

// The main.cf edits of postconf -e, -# and -X.
const (
	EditSet     EditMode = iota // -e name=value: replace in place, or append
	EditComment                 // -#: comment out the entry
	EditRemove                  // -X: delete the entry
)

// ParseAssignment parses "name = value" or "name=value" as -e takes it.
func ParseAssignment(s string) (name, value string, err error) {
	return splitNameValue(s)
}

// Edit changes main.cf in dir, keeping comments, order and the file's
// mode, and replaces it atomically. For EditSet each arg is name=value;
// otherwise a parameter name. Every entry for a name is changed; warn
// hears of names set more than once and of repeated requests.
func Edit(dir string, mode EditMode, args []string, warn func(string)) error {
	path := filepath.Join(dir, "main.cf")
	type change struct {
		name, value  string
		done, warned bool
	}
	var changes []*change
	byName := map[string]*change{}
	for _, a := range args {
		ch := &change{name: strings.TrimSpace(a)}
		if mode == EditSet {
			n, v, err := splitNameValue(a)
			if err != nil {
				return err
			}
			ch.name, ch.value = n, v
		}
		if old, ok := byName[ch.name]; ok {
			if mode == EditSet {
				warn(fmt.Sprintf("ignoring earlier request: '%s = %s'", old.name, old.value))
			}
			*old = *ch
			continue
		}
		byName[ch.name] = ch
		changes = append(changes, ch)
	}
	data, err := readForEdit(path)
	if err != nil {
		return err
	}
	phys := strings.SplitAfter(data, "\n")
	if phys[len(phys)-1] == "" {
		phys = phys[:len(phys)-1]
	}
	var out bytes.Buffer
	var cur *change // entry whose continuation lines we are in
	for _, raw := range phys {
		line := strings.TrimRight(raw, spaceChars)
		switch {
		case isFiller(line):
			// Comments and blank lines inside an entry stay where they are.
			out.WriteString(raw)
			continue
		case isSpace(line[0]):
			// continuation of the current entry
		default:
			cur = nil
			if name, _, err := splitNameValue(line); err == nil {
				if ch, ok := byName[name]; ok {
					cur = ch
					if ch.done && !ch.warned {
						warn(fmt.Sprintf("%s: multiple entries for \"%s\"", path, name))
						ch.warned = true
					}
					ch.done = true
					if mode == EditSet {
						out.WriteString(name + " = " + ch.value + "\n")
						continue
					}
				}
			}
		}
		if cur == nil {
			out.WriteString(raw)
			continue
		}
		switch mode {
		case EditComment:
			out.WriteString("#" + raw)
			if !strings.HasSuffix(raw, "\n") {
				out.WriteString("\n")
			}
		case EditRemove, EditSet:
			// dropped
		}
	}
	if mode == EditSet {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteString("\n")
		}
		for _, ch := range changes {
			if !ch.done {
				out.WriteString(ch.name + " = " + ch.value + "\n")
			}
		}
	}
	return WriteFileAtomic(path, out.Bytes())
}

// readForEdit reads a file postconf is about to rewrite; errors read like
// Postfix's ("open PATH.tmp: ...", "open PATH for reading: ...", "read
// PATH: Is a directory").
func readForEdit(path string) (string, error) {
	// Postfix creates PATH.tmp before it reads PATH.
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("open %s.tmp: %s", path, syserr.Text(err))
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %s for reading: %s", path, syserr.Text(err))
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return "", fmt.Errorf("read %s: %s", path, syserr.Text(err))
	}
	return string(data), nil
}

// WriteFileAtomic replaces path with data: a temporary file in the same
// directory, fsynced, renamed over path, keeping path's mode (0644 for a
// new file), then the directory is fsynced.
func WriteFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp")
	if err != nil {
		return fmt.Errorf("open %s: %s", path, syserr.Text(err))
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %s", path, syserr.Text(err))
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("rename %s: %s", path, syserr.Text(err))
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
