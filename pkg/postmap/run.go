package postmap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"postdove/pkg/syserr"

	"postdove/pkg/maillog"
	"postdove/pkg/maps"
)

// fatal is an error that ends the program with "prog: fatal: msg" and
// exit status 1.
type fatal struct{ msg string }

func (e *fatal) Error() string { return e.msg }

func fatalf(format string, a ...any) error { return &fatal{fmt.Sprintf(format, a...)} }

// runner holds one invocation of postmap or postalias.
type runner struct {
	prog    string
	alias   bool
	f       *Flags
	conf    settings
	stdin   io.Reader
	out     *bufio.Writer
	stderr  io.Writer
	tables  map[string]maps.Table
	scratch []byte
	nulKey  []byte
}

func (r *runner) warn(msg string) {
	r.out.Flush()
	// As in Postfix's logging, bytes that are not printable ASCII show as '?'.
	fmt.Fprintf(r.stderr, "%s: warning: %s\n", r.prog, maillog.Sanitize(msg, false))
}

// Run carries out one postmap (prog "postmap") or postalias (prog
// "postalias") invocation and returns the exit status.
func Run(prog string, f Flags, stdin io.Reader, stdout, stderr io.Writer) int {
	r := &runner{prog: prog, alias: prog != "postmap", f: &f, stdin: stdin,
		out: bufio.NewWriterSize(stdout, 64<<10), stderr: stderr, tables: map[string]maps.Table{}}
	code, err := r.run()
	r.out.Flush()
	for _, t := range r.tables {
		t.Close()
	}
	if err != nil {
		var fe *fatal
		if !errors.As(err, &fe) {
			err = &fatal{err.Error()}
		}
		fmt.Fprintf(stderr, "%s: fatal: %s\n", prog, err)
		return 1
	}
	return code
}

func (r *runner) run() (int, error) {
	f := r.f
	modes := 0
	for _, b := range []bool{f.Show, f.HasQuery, f.HasDelete} {
		if b {
			modes++
		}
	}
	if modes > 1 {
		return 1, fatalf("specify only one of -s -q or -d")
	}
	conf, err := loadSettings(f.ConfigDir)
	if err != nil {
		return 1, err
	}
	r.conf = conf
	if len(f.Maps) == 0 {
		return 1, fatalf("%s", usage(r.prog))
	}
	switch {
	case f.HasQuery && f.Query == "-":
		return r.queryStdin()
	case f.HasQuery:
		return r.query(f.Query)
	case f.HasDelete:
		return r.deleteKey(f.Delete)
	case f.Show:
		return r.show()
	}
	for _, spec := range f.Maps {
		if err := r.build(spec); err != nil {
			return 1, err
		}
	}
	return 0, nil
}

// split names a table's type and name, with default_database_type for a
// bare file name.
func (r *runner) split(spec string) (typ, name string) {
	return maps.SplitSpec(spec, r.conf.defaultType)
}

// open opens (once) the table named by spec for queries and listing.
func (r *runner) open(spec string) (maps.Table, error) {
	if t, ok := r.tables[spec]; ok {
		return t, nil
	}
	typ, name := r.split(spec)
	t, err := maps.Open(typ+":"+name, maps.Options{FoldCase: !r.f.NoFold, Warn: r.warn})
	if errors.Is(err, maps.ErrUnsupported) {
		return nil, fatalf("unsupported dictionary type: %s", typ)
	}
	if err != nil {
		return nil, fatalf("%v", err)
	}
	r.tables[spec] = t
	return t, nil
}

// lookup searches the tables in command-line order.
func (r *runner) lookup(key []byte) ([]byte, bool, error) {
	for _, spec := range r.f.Maps {
		t, err := r.open(spec)
		if err != nil {
			return nil, false, err
		}
		var v []byte
		var found bool
		if raw, ok := t.(maps.RawGetter); ok {
			k := key
			if !r.f.NoFold {
				r.scratch = append(r.scratch[:0], key...)
				k = maps.FoldKey(r.scratch)
			}
			v, found, err = r.getRaw(raw, k)
		} else {
			var s string
			s, found, err = t.Lookup(string(key))
			v = []byte(s)
		}
		if err != nil {
			typ, name := r.split(spec)
			return nil, false, fatalf("table %s:%s: query error: %v", typ, name, err)
		}
		if found {
			return v, true, nil
		}
	}
	return nil, false, nil
}

