package maps

// Reading Berkeley DB hash and btree files, as Postfix's postmap and
// postalias write them (DB 4.x and 5.x on-disk format), read-only and in
// pure Go. The file is a sequence of pages of one size; page 0 is the
// metadata page.
//
//	every page   26-byte header: LSN (8), page number, previous and next
//	             page (uint32 each), entry count and free-area offset
//	             (uint16 each), tree level and page type (one byte each);
//	             then an array of uint16 item offsets
//	metadata     magic at offset 12 (0x061561 hash, 0x053162 btree) read in
//	             the file's byte order, which tells that order; page size at
//	             20; encryption at 24; last page at 32.
//	             hash: max_bucket, high_mask, low_mask at 72, 76, 80, the
//	             hash of a fixed string at 92, 32 "spare" page offsets at 96.
//	             btree: root page at 88.
//	hash page    items alternate key, value; an item runs from its offset
//	             to the previous item's (the page end for item 0); its first
//	             byte is its type: 1 data inline, 2 duplicates, 3 off-page
//	             (page number at 4, length at 8), 4 off-page duplicates.
//	             Bucket b is on page b + spares[ceil(log2(b+1))]; more pages
//	             of one bucket follow through the next-page link.
//	btree leaf   items alternate key, value: length (uint16), type (1 data,
//	             3 overflow: page number at 4, length at 8), data.
//	btree inner  items: length, type, pad, child page, record count, key;
//	             the first key on a page is smaller than every key.
//	overflow     the free-area offset is the length of the data on the
//	             page, which follows the header; pages chain by next link.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"runtime/debug"
	"syscall"
)

const (
	bdbHashMagic  = 0x061561
	bdbBtreeMagic = 0x053162

	bdbHeaderLen = 26

	bdbPageBtreeInternal = 3
	bdbPageBtreeLeaf     = 5
	bdbPageOverflow      = 7
	bdbPageHashUnsorted  = 2
	bdbPageHash          = 13

	bdbItemData      = 1
	bdbItemDuplicate = 2
	bdbItemOffpage   = 3
	bdbItemOffdup    = 4

	// bdbMaxDepth bounds a btree descent (real trees are a few levels).
	bdbMaxDepth = 64
)

// ErrNotBDB says a file is not a Berkeley DB hash or btree file.
var ErrNotBDB = errors.New("not a Berkeley DB hash or btree file")

// BDB is an opened Berkeley DB hash or btree file.
type BDB struct {
	data   []byte
	bo     binary.ByteOrder
	psize  uint32
	npages uint32
	btree  bool
	mapped bool

	// hash
	maxBucket, highMask, lowMask uint32
	spares                       [32]uint32
	// all holds every entry when the file was hashed with a function
	// other than DB's default: then buckets cannot be computed.
	all map[string][]byte

	// btree
	root uint32
}

// OpenBDB maps a Berkeley DB file; ErrNotBDB when it is none.
func OpenBDB(path string) (*BDB, error) {
	data, err := mapFile(path, 512, func(*os.File, int64) error { return ErrNotBDB })
	if err != nil {
		return nil, err
	}
	db, err := ParseBDB(data)
	if err != nil {
		syscall.Munmap(data)
		return nil, err
	}
	db.mapped = true
	return db, nil
}

