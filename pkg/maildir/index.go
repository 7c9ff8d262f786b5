package maildir

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// IndexName is postdove's index of a folder, beside its dovecot-uidlist.
// It holds what a Sync found (UIDs, file names, flags, sizes, dates) with
// the versions of the uidlist, new/ and cur/ it was made from, so that
// opening an unchanged folder reads one file instead of listing and
// stating every message. It is a cache: when any of those versions
// differs, or the file is damaged, Sync rescans and rewrites it, and the
// uidlist always decides the UIDs.
//
// Layout (little endian): "PDIDX2\n"; UIDVALIDITY, UIDNEXT (u32); GUID
// (u16 length, bytes); the uidlist's inode, size and mtime (i64) and the
// CRC-32 of its bytes up to that size (u32); new/'s and cur/'s mtimes
// (i64); the message count (u32); per message its UID (u32),
// size, vsize, date in ns (i64), folder (u8: 0 new, 1 cur), file name (u16
// length, bytes), the length of its base name (u16) and its Envelope
// (u32 length, 0 when not known, then the encoded form: the ten fields'
// lengths as u16, then their bytes); then a CRC-32 of all that. An index
// of an older version is rebuilt.
const IndexName = "postdove.index"

const indexMagic = "PDIDX3\n"

// index is a decoded postdove.index.
type index struct {
	uidValidity, uidNext uint32
	guid                 string
	uv                   uidlistVersion
	mtimes               [2]int64
	msgs                 []Message
}

// dirty is how recent a folder change may be for its mtime to be trusted:
// file systems stamp mtimes with a coarse clock, so a change in the same
// tick as the scan would leave the mtime as it was.
const dirty = time.Second

func writeIndexFile(dir string, uv uidlistVersion, mtimes [2]int64, st *Status, opts Options) {
	now := time.Now().UnixNano()
	for i, t := range mtimes {
		if now-t < int64(dirty) {
			mtimes[i] = 0
		}
	}
	writeAtomicNoSync(filepath.Join(dir, IndexName), marshalIndex(&index{
		uidValidity: st.UIDValidity, uidNext: st.UIDNext, guid: st.GUID,
		uv: uv, mtimes: mtimes, msgs: st.Messages,
	}), opts)
}

func marshalIndex(x *index) []byte {
	n := len(indexMagic) + 8 + 2 + len(x.guid) + 5*8 + 4 + 4 + 4
	for i := range x.msgs {
		n += 4 + 3*8 + 1 + 2 + len(x.msgs[i].File) + 2 + 4 + len(x.msgs[i].env)
	}
	b := make([]byte, 0, n)
	le := binary.LittleEndian
	b = append(b, indexMagic...)
	b = le.AppendUint32(b, x.uidValidity)
	b = le.AppendUint32(b, x.uidNext)
	b = le.AppendUint16(b, uint16(len(x.guid)))
	b = append(b, x.guid...)
	for _, v := range x.uv.key {
		b = le.AppendUint64(b, uint64(v))
	}
	b = le.AppendUint32(b, x.uv.crc)
	for _, v := range x.mtimes {
		b = le.AppendUint64(b, uint64(v))
	}
	b = le.AppendUint32(b, uint32(len(x.msgs)))
	for i := range x.msgs {
		m := &x.msgs[i]
		b = le.AppendUint32(b, m.UID)
		b = le.AppendUint64(b, uint64(m.Size))
		b = le.AppendUint64(b, uint64(m.VSize))
		b = le.AppendUint64(b, uint64(m.Date.UnixNano()))
		sub := byte(0)
		if m.Sub == "cur" {
			sub = 1
		}
		b = append(b, sub)
		b = le.AppendUint16(b, uint16(len(m.File)))
		b = append(b, m.File...)
		b = le.AppendUint16(b, uint16(len(m.Base)))
		b = le.AppendUint32(b, uint32(len(m.env)))
		b = append(b, m.env...)
	}
	return le.AppendUint32(b, crc32.ChecksumIEEE(b))
}

var errIndex = errors.New("damaged " + IndexName)