// getRaw looks key up without (-n), with (-N) or, by default, without
// and then with a terminating NUL, as Postfix's -n/-N work.
func (r *runner) getRaw(raw maps.RawGetter, k []byte) ([]byte, bool, error) {
	if !r.f.Nul {
		v, found, err := raw.GetRaw(k)
		if found || err != nil || r.f.NoNul {
			return maps.TrimNul(v), found, err
		}
	}
	n := len(k)
	r.nulKey = append(append(r.nulKey[:0], k[:n:n]...), 0)
	v, found, err := raw.GetRaw(r.nulKey)
	return maps.TrimNul(v), found, err
}

func (r *runner) query(key string) (int, error) {
	v, found, err := r.lookup([]byte(key))
	if err != nil {
		return 1, err
	}
	if !found {
		return 1, nil
	}
	r.out.Write(v)
	r.out.WriteByte('\n')
	return 0, nil
}

// separator is what -s and -q - print between a key and its value.
func (r *runner) separator() string {
	if r.alias {
		return ":\t"
	}
	return "\t"
}

func (r *runner) queryStdin() (int, error) {
	in := bufio.NewReaderSize(r.stdin, 64<<10)
	sep := r.separator()
	code := 1
	var long []byte
	for {
		line, err := in.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = in.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
		}
		if len(line) > 0 || err == nil {
			v, found, lerr := r.lookup(line)
			if lerr != nil {
				return 1, lerr
			}
			if found {
				code = 0
				r.out.Write(line)
				r.out.WriteString(sep)
				r.out.Write(v)
				r.out.WriteByte('\n')
			}
		}
		if err == io.EOF {
			return code, nil
		}
		if err != nil {
			return 1, fatalf("read standard input: %v", err)
		}
	}
}

func (r *runner) show() (int, error) {
	sep := r.separator()
	for _, spec := range r.f.Maps {
		t, err := r.open(spec)
		if err != nil {
			return 1, err
		}
		seq, ok := t.(maps.Sequencer)
		if !ok {
			typ, name := r.split(spec)
			if suffix, ok := maps.IndexSuffix(typ); ok {
				name += suffix
			}
			return 1, fatalf("table %s:%s: sequence operation is not supported", typ, name)
		}
		err = seq.Each(func(k, v string) bool {
			r.out.WriteString(k)
			r.out.WriteString(sep)
			r.out.WriteString(v)
			r.out.WriteByte('\n')
			return true
		})
		if err != nil {
			typ, name := r.split(spec)
			return 1, fatalf("table %s:%s: %v", typ, name, err)
		}
	}
	return 0, nil
}

// indexPath checks that spec names a type postmap can build and returns
// the index file's path.
func (r *runner) indexPath(spec string) (typ, name, path string, err error) {
	typ, name = r.split(spec)
	suffix, ok := maps.IndexSuffix(typ)
	if !ok {
		for _, t := range maps.Types() {
			if t == typ {
				return "", "", "", fatalf("unsupported dictionary type: %s does not support bulk-mode creation.", typ)
			}
		}
		return "", "", "", fatalf("unsupported dictionary type: %s. Is the postfix-%s package installed?", typ, typ)
	}
	return typ, name, name + suffix, nil
}

// quoteKey renders a key the way Postfix's messages quote it.
func quoteKey(k []byte) string { return "\"" + string(k) + "\"" }

func (r *runner) deleteKey(key string) (int, error) {
	k := []byte(key)
	if !r.f.NoFold {
		k = maps.FoldKey(k)
	}
	code := 1
	for _, spec := range r.f.Maps {
		typ, _, path, err := r.indexPath(spec)
		if err != nil {
			return 1, err
		}
		b := &maps.Builder{Sorted: maps.SortedType(typ)}
		found := false
		err = maps.EachIndexed(path, func(ek, ev []byte) bool {
			if string(ek) == string(k) {
				found = true
				return true
			}
			return b.Add(ek, ev) == nil
		})
		if err != nil {
			return 1, fatalf("%v", err)
		}
		if !found {
			continue
		}
		code = 0
		st, err := os.Stat(path)
		if err != nil {
			return 1, fatalf("%v", maps.IndexError(path, err))
		}
		uid, gid := fileOwner(st)
		if err := b.WriteFile(path, st.Mode().Perm(), uid, gid); err != nil {
			return 1, writeError(path, err)
		}
	}
	return code, nil
}

func writeError(path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Op == "open" {
		return fatalf("open %s: %s", path, syserr.Text(pe.Err))
	}
	return fatalf("%s: write error: %s", path, syserr.Text(err))
}
