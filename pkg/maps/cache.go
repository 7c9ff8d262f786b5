package maps

// The table layer of the daemons (local, cleanup, address resolution):
// each table is opened once and opened again when the file behind it
// changes, so postmap, postalias and newaliases take effect without a
// reload, as Postfix's daemons notice a changed table.

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
)

// Cache opens tables on first use and keeps them open. Before each lookup
// it compares the file behind the table (the index file of an indexed
// type, the source of texthash, cidr, regexp and pcre) with what it was
// when the table was opened: inode, size, mtime and ctime. A table that
// cannot be opened or read is an error for the caller to treat as a
// temporary failure, never as "not found"; it is tried again at the next
// lookup. A Cache is safe for concurrent use.
type Cache struct {
	opts Options
	// errorf receives Postfix's "error:" line for a table that cannot be
	// opened, once for each state of its file.
	errorf func(msg string)

	mu sync.Mutex
	m  map[string]*cacheEntry
}

type cacheEntry struct {
	mu    sync.RWMutex
	file  string
	t     Table
	stamp stamp
	// failed says the last open failed, with the file's stamp then.
	failed      bool
	failedStamp stamp
}

// NewCache returns a cache that opens tables with opts. errorf, when not
// nil, is told of each failure to open a table (without the "error: "
// prefix), e.g. maillog's Logger.Error.
func NewCache(opts Options, errorf func(msg string)) *Cache {
	return &Cache{opts: opts, errorf: errorf, m: map[string]*cacheEntry{}}
}

// UnavailableError is a table that cannot be opened.
type UnavailableError struct {
	Spec string // "hash:/etc/aliases"
	Err  error  // why, e.g. "open database /etc/aliases.db: No such file or directory"
}

func (e *UnavailableError) Error() string { return e.Spec + " is unavailable. " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Lookup looks key up in the table spec ("type:name"), opening it or
// opening it again as needed. An error means the table could not be
// consulted (an *UnavailableError when it could not be opened).
func (c *Cache) Lookup(spec, key string) (string, bool, error) {
	e := c.entry(spec)
	stamp := fileStamp(e.file)
	e.mu.RLock()
	if e.t != nil && e.stamp == stamp {
		v, ok, err := e.t.Lookup(key)
		e.mu.RUnlock()
		return v, ok, err
	}
	e.mu.RUnlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.t == nil || e.stamp != stamp {
		if e.t != nil {
			// Lookups hold the read lock: nobody uses the old table now.
			e.t.Close()
			e.t = nil
		}
		t, err := Open(spec, c.opts)
		if err != nil {
			if c.errorf != nil && (!e.failed || e.failedStamp != stamp) {
				c.errorf(err.Error())
			}
			e.failed, e.failedStamp = true, stamp
			return "", false, &UnavailableError{Spec: spec, Err: err}
		}
		e.t, e.stamp, e.failed = t, stamp, false
	}
	return e.t.Lookup(key)
}

func (c *Cache) entry(spec string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[spec]
	if !ok {
		e = &cacheEntry{file: TableFile(spec)}
		c.m[spec] = e
	}
	return e
}

// Close closes every open table.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for spec, e := range c.m {
		e.mu.Lock()
		if e.t != nil {
			e.t.Close()
			e.t = nil
		}
		e.mu.Unlock()
		delete(c.m, spec)
	}
}

// TableFile is the file behind a table spec: the index file of an indexed
// type, the file itself for the types read from their source, "" for
// types without a file (inline, static, unix).
func TableFile(spec string) string {
	typ, name := SplitSpec(spec, "hash")
	for typ == "proxy" {
		typ, name = SplitSpec(name, "hash")
	}
	if suffix, ok := IndexSuffix(typ); ok {
		return name + suffix
	}
	switch typ {
	case "inline", "static", "unix":
		return ""
	}
	return name
}

// stamp identifies one version of a file: device and inode, size, mtime
// and ctime (a chmod or chown changes the last). The zero stamp is a
// missing file, or no file at all.
type stamp struct {
	dev, ino, size uint64
	mtime, ctime   syscall.Timespec
}

func fileStamp(path string) stamp {
	var st syscall.Stat_t
	if path == "" || syscall.Stat(path, &st) != nil {
		return stamp{}
	}
	return stamp{uint64(st.Dev), st.Ino, uint64(st.Size), st.Mtim, st.Ctim}
}

// RebuildAdvice is what to run to fix a table that err says cannot be
// read, e.g. `run "postalias /etc/aliases"` (tool is postmap or
// postalias); "" when rebuilding would not help (a missing file is
// reported as it is, as Postfix does).
func RebuildAdvice(spec, tool string, err error) string {
	if !NeedsRebuild(err) {
		return ""
	}
	typ, name := SplitSpec(spec, "hash")
	for typ == "proxy" {
		typ, name = SplitSpec(name, "hash")
	}
	if _, indexed := IndexSuffix(typ); !indexed {
		return ""
	}
	arg := name
	if typ != "hash" || strings.HasPrefix(name, "-") {
		arg = typ + ":" + name
	}
	return fmt.Sprintf("%s cannot be read; run \"%s %s\" to rebuild it", TableFile(spec), tool, arg)
}