// parseIndex decodes an index file; any inconsistency is an error.
func parseIndex(b []byte) (*index, error) {
	le := binary.LittleEndian
	if len(b) < len(indexMagic)+4 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, errIndex
	}
	body := b[:len(b)-4]
	if crc32.ChecksumIEEE(body) != le.Uint32(b[len(b)-4:]) {
		return nil, errIndex
	}
	p := body[len(indexMagic):]
	// One string holds every name, so that reading 100,000 messages
	// does not allocate 100,000 strings.
	all := string(p)
	bad := false
	take := func(n int) []byte {
		if bad || n > len(p) {
			bad = true
			return make([]byte, n)
		}
		v := p[:n]
		p = p[n:]
		return v
	}
	x := &index{}
	x.uidValidity = le.Uint32(take(4))
	x.uidNext = le.Uint32(take(4))
	x.guid = string(take(int(le.Uint16(take(2)))))
	for i := range x.uv.key {
		x.uv.key[i] = int64(le.Uint64(take(8)))
	}
	x.uv.crc = le.Uint32(take(4))
	for i := range x.mtimes {
		x.mtimes[i] = int64(le.Uint64(take(8)))
	}
	n := le.Uint32(take(4))
	if bad || uint64(n)*(4+3*8+1+2+2+4+1) > uint64(len(p)) {
		return nil, errIndex
	}
	x.msgs = make([]Message, 0, n)
	var last uint32
	for i := uint32(0); i < n; i++ {
		var m Message
		m.UID = le.Uint32(take(4))
		m.Size = int64(le.Uint64(take(8)))
		m.VSize = int64(le.Uint64(take(8)))
		m.Date = time.Unix(0, int64(le.Uint64(take(8))))
		sub := take(1)[0]
		name := take(int(le.Uint16(take(2))))
		if !bad {
			start := len(all) - len(p) - len(name) // p is past the name
			m.File = all[start : start+len(name)]
		}
		bl := int(le.Uint16(take(2)))
		if el := le.Uint32(take(4)); el != 0 && !bad {
			if el > uint32(len(p)) {
				return nil, errIndex
			}
			start := len(all) - len(p)
			m.env = all[start : start+int(el)]
			take(int(el))
			if !validEnvelope(m.env) {
				return nil, errIndex
			}
		}
		if bad || sub > 1 || m.UID <= last || m.UID >= x.uidNext || bl == 0 || bl > len(m.File) || strings.ContainsAny(m.File, "/\x00") {
			return nil, errIndex
		}
		last = m.UID
		m.Sub = [2]string{"new", "cur"}[sub]
		m.Base = m.File[:bl]
		base, info, _ := parseName(m.File)
		if base != m.Base {
			return nil, errIndex
		}
		m.Info = info
		x.msgs = append(x.msgs, m)
	}
	if len(p) != 0 {
		return nil, errIndex
	}
	return x, nil
}

func readIndexFile(dir string) (*index, error) {
	b, err := os.ReadFile(filepath.Join(dir, IndexName))
	if err != nil {
		return nil, err
	}
	return parseIndex(b)
}

// fresh reports whether the uidlist and the folders are as the index saw
// them.
func (x *index) fresh(dir string) bool {
	if x.uv.key == ([3]int64{}) || x.mtimes[0] == 0 || x.mtimes[1] == 0 {
		return false
	}
	if statKey(filepath.Join(dir, UidlistName)) != x.uv.key {
		return false
	}
	mt, err := dirTimes(dir)
	return err == nil && mt == x.mtimes
}

func (x *index) status() *Status {
	return &Status{UIDValidity: x.uidValidity, UIDNext: x.uidNext, GUID: x.guid, Messages: x.msgs}
}

// writeAtomicNoSync replaces path through a temporary file without
// waiting for the disk: a cache lost in a crash is rebuilt.
func writeAtomicNoSync(path string, data []byte, opts Options) error {
	tmp := path + ".tmp." + strconv.Itoa(os.Getpid()) + "." + strconv.FormatUint(counter.Add(1), 10)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0600)
	if err != nil {
		return err
	}
	chown(int(f.Fd()), opts)
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
