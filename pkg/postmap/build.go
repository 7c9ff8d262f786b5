package postmap

import (
	"errors"
	"fmt"
	"io"
	"os"
	"postdove/pkg/syserr"
	"strconv"
	"syscall"
	"time"

	"postdove/pkg/aliases"
	"postdove/pkg/maps"
)

// fileOwner returns the owner of a file.
func fileOwner(st os.FileInfo) (uid, gid int) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Uid), int(s.Gid)
	}
	return -1, -1
}

// becomeOwner makes root act as the owner of the source file while it
// writes the index, as Postfix does (unless -o): the index gets that
// owner, and a folder the owner cannot write to refuses the file. The
// returned function restores root.
func becomeOwner(uid, gid int) (restore func(), err error) {
	if os.Geteuid() != 0 || (uid == 0 && gid == 0) || uid < 0 {
		return func() {}, nil
	}
	if err := syscall.Setegid(gid); err != nil {
		return nil, err
	}
	if err := syscall.Seteuid(uid); err != nil {
		syscall.Setegid(0)
		return nil, err
	}
	return func() {
		syscall.Seteuid(0)
		syscall.Setegid(0)
	}, nil
}

// build creates the index for one TYPE:FILE argument (or, with -i, adds
// stdin's entries to it).
func (r *runner) build(spec string) error {
	typ, name, path, err := r.indexPath(spec)
	if err != nil {
		return err
	}
	b := &maps.Builder{Sorted: maps.SortedType(typ)}
	if r.f.Replace {
		b.Dups = maps.DupReplace
	}
	if !r.f.Replace && !r.f.NoDupWarn {
		b.Dup = func(k []byte) { r.warn(fmt.Sprintf("%s: duplicate entry: %s", path, quoteKey(k))) }
	}
	mode := os.FileMode(0644)
	uid, gid := -1, -1
	var src io.Reader
	srcName := name
	if r.f.Incremental {
		src, srcName = r.stdin, "stdin"
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
			uid, gid = fileOwner(st)
		}
		err := maps.EachIndexed(path, func(k, v []byte) bool { return b.Add(k, v) == nil })
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fatalf("%v", err)
		}
	} else {
		fh, err := os.Open(name)
		if err != nil {
			return fatalf("open %s: %s", name, syserr.Text(err))
		}
		defer fh.Close()
		st, err := fh.Stat()
		if err != nil {
			return fatalf("fstat %s: %s", name, syserr.Text(err))
		}
		if !r.f.DefaultPerms {
			mode = st.Mode().Perm()
		}
		if !r.f.KeepOwner {
			restore, err := becomeOwner(fileOwner(st))
			if err != nil {
				return fatalf("set privileges: %s", syserr.Text(err))
			}
			defer restore()
		}
		src = fh
	}
	if err := r.readSource(b, src, srcName); err != nil {
		return err
	}
	if r.alias && !r.f.Incremental {
		r.add(b, []byte("@"), []byte("@"))
		r.add(b, []byte("YP_LAST_MODIFIED"), strconv.AppendInt(nil, time.Now().Unix(), 10))
		r.add(b, []byte("YP_MASTER_NAME"), []byte(r.conf.hostname))
	}
	if err := b.WriteFile(path, mode, uid, gid); err != nil {
		return writeError(path, err)
	}
	return nil
}

// add stores one entry, with terminating NULs under -N.
func (r *runner) add(b *maps.Builder, k, v []byte) error {
	if r.f.Nul {
		k = append(k[:len(k):len(k)], 0)
		v = append(v[:len(v):len(v)], 0)
	}
	return b.Add(k, v)
}

// readSource adds the entries of one source text to b.
func (r *runner) readSource(b *maps.Builder, src io.Reader, name string) error {
	sr := maps.NewSourceReader(src, name, r.warn)
	for {
		line, no, err := sr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, syscall.EISDIR) {
				return nil // Postfix reads a folder as an empty file
			}
			return fatalf("%s: read error: %s", name, syserr.Text(err))
		}
		var k, v []byte
		if r.alias {
			n, val, err := aliases.ParseEntry(string(line))
			if err != nil {
				r.warn(fmt.Sprintf("%s, line %d: %v", name, no, err))
				continue
			}
			k, v = []byte(n), []byte(val)
		} else {
			var ok bool
			k, v, ok = maps.SplitKeyValue(line)
			if !ok {
				r.warn(fmt.Sprintf("%s, line %d: expected format: key whitespace value", name, no))
				continue
			}
		}
		if !r.f.NoFold {
			k = maps.FoldKey(k)
		}
		if err := r.add(b, k, v); err != nil {
			return fatalf("%s: %v", name, err)
		}
	}
}

// Newaliases rebuilds every table listed in alias_database, as
// newaliases (sendmail -bi) does; it prints nothing on success and
// returns the exit status.
func Newaliases(configDir string, stderr io.Writer) int {
	conf, err := loadSettings(configDir)
	if err != nil {
		fmt.Fprintf(stderr, "newaliases: fatal: %v\n", err)
		return 1
	}
	if len(conf.aliasDatabase) == 0 {
		return 0
	}
	f := Flags{ConfigDir: configDir, Maps: conf.aliasDatabase}
	return Run("postalias", f, nil, io.Discard, stderr)
}
