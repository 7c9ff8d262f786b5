package maps

// The on-disk format of postdove's indexed tables (hash, btree, lmdb, cdb):
// a constant hash file in the spirit of D. J. Bernstein's cdb, read through
// mmap, written once and atomically replaced.
//
//	header   40 bytes: magic "PDIDX\x00\x01\x00", record count, slot
//	         count (a power of two), offset of the slot table, file size;
//	         all little-endian uint64
//	records  uvarint key length, uvarint value length, key, value; in
//	         file order (insertion order; sorted by key for btree)
//	slots    slot count * 16 bytes: FNV-1a 64 hash of the key, record
//	         offset (0 = empty); open addressing with linear probing
//
// Keys are stored as given (postmap folds them first unless -f).

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"postdove/pkg/syserr"
	"sort"
	"syscall"
)

const (
	indexMagic     = "PDIDX\x00\x01\x00"
	indexHeaderLen = 40
	indexSlotLen   = 16
)

// ErrNotIndex says a file is not in postdove's index format (for example a
// Berkeley DB file left by Postfix).
var ErrNotIndex = errors.New("not a postdove index file")

// ErrCorrupt says an index file is damaged (truncated, bad offsets).
var ErrCorrupt = errors.New("index file is corrupted")

func fnv64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// Index is an opened, memory-mapped index file.
type Index struct {
	data   []byte
	nrec   uint64
	nslots uint64
	slots  uint64
	mapped bool
}

// mapFile maps the regular file at path read-only. A file shorter than min
// gets short's error instead (the file is open for it to look at).
func mapFile(path string, min int64, short func(f *os.File, size int64) error) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, syscall.EISDIR
	}
	size := st.Size()
	if size < min {
		return nil, short(f, size)
	}
	if size != int64(int(size)) {
		return nil, ErrCorrupt
	}
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}

// OpenIndex maps an index file and checks its header.
func OpenIndex(path string) (*Index, error) {
	data, err := mapFile(path, indexHeaderLen, func(f *os.File, size int64) error {
		if size >= 8 {
			var m [8]byte
			if _, err := f.ReadAt(m[:], 0); err == nil && string(m[:]) == indexMagic {
				return ErrCorrupt
			}
		}
		return ErrNotIndex
	})
	if err != nil {
		return nil, err
	}
	ix := &Index{data: data, mapped: true}
	if err := ix.check(); err != nil {
		ix.Close()
		return nil, err
	}
	return ix, nil
}

func (ix *Index) check() error {
	d := ix.data
	if string(d[:8]) != indexMagic {
		return ErrNotIndex
	}
	ix.nrec = binary.LittleEndian.Uint64(d[8:])
	ix.nslots = binary.LittleEndian.Uint64(d[16:])
	ix.slots = binary.LittleEndian.Uint64(d[24:])
	total := binary.LittleEndian.Uint64(d[32:])
	n := uint64(len(d))
	if total != n || ix.slots < indexHeaderLen || ix.slots > n ||
		ix.nslots == 0 || ix.nslots&(ix.nslots-1) != 0 || ix.nslots > n/indexSlotLen ||
		ix.slots+ix.nslots*indexSlotLen != n || ix.nrec > ix.nslots {
		return ErrCorrupt
	}
	return nil
}

// Close unmaps the file.
func (ix *Index) Close() error {
	if ix.mapped && ix.data != nil {
		err := syscall.Munmap(ix.data)
		ix.data = nil
		return err
	}
	return nil
}

// record decodes the record at off; ok is false when it is out of bounds.
func (ix *Index) record(off uint64) (key, val []byte, next uint64, ok bool) {
	if off < indexHeaderLen || off >= ix.slots {
		return nil, nil, 0, false
	}
	d := ix.data[off:ix.slots]
	kl, n1 := binary.Uvarint(d)
	if n1 <= 0 {
		return nil, nil, 0, false
	}
	vl, n2 := binary.Uvarint(d[n1:])
	if n2 <= 0 {
		return nil, nil, 0, false
	}
	p := uint64(n1 + n2)
	if kl > uint64(len(d)) || vl > uint64(len(d)) || p+kl+vl > uint64(len(d)) {
		return nil, nil, 0, false
	}
	return d[p : p+kl], d[p+kl : p+kl+vl], off + p + kl + vl, true
}