// ParseBDB reads a Berkeley DB file held in memory.
func ParseBDB(data []byte) (_ *BDB, err error) {
	defer faultGuard(&err, debug.SetPanicOnFault(true))
	if len(data) < 512 {
		return nil, ErrNotBDB
	}
	db := &BDB{data: data}
	switch {
	case binary.LittleEndian.Uint32(data[12:]) == bdbHashMagic:
		db.bo = binary.LittleEndian
	case binary.BigEndian.Uint32(data[12:]) == bdbHashMagic:
		db.bo = binary.BigEndian
	case binary.LittleEndian.Uint32(data[12:]) == bdbBtreeMagic:
		db.bo, db.btree = binary.LittleEndian, true
	case binary.BigEndian.Uint32(data[12:]) == bdbBtreeMagic:
		db.bo, db.btree = binary.BigEndian, true
	default:
		return nil, ErrNotBDB
	}
	bo := db.bo
	db.psize = bo.Uint32(data[20:])
	if db.psize < 512 || db.psize > 65536 || db.psize&(db.psize-1) != 0 {
		return nil, ErrCorrupt
	}
	if data[24] != 0 {
		return nil, errors.New("encrypted Berkeley DB files are not supported")
	}
	if data[26]&1 != 0 {
		return nil, errors.New("Berkeley DB files with page checksums are not supported")
	}
	if uint64(len(data))%uint64(db.psize) != 0 {
		return nil, syscall.EINVAL // as Berkeley DB: size not a multiple of the page size
	}
	db.npages = uint32(min(uint64(len(data))/uint64(db.psize), 1<<32-1))
	if db.btree {
		db.root = bo.Uint32(data[88:])
		if db.root == 0 || db.root >= db.npages {
			return nil, ErrCorrupt
		}
		return db, nil
	}
	db.maxBucket = bo.Uint32(data[72:])
	db.highMask = bo.Uint32(data[76:])
	db.lowMask = bo.Uint32(data[80:])
	for i := range db.spares {
		db.spares[i] = bo.Uint32(data[96+4*i:])
	}
	if db.maxBucket > db.highMask || uint64(db.maxBucket) >= uint64(len(data)) {
		return nil, ErrCorrupt
	}
	if bdbHash([]byte("%$sniglet^&")) != bo.Uint32(data[92:]) {
		// Not DB's default hash function: read every entry once.
		db.all = map[string][]byte{}
		err := db.eachHash(func(k, v []byte) bool {
			if _, dup := db.all[string(k)]; !dup {
				db.all[string(k)] = bytes.Clone(v)
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return db, nil
}

// Close unmaps the file.
func (db *BDB) Close() error {
	if db.mapped && db.data != nil {
		err := syscall.Munmap(db.data)
		db.data = nil
		return err
	}
	return nil
}

// Btree says whether the file is a btree (else a hash) file.
func (db *BDB) Btree() bool { return db.btree }

// bdbHash is Berkeley DB's default hash function (32-bit FNV-1).
func bdbHash(b []byte) uint32 {
	var h uint32
	for _, c := range b {
		h *= 16777619
		h ^= uint32(c)
	}
	return h
}

// page returns page n, or nil when the file does not have it.
func (db *BDB) page(n uint32) []byte {
	if n == 0 || n >= db.npages {
		return nil
	}
	off := uint64(n) * uint64(db.psize)
	return db.data[off : off+uint64(db.psize)]
}

// pageHeader is the part of a page header the reader needs.
type pageHeader struct {
	next    uint32
	entries int
	hfOff   int
	typ     byte
}

func (db *BDB) header(p []byte) pageHeader {
	return pageHeader{
		next:    db.bo.Uint32(p[16:]),
		entries: int(db.bo.Uint16(p[20:])),
		hfOff:   int(db.bo.Uint16(p[22:])),
		typ:     p[25],
	}
}

// offset returns the offset of item i of page p, checked.
func (db *BDB) offset(p []byte, h pageHeader, i int) (int, error) {
	if i >= h.entries || bdbHeaderLen+2*h.entries > len(p) {
		return 0, ErrCorrupt
	}
	o := int(db.bo.Uint16(p[bdbHeaderLen+2*i:]))
	if o < bdbHeaderLen+2*h.entries || o >= len(p) {
		return 0, ErrCorrupt
	}
	return o, nil
}

// overflow reads an off-page item of length n starting at page pg.
func (db *BDB) overflow(pg, n uint32) ([]byte, error) {
	if uint64(n) > uint64(len(db.data)) {
		return nil, ErrCorrupt
	}
	out := make([]byte, 0, n)
	for steps := uint32(0); uint32(len(out)) < n; steps++ {
		p := db.page(pg)
		if p == nil || steps >= db.npages {
			return nil, ErrCorrupt
		}
		h := db.header(p)
		if h.typ != bdbPageOverflow || bdbHeaderLen+h.hfOff > len(p) {
			return nil, ErrCorrupt
		}
		chunk := p[bdbHeaderLen : bdbHeaderLen+h.hfOff]
		if len(out)+len(chunk) > int(n) {
			return nil, ErrCorrupt
		}
		out = append(out, chunk...)
		pg = h.next
	}
	return out, nil
}

// hashItem returns item i of hash page p: its type byte and its bytes
// after the type.
func (db *BDB) hashItem(p []byte, h pageHeader, i int) (byte, []byte, error) {
	start, err := db.offset(p, h, i)
	if err != nil {
		return 0, nil, err
	}
	end := len(p)
	if i > 0 {
		if end, err = db.offset(p, h, i-1); err != nil {
			return 0, nil, err
		}
	}
	if end <= start {
		return 0, nil, ErrCorrupt
	}
	return p[start], p[start+1 : end], nil
}

// hashData turns a hash item into its bytes, reading off-page items.
func (db *BDB) hashData(typ byte, b []byte) ([]byte, error) {
	switch typ {
	case bdbItemData:
		return b, nil
	case bdbItemOffpage:
		if len(b) < 11 {
			return nil, ErrCorrupt
		}
		return db.overflow(db.bo.Uint32(b[3:]), db.bo.Uint32(b[7:]))
	case bdbItemDuplicate:
		// The first of the duplicates: length, data, length.
		if len(b) < 2 {
			return nil, ErrCorrupt
		}
		n := int(db.bo.Uint16(b))
		if 2+n > len(b) {
			return nil, ErrCorrupt
		}
		return b[2 : 2+n], nil
	case bdbItemOffdup:
		return nil, errors.New("Berkeley DB off-page duplicates are not supported")
	}
	return nil, ErrCorrupt
}

// hashKeyIs says whether a hash key item equals key, without reading an
// off-page key of another length.
func (db *BDB) hashKeyIs(typ byte, b, key []byte) (bool, error) {
	switch typ {
	case bdbItemData:
		return bytes.Equal(b, key), nil
	case bdbItemOffpage:
		if len(b) < 11 {
			return false, ErrCorrupt
		}
		if db.bo.Uint32(b[7:]) != uint32(len(key)) {
			return false, nil
		}
	}
	k, err := db.hashData(typ, b)
	return bytes.Equal(k, key), err
}

// bucketPage is the first page of hash bucket b.
func (db *BDB) bucketPage(b uint32) uint32 {
	lg := 0
	for uint64(1)<<lg < uint64(b)+1 {
		lg++
	}
	if lg >= len(db.spares) {
		return 0 // no such page
	}
	return b + db.spares[lg]
}

// eachPair calls fn for the key and value items of every page of the
// chain that starts at pg (hash buckets); fn returns false to stop.
// budget counts down the pages visited: as every page belongs to one
// chain, more visits than pages mean a damaged file.
func (db *BDB) eachPair(pg uint32, budget *uint32, fn func(p []byte, h pageHeader, i int) (bool, error)) error {
	for pg != 0 {
		if *budget == 0 {
			return ErrCorrupt
		}
		*budget--
		p := db.page(pg)
		if p == nil {
			return nil // a bucket whose pages were never written is empty
		}
		h := db.header(p)
		if h.typ != bdbPageHash && h.typ != bdbPageHashUnsorted {
			if h.typ == 0 && h.entries == 0 {
				return nil // an allocated, unused page
			}
			return ErrCorrupt
		}
		for i := 0; i+1 < h.entries; i += 2 {
			more, err := fn(p, h, i)
			if err != nil || !more {
				return err
			}
		}
		pg = h.next
	}
	return nil
}

func (db *BDB) getHash(key []byte) ([]byte, bool, error) {
	if db.all != nil {
		v, ok := db.all[string(key)]
		return v, ok, nil
	}
	b := bdbHash(key) & db.highMask
	if b > db.maxBucket {
		b &= db.lowMask
	}
	if b > db.maxBucket {
		return nil, false, ErrCorrupt
	}
	var val []byte
	var found bool
	budget := db.npages
	err := db.eachPair(db.bucketPage(b), &budget, func(p []byte, h pageHeader, i int) (bool, error) {
		typ, kb, err := db.hashItem(p, h, i)
		if err != nil {
			return false, err
		}
		if ok, err := db.hashKeyIs(typ, kb, key); err != nil || !ok {
			return err == nil, err
		}
		typ, vb, err := db.hashItem(p, h, i+1)
		if err != nil {
			return false, err
		}
		val, err = db.hashData(typ, vb)
		found = err == nil
		return false, err
	})
	return val, found, err
}

func (db *BDB) eachHash(fn func(k, v []byte) bool) error {
	budget := db.npages
	for b := uint32(0); b <= db.maxBucket; b++ {
		stop := false
		err := db.eachPair(db.bucketPage(b), &budget, func(p []byte, h pageHeader, i int) (bool, error) {
			var kv [2][]byte
			for j := range kv {
				typ, item, err := db.hashItem(p, h, i+j)
				if err != nil {
					return false, err
				}
				if kv[j], err = db.hashData(typ, item); err != nil {
					return false, err
				}
			}
			stop = !fn(kv[0], kv[1])
			return !stop, nil
		})
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// btreeItem returns the bytes of item i of a btree leaf page.
func (db *BDB) btreeItem(p []byte, h pageHeader, i int) ([]byte, error) {
	o, err := db.offset(p, h, i)
	if err != nil {
		return nil, err
	}
	if o+3 > len(p) {
		return nil, ErrCorrupt
	}
	n := int(db.bo.Uint16(p[o:]))
	switch p[o+2] &^ 0x80 { // 0x80: deleted
	case bdbItemData:
		if o+3+n > len(p) {
			return nil, ErrCorrupt
		}
		return p[o+3 : o+3+n], nil
	case bdbItemOffpage:
		if o+12 > len(p) {
			return nil, ErrCorrupt
		}
		return db.overflow(db.bo.Uint32(p[o+4:]), db.bo.Uint32(p[o+8:]))
	case bdbItemDuplicate:
		return nil, errors.New("Berkeley DB duplicates are not supported")
	}
	return nil, ErrCorrupt
}

// internalItem returns the key and child page of item i of a btree
// internal page.
func (db *BDB) internalItem(p []byte, h pageHeader, i int) ([]byte, uint32, error) {
	o, err := db.offset(p, h, i)
	if err != nil {
		return nil, 0, err
	}
	if o+12 > len(p) {
		return nil, 0, ErrCorrupt
	}
	n := int(db.bo.Uint16(p[o:]))
	child := db.bo.Uint32(p[o+4:])
	if o+12+n > len(p) {
		return nil, 0, ErrCorrupt
	}
	k := p[o+12 : o+12+n]
	if p[o+2]&^0x80 == bdbItemOffpage {
		if n < 12 {
			return nil, 0, ErrCorrupt
		}
		k, err = db.overflow(db.bo.Uint32(k[4:]), db.bo.Uint32(k[8:]))
	}
	return k, child, err
}

// btreePage returns page pg with its header, checked to be a btree page.
func (db *BDB) btreePage(pg uint32) ([]byte, pageHeader, error) {
	p := db.page(pg)
	if p == nil {
		return nil, pageHeader{}, ErrCorrupt
	}
	h := db.header(p)
	if h.typ != bdbPageBtreeInternal && h.typ != bdbPageBtreeLeaf {
		return nil, h, ErrCorrupt
	}
	return p, h, nil
}

// descend walks from the root to the leaf that holds key (the leftmost
// leaf when key is nil).
func (db *BDB) descend(key []byte) ([]byte, pageHeader, error) {
	pg := db.root
	for depth := 0; depth < bdbMaxDepth; depth++ {
		p, h, err := db.btreePage(pg)
		if err != nil || h.typ == bdbPageBtreeLeaf {
			return p, h, err
		}
		if h.entries == 0 {
			return nil, h, ErrCorrupt
		}
		// The last item whose key is <= key; item 0 has no key.
		lo, hi := 1, h.entries
		for key != nil && lo < hi {
			mid := (lo + hi) / 2
			k, _, err := db.internalItem(p, h, mid)
			if err != nil {
				return nil, h, err
			}
			if bytes.Compare(k, key) <= 0 {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if key == nil {
			lo = 1
		}
		if _, pg, err = db.internalItem(p, h, lo-1); err != nil {
			return nil, h, err
		}
	}
	return nil, pageHeader{}, ErrCorrupt
}

func (db *BDB) getBtree(key []byte) ([]byte, bool, error) {
	p, h, err := db.descend(key)
	if err != nil {
		return nil, false, err
	}
	lo, hi := 0, h.entries/2
	for lo < hi {
		mid := (lo + hi) / 2
		k, err := db.btreeItem(p, h, 2*mid)
		if err != nil {
			return nil, false, err
		}
		switch c := bytes.Compare(k, key); {
		case c == 0:
			v, err := db.btreeItem(p, h, 2*mid+1)
			return v, err == nil, err
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return nil, false, nil
}

func (db *BDB) eachBtree(fn func(k, v []byte) bool) error {
	p, h, err := db.descend(nil)
	for steps := uint32(0); ; steps++ {
		if err != nil {
			return err
		}
		if h.typ != bdbPageBtreeLeaf || steps > db.npages {
			return ErrCorrupt
		}
		for i := 0; i+1 < h.entries; i += 2 {
			k, err := db.btreeItem(p, h, i)
			if err != nil {
				return err
			}
			v, err := db.btreeItem(p, h, i+1)
			if err != nil {
				return err
			}
			if !fn(k, v) {
				return nil
			}
		}
		if h.next == 0 {
			return nil
		}
		p, h, err = db.btreePage(h.next)
	}
}

// Get returns a copy of the value stored under key exactly as given.
func (db *BDB) Get(key []byte) (val []byte, found bool, err error) {
	defer faultGuard(&err, debug.SetPanicOnFault(true))
	if db.btree {
		val, found, err = db.getBtree(key)
	} else {
		val, found, err = db.getHash(key)
	}
	if found && err == nil {
		val = bytes.Clone(val)
	}
	return val, found, err
}

// Each calls fn for every entry (bucket order for hash, key order for
// btree) until fn returns false. The slices given to fn are valid only
// during the call.
func (db *BDB) Each(fn func(key, val []byte) bool) (err error) {
	defer faultGuard(&err, debug.SetPanicOnFault(true))
	if db.btree {
		return db.eachBtree(fn)
	}
	return db.eachHash(fn)
}

// faultGuard turns a fault reading the mapping into ErrCorrupt: Postfix's
// postmap rewrites a Berkeley DB file in place (truncating it), which
// would otherwise kill a daemon that has the file mapped. It restores the
// goroutine's setting to old.
func faultGuard(err *error, old bool) {
	debug.SetPanicOnFault(old)
	if r := recover(); r != nil {
		if _, fault := r.(interface{ Addr() uintptr }); !fault {
			panic(r)
		}
		*err = ErrCorrupt
	}
}

// bdbTable serves a Berkeley DB file left by Postfix through the Table
// interface. Postfix stores keys and values with their terminating NUL
// (postmap and postalias by default) or without it (-N off, older
// versions): a lookup tries the key with its NUL first, as Postfix does.
type bdbTable struct {
	db   *BDB
	fold bool
}

func (t *bdbTable) Lookup(key string) (string, bool, error) {
	if t.fold {
		key = foldString(key)
	}
	k := append([]byte(key), 0)
	v, ok, err := t.db.Get(k)
	if err == nil && !ok {
		v, ok, err = t.db.Get(k[:len(key)])
	}
	if err != nil || !ok {
		return "", false, err
	}
	return string(TrimNul(v)), true, nil
}

func (t *bdbTable) GetRaw(key []byte) ([]byte, bool, error) { return t.db.Get(key) }

func (t *bdbTable) Each(fn func(key, value string) bool) error {
	return t.db.Each(func(k, v []byte) bool { return fn(string(TrimNul(k)), string(TrimNul(v))) })
}

func (t *bdbTable) Close() error { return t.db.Close() }

// openBDBTable opens a Berkeley DB file for a table of type typ (hash or
// btree); a file of the other kind is refused as Berkeley DB refuses it.
func openBDBTable(path, typ string, opts Options) (Table, error) {
	db, err := OpenBDB(path)
	if err != nil {
		return nil, err
	}
	if db.Btree() != (typ == "btree") {
		db.Close()
		return nil, syscall.EINVAL // as Berkeley DB: unexpected file type
	}
	return &bdbTable{db: db, fold: opts.FoldCase}, nil
}
