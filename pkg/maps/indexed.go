package maps

// The indexed table types (hash, btree, lmdb, cdb), built by postmap from a
// source file into FILE.db, FILE.lmdb or FILE.cdb, and texthash, which
// reads the source file directly.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"postdove/pkg/syserr"
	"time"
)

var indexSuffixes = map[string]string{
	"hash":  ".db",
	"btree": ".db",
	"lmdb":  ".lmdb",
	"cdb":   ".cdb",
}

// IndexSuffix is the suffix postmap adds to a source file name for an
// indexed type; ok is false for types that postmap cannot build.
func IndexSuffix(typ string) (suffix string, ok bool) {
	suffix, ok = indexSuffixes[typ]
	return
}

// SortedType says whether a type keeps its keys in order (btree).
func SortedType(typ string) bool { return typ == "btree" }

func init() {
	for typ, suf := range indexSuffixes {
		Register(typ, func(name string, opts Options) (Table, error) {
			return openIndexed(typ, name, suf, opts)
		})
	}
	Register("texthash", openTexthash)
}

// indexTable is an opened index file.
type indexTable struct {
	ix   *Index
	fold bool
}

func (t *indexTable) Lookup(key string) (string, bool, error) {
	if t.fold {
		key = foldString(key)
	}
	k := []byte(key)
	v, ok, err := t.ix.Get(k)
	if err == nil && !ok {
		// postmap -N stores keys with their terminating NUL
		v, ok, err = t.ix.Get(append(k, 0))
	}
	if err != nil || !ok {
		return "", false, err
	}
	return string(TrimNul(v)), true, nil
}

// TrimNul drops the terminating NUL that postmap -N stores.
func TrimNul(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == 0 {
		return b[:n-1]
	}
	return b
}

func (t *indexTable) Close() error { return t.ix.Close() }

// GetRaw looks key up as given (no case folding); the value points into
// the mapped file and is valid until Close.
func (t *indexTable) GetRaw(key []byte) ([]byte, bool, error) { return t.ix.Get(key) }

// RawGetter is implemented by tables that can look up a byte key without
// copying or folding it (the indexed types): postmap -q - uses it.
type RawGetter interface {
	GetRaw(key []byte) (value []byte, found bool, err error)
}

// Each visits every entry in file order (postmap -s).
func (t *indexTable) Each(fn func(key, value string) bool) error {
	return t.ix.Each(func(k, v []byte) bool { return fn(string(TrimNul(k)), string(TrimNul(v))) })
}

// Sequencer is implemented by tables that can list their entries
// (postmap -s).
type Sequencer interface {
	Each(fn func(key, value string) bool) error
}

// staleAge is how long a source file must have been left alone before a
// newer source than index is reported (Postfix allows for a rebuild in
// progress).
const staleAge = 100 * time.Second

// CheckStale warns, as Postfix does, when the source file is newer than
// the index built from it.
func CheckStale(source, index string, warn func(string)) {
	if warn == nil {
		return
	}
	si, err1 := os.Stat(source)
	ii, err2 := os.Stat(index)
	if err1 != nil || err2 != nil {
		return
	}
	if si.ModTime().Unix() > ii.ModTime().Unix() && time.Since(si.ModTime()) > staleAge {
		warn(fmt.Sprintf("database %s is older than source file %s", index, source))
	}
}

func openIndexed(typ, name, suffix string, opts Options) (Table, error) {
	path := name + suffix
	ix, err := OpenIndex(path)
	if errors.Is(err, ErrNotIndex) && suffix == ".db" {
		// A Berkeley DB file left by Postfix's postmap or postalias.
		var t Table
		if t, err = openBDBTable(path, typ, opts); err == nil {
			CheckStale(name, path, opts.Warn)
			return t, nil
		}
		if errors.Is(err, ErrNotBDB) {
			err = ErrNotIndex
		}
	}
	if err != nil {
		return nil, IndexError(path, err)
	}
	CheckStale(name, path, opts.Warn)
	t := &indexTable{ix: ix, fold: opts.FoldCase}
	if suffix == ".cdb" {
		return cdbTable{t}, nil // cdb cannot be listed, as in Postfix
	}
	return t, nil
}

// EachIndexed calls fn for every entry of the index file at path until fn
// returns false: postdove's format as stored, or a Berkeley DB file left
// by Postfix, whose keys and values lose their terminating NUL (postdove's
// postmap stores none unless -N), so that postmap -i and -d carry such a
// file over into postdove's format. Errors are worded by IndexError.
func EachIndexed(path string, fn func(key, val []byte) bool) error {
	ix, err := OpenIndex(path)
	if errors.Is(err, ErrNotIndex) {
		var db *BDB
		if db, err = OpenBDB(path); err == nil {
			defer db.Close()
			err = db.Each(func(k, v []byte) bool { return fn(TrimNul(k), TrimNul(v)) })
		} else if errors.Is(err, ErrNotBDB) {
			err = ErrNotIndex
		}
		if err != nil {
			return IndexError(path, err)
		}
		return nil
	}
	if err != nil {
		return IndexError(path, err)
	}
	defer ix.Close()
	if err := ix.Each(fn); err != nil {
		return IndexError(path, err)
	}
	return nil
}

// cdbTable is an index without the sequence operation.
type cdbTable struct{ t *indexTable }

func (c cdbTable) Lookup(key string) (string, bool, error) { return c.t.Lookup(key) }
func (c cdbTable) GetRaw(key []byte) ([]byte, bool, error) { return c.t.GetRaw(key) }
func (c cdbTable) Close() error                            { return c.t.Close() }

// textTable is a source file read into memory (texthash).
type textTable struct {
	m     map[string]string
	order []string
	fold  bool
}

func (t *textTable) Lookup(key string) (string, bool, error) {
	if t.fold {
		key = foldString(key)
	}
	v, ok := t.m[key]
	return v, ok, nil
}

func (t *textTable) Close() error { return nil }

func (t *textTable) Each(fn func(key, value string) bool) error {
	for _, k := range t.order {
		if !fn(k, t.m[k]) {
			break
		}
	}
	return nil
}

func openTexthash(name string, opts Options) (Table, error) {
	return readTextTable(name, opts)
}

// readTextTable reads a postmap(1) source file into memory; keys fold
// unless opts.FoldCase is false; the first of duplicate keys wins.
func readTextTable(name string, opts Options) (*textTable, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, openError(name, err)
	}
	defer f.Close()
	warn := warnFunc(opts)
	t := &textTable{m: map[string]string{}, fold: opts.FoldCase}
	sr := NewSourceReader(f, name, warn)
	for {
		line, no, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: read error: %s", name, syserr.Text(err))
		}
		k, v, ok := SplitKeyValue(line)
		if !ok {
			warn(fmt.Sprintf("%s, line %d: expected format: key whitespace value -- ignoring this line", name, no))
			continue
		}
		key := string(k)
		if opts.FoldCase {
			key = foldString(key)
		}
		if _, dup := t.m[key]; dup {
			warn(fmt.Sprintf("%s, line %d: duplicate entry: %q", name, no, key))
			continue
		}
		t.m[key] = string(v)
		t.order = append(t.order, key)
	}
	return t, nil
}