// Get returns the value stored under key. The slice points into the
// mapping and is valid until Close.
func (ix *Index) Get(key []byte) (val []byte, found bool, err error) {
	h := fnv64(key)
	mask := ix.nslots - 1
	i := h & mask
	for probes := uint64(0); probes < ix.nslots; probes++ {
		s := ix.data[ix.slots+i*indexSlotLen:]
		off := binary.LittleEndian.Uint64(s[8:])
		if off == 0 {
			return nil, false, nil
		}
		if binary.LittleEndian.Uint64(s) == h {
			k, v, _, ok := ix.record(off)
			if !ok {
				return nil, false, ErrCorrupt
			}
			if bytes.Equal(k, key) {
				return v, true, nil
			}
		}
		i = (i + 1) & mask
	}
	return nil, false, nil
}

// Each calls fn for every record in file order until fn returns false.
func (ix *Index) Each(fn func(key, val []byte) bool) error {
	off := uint64(indexHeaderLen)
	for n := uint64(0); n < ix.nrec; n++ {
		k, v, next, ok := ix.record(off)
		if !ok {
			return ErrCorrupt
		}
		if !fn(k, v) {
			return nil
		}
		off = next
	}
	return nil
}

// Len is the number of records.
func (ix *Index) Len() int { return int(ix.nrec) }

// DupPolicy says what a Builder does with a key it already has.
type DupPolicy int

const (
	DupKeepFirst DupPolicy = iota // the first value wins (Postfix's default)
	DupReplace                    // the last value wins (postmap -r)
)

type brec struct {
	koff, klen, vlen uint32
	dead             bool
}

// Builder collects the entries of an indexed table and writes the file.
// It copies keys and values into one arena (no allocation per entry) and
// finds duplicates as they are added, through an open-addressing table.
type Builder struct {
	arena  []byte
	recs   []brec
	table  []int32  // record index + 1; 0 = empty
	hashes []uint32 // low bits of each slot's key hash
	live   int
	// Dups decides duplicates; Dup, when set, is told of each duplicate
	// key as it is added (before the policy applies).
	Dups DupPolicy
	Dup  func(key []byte)
	// Sorted writes records in key order (btree).
	Sorted bool
}

// ErrTooLarge is returned when a table exceeds the format's 4 GB arena.
var ErrTooLarge = errors.New("table too large")

func (b *Builder) grow() {
	n := len(b.table) * 2
	if n == 0 {
		n = 1024
	}
	old, oldh := b.table, b.hashes
	b.table, b.hashes = make([]int32, n), make([]uint32, n)
	mask := uint64(n - 1)
	for i, t := range old {
		if t == 0 {
			continue
		}
		h := fnv64(b.key(&b.recs[t-1]))
		j := h & mask
		for b.table[j] != 0 {
			j = (j + 1) & mask
		}
		b.table[j], b.hashes[j] = t, oldh[i]
	}
}

// Add appends one entry, applying the duplicate policy.
func (b *Builder) Add(key, val []byte) error {
	if len(b.arena)+len(key)+len(val) > 1<<32-1 || len(b.recs) >= 1<<31-2 {
		return ErrTooLarge
	}
	if (b.live+1)*2 > len(b.table) {
		b.grow()
	}
	h := fnv64(key)
	mask := uint64(len(b.table) - 1)
	j := h & mask
	for {
		t := b.table[j]
		if t == 0 {
			break
		}
		if b.hashes[j] == uint32(h) && bytes.Equal(b.key(&b.recs[t-1]), key) {
			if b.Dup != nil {
				b.Dup(key)
			}
			if b.Dups != DupReplace {
				return nil
			}
			b.recs[t-1].dead = true
			b.live--
			break
		}
		j = (j + 1) & mask
	}
	off := len(b.arena)
	b.arena = append(b.arena, key...)
	b.arena = append(b.arena, val...)
	b.recs = append(b.recs, brec{koff: uint32(off), klen: uint32(len(key)), vlen: uint32(len(val))})
	b.table[j], b.hashes[j] = int32(len(b.recs)), uint32(h)
	b.live++
	return nil
}

// Len is the number of distinct entries.
func (b *Builder) Len() int { return b.live }

func (b *Builder) key(r *brec) []byte { return b.arena[r.koff : r.koff+r.klen] }

func slotCount(n int) uint64 {
	s := uint64(8)
	for s < uint64(n)*2 {
		s <<= 1
	}
	return s
}

// resolve returns the live records in output order.
func (b *Builder) resolve() []int32 {
	live := make([]int32, 0, b.live)
	for i := range b.recs {
		if !b.recs[i].dead {
			live = append(live, int32(i))
		}
	}
	if b.Sorted {
		sort.Slice(live, func(x, y int) bool {
			return bytes.Compare(b.key(&b.recs[live[x]]), b.key(&b.recs[live[y]])) < 0
		})
	}
	return live
}

// WriteFile writes the table to path atomically: a temporary file in the
// same folder, fsync, chmod/chown as asked, rename, fsync of the folder.
// uid/gid < 0 leave the owner alone.
func (b *Builder) WriteFile(path string, mode os.FileMode, uid, gid int) error {
	live := b.resolve()
	nslots := slotCount(len(live))
	slots := make([]byte, nslots*indexSlotLen)
	mask := nslots - 1

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	w.Write(make([]byte, indexHeaderLen))
	off := uint64(indexHeaderLen)
	var vb [2 * binary.MaxVarintLen64]byte
	for _, li := range live {
		r := &b.recs[li]
		k := b.key(r)
		h := fnv64(k)
		j := h & mask
		for binary.LittleEndian.Uint64(slots[j*indexSlotLen+8:]) != 0 {
			j = (j + 1) & mask
		}
		binary.LittleEndian.PutUint64(slots[j*indexSlotLen:], h)
		binary.LittleEndian.PutUint64(slots[j*indexSlotLen+8:], off)
		n := binary.PutUvarint(vb[:], uint64(r.klen))
		n += binary.PutUvarint(vb[n:], uint64(r.vlen))
		w.Write(vb[:n])
		w.Write(b.arena[r.koff : r.koff+r.klen+r.vlen])
		off += uint64(n) + uint64(r.klen) + uint64(r.vlen)
	}
	slotsOff := off
	w.Write(slots)
	if err := w.Flush(); err != nil {
		return err
	}
	var hdr [indexHeaderLen]byte
	copy(hdr[:], indexMagic)
	binary.LittleEndian.PutUint64(hdr[8:], uint64(len(live)))
	binary.LittleEndian.PutUint64(hdr[16:], nslots)
	binary.LittleEndian.PutUint64(hdr[24:], slotsOff)
	binary.LittleEndian.PutUint64(hdr[32:], slotsOff+uint64(len(slots)))
	if _, err := tmp.WriteAt(hdr[:], 0); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if uid >= 0 || gid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// IndexError words an index failure the way Postfix does ("open database
// FILE: REASON"); errors.Is still sees the cause.
func IndexError(path string, err error) error {
	return &dbError{path: path, err: err}
}

type dbError struct {
	path string
	err  error
}

func (e *dbError) Error() string {
	reason := syserr.Text(e.err)
	switch {
	case errors.Is(e.err, ErrCorrupt):
		reason = e.err.Error()
	case errors.Is(e.err, ErrNotIndex):
		// Postfix's word for a file its library cannot read
		reason = syserr.Text(syscall.EINVAL)
	}
	return "open database " + e.path + ": " + reason
}

func (e *dbError) Unwrap() error { return e.err }

// NeedsRebuild says err is about a table file that exists but cannot be
// read (a format neither postdove's nor Berkeley DB's, a damaged file, a
// file of the wrong type): running postmap or postalias on its source
// fixes it.
func NeedsRebuild(err error) bool {
	return errors.Is(err, ErrNotIndex) || errors.Is(err, ErrCorrupt) || errors.Is(err, syscall.EINVAL)
}
