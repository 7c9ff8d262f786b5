package maildir

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// UidlistName is Dovecot's file of UIDs in each Maildir folder.
const UidlistName = "dovecot-uidlist"

// Uidlist is a dovecot-uidlist file: version 3 (Dovecot 1.0 and later)
//
//	3 V1795757429 N3 Gc8d5b32b7515096bec17000083ecc375
//	1 :1795757429.M732127P6124.vm,S=18,W=21
//	2 W1044 :1795757433.M12P6130.vm,S=1020
//
// or the old version 1 ("1 <uidvalidity> <nextuid>", then "<uid> <name>").
// Each record names a message by its file name up to the ":2," info.
type Uidlist struct {
	Version     int
	UIDValidity uint32
	NextUID     uint32 // the header's N, raised past the last record
	GUID        string // the mailbox GUID (32 hex digits), "" when none
	HeaderExt   []string
	Records     []UidRecord
	byName      map[string]int
}

// UidRecord is one message: its UID, extension fields ("W1044", "S1020",
// kept as they were) and base file name.
type UidRecord struct {
	UID  uint32
	Ext  []string
	Name string
}

var errUidlist = errors.New("corrupted dovecot-uidlist")

// ParseUidlist reads a dovecot-uidlist. A last line without its newline is
// a write in progress and is left out. Records must have growing UIDs.
// When a record is broken, the list up to it comes back with the error,
// as Dovecot keeps it (and then writes the file anew); when the header is,
// the list is nil.
func ParseUidlist(data []byte) (*Uidlist, error) {
	u := &Uidlist{}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 2 {
		return nil, fmt.Errorf("%w: no header", errUidlist)
	}
	hdr := strings.Fields(lines[0])
	if len(hdr) == 0 {
		return nil, fmt.Errorf("%w: empty header", errUidlist)
	}
	switch hdr[0] {
	case "1":
		if len(hdr) != 3 {
			return nil, fmt.Errorf("%w: bad version 1 header", errUidlist)
		}
		v, err1 := strconv.ParseUint(hdr[1], 10, 32)
		n, err2 := strconv.ParseUint(hdr[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: bad version 1 header", errUidlist)
		}
		u.Version, u.UIDValidity, u.NextUID = 1, uint32(v), uint32(n)
	case "3":
		u.Version = 3
		for _, f := range hdr[1:] {
			switch f[0] {
			case 'V', 'N':
				n, err := strconv.ParseUint(f[1:], 10, 32)
				if err != nil {
					return nil, fmt.Errorf("%w: header %q", errUidlist, f)
				}
				if f[0] == 'V' {
					u.UIDValidity = uint32(n)
				} else {
					u.NextUID = uint32(n)
				}
			case 'G':
				u.GUID = f[1:]
			default:
				u.HeaderExt = append(u.HeaderExt, f)
			}
		}
	default:
		return nil, fmt.Errorf("%w: unsupported version %q", errUidlist, hdr[0])
	}
	if u.UIDValidity == 0 {
		return nil, fmt.Errorf("%w: no UIDVALIDITY", errUidlist)
	}
	var last uint32
	for i, l := range lines[1 : len(lines)-1] {
		r, err := parseRecord(l, u.Version, last)
		if err != nil {
			return u.finish(last), fmt.Errorf("%w: line %d: %s: %q", errUidlist, i+2, err, l)
		}
		last = r.UID
		u.Records = append(u.Records, r)
	}
	return u.finish(last), nil
}

// parseRecord reads one record line; its UID must be above last.
func parseRecord(l string, version int, last uint32) (UidRecord, error) {
	var r UidRecord
	sp := strings.IndexByte(l, ' ')
	if sp <= 0 {
		return r, errors.New("invalid data")
	}
	n, err := strconv.ParseUint(l[:sp], 10, 32)
	if err != nil || n == 0 || uint32(n) <= last {
		return r, errors.New("bad UID")
	}
	r.UID = uint32(n)
	rest := l[sp+1:]
	if version == 1 {
		r.Name = rest
	} else {
		c := strings.Index(rest, ":")
		if c < 0 {
			return r, errors.New("no file name")
		}
		if ext := strings.Fields(rest[:c]); len(ext) > 0 {
			r.Ext = ext
		}
		r.Name = rest[c+1:]
	}
	if r.Name == "" || strings.ContainsAny(r.Name, "/\x00") {
		return r, errors.New("bad file name")
	}
	return r, nil
}

// finish raises NextUID past the last record's UID.
func (u *Uidlist) finish(last uint32) *Uidlist {
	if last >= u.NextUID {
		u.NextUID = last + 1
	}
	if u.NextUID == 0 {
		u.NextUID = 1
	}
	return u
}

// UID returns the UID of the message with base file name name, or 0.
func (u *Uidlist) UID(name string) uint32 {
	if u.byName == nil {
		u.byName = make(map[string]int, len(u.Records))
		for i, r := range u.Records {
			u.byName[r.Name] = i
		}
	}
	if i, ok := u.byName[name]; ok {
		return u.Records[i].UID
	}
	return 0
}

func (u *Uidlist) add(r UidRecord) {
	if u.byName != nil {
		u.byName[r.Name] = len(u.Records)
	}
	u.Records = append(u.Records, r)
	u.NextUID = r.UID + 1
}

// Marshal writes the whole file, in version 3.
func (u *Uidlist) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "3 V%d N%d", u.UIDValidity, u.NextUID)
	if u.GUID != "" {
		b.WriteString(" G" + u.GUID)
	}
	for _, e := range u.HeaderExt {
		b.WriteString(" " + e)
	}
	b.WriteByte('\n')
	for _, r := range u.Records {
		b.WriteString(r.line())
	}
	return b.Bytes()
}

func (r UidRecord) line() string {
	s := strconv.FormatUint(uint64(r.UID), 10)
	for _, e := range r.Ext {
		s += " " + e
	}
	return s + " :" + r.Name + "\n"
}

// newUidlist starts the list of a folder that has none.
func newUidlist(uidValidity uint32) *Uidlist {
	g := make([]byte, 16)
	rand.Read(g)
	return &Uidlist{Version: 3, UIDValidity: uidValidity, NextUID: 1, GUID: hex.EncodeToString(g)}
}

// readUidlist reads dir's uidlist; a missing one gives nil and no errors.
// A damaged one gives what could be read (nil when the header is bad) and
// broken, naming the file and line: callers then write the list anew.
func readUidlist(dir string) (u *Uidlist, broken, err error) {
	u, broken, _, err = readUidlistVersion(dir)
	return u, broken, err
}

// uidlistVersion identifies the content of a uidlist file: its inode,
// size and mtime, and a CRC-32 of its bytes up to that size. The file only
// grows in place (appends) or is replaced by a rename, so a file with the
// same inode whose first size bytes have that CRC holds the same records
// and maybe more.
type uidlistVersion struct {
	key [3]int64
	crc uint32
}

// readUidlistVersion is readUidlist that also returns the version read.
func readUidlistVersion(dir string) (*Uidlist, error, uidlistVersion, error) {
	data, v, err := readUidlistData(dir)
	if err != nil || data == nil {
		return nil, nil, v, err
	}
	u, err := ParseUidlist(data[:v.key[1]])
	if err != nil {
		return u, fmt.Errorf("broken file %s: %w", filepath.Join(dir, UidlistName), err), v, nil
	}
	return u, nil, v, nil
}

// readUidlistData reads the file (nil when missing) and its version: the
// inode and size from before the read, so a later append is not counted,
// and the size only up to the last whole line.
func readUidlistData(dir string) ([]byte, uidlistVersion, error) {
	var v uidlistVersion
	f, err := os.Open(filepath.Join(dir, UidlistName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, v, nil
	}
	if err != nil {
		return nil, v, err
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return nil, v, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, v, err
	}
	if int64(len(data)) < st.Size {
		st.Size = int64(len(data))
	}
	// Up to the last whole line: the rest is an append in progress.
	st.Size = int64(bytes.LastIndexByte(data[:st.Size], '\n') + 1)
	v.key = [3]int64{int64(st.Ino), st.Size, st.Mtim.Nano()}
	v.crc = crc32.ChecksumIEEE(data[:st.Size])
	if data == nil {
		data = []byte{}
	}
	return data, v, nil
}

// uidlistNext returns the next UID of dir's version 3 uidlist from its
// header and last line alone, so that a delivery into a large folder
// does not read every record. ok is false when the file is missing, of
// another version, damaged at either end or not ending in a newline (an
// append there would join a broken line): then read it all.
func uidlistNext(dir string) (next uint32, ok bool) {
	f, err := os.Open(filepath.Join(dir, UidlistName))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil || st.Size == 0 {
		return 0, false
	}
	const chunk = 4096
	head := make([]byte, min(chunk, st.Size))
	if _, err := f.ReadAt(head, 0); err != nil {
		return 0, false
	}
	nl := bytes.IndexByte(head, '\n')
	if nl < 0 {
		return 0, false
	}
	u, err := ParseUidlist(head[:nl+1])
	if err != nil || u.Version != 3 {
		return 0, false
	}
	if int64(nl+1) == st.Size {
		return u.NextUID, true
	}
	off := max(st.Size-chunk, int64(nl+1))
	tail := make([]byte, st.Size-off)
	if _, err := f.ReadAt(tail, off); err != nil || tail[len(tail)-1] != '\n' {
		return 0, false
	}
	tail = tail[:len(tail)-1]
	i := bytes.LastIndexByte(tail, '\n')
	if i < 0 && off != int64(nl+1) {
		return 0, false // a last line longer than the chunk
	}
	r, err := parseRecord(string(tail[i+1:]), 3, 0)
	if err != nil {
		return 0, false
	}
	return max(u.NextUID, r.UID+1), true
}

// UIDValidity returns the folder's UIDVALIDITY from its uidlist's header,
// without a Sync.
func (m *Mailbox) UIDValidity() (uint32, error) {
	f, err := os.Open(filepath.Join(m.Dir, UidlistName))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF {
		return 0, err
	}
	head = head[:n]
	if nl := bytes.IndexByte(head, '\n'); nl >= 0 {
		head = head[:nl+1]
	}
	u, err := ParseUidlist(head)
	if err != nil {
		return 0, err
	}
	return u.UIDValidity, nil
}

// Lock timing: Dovecot's dotlock on dovecot-uidlist is stale once neither
// it nor the uidlist has changed for two minutes, or once it is older than
// two seconds and names a process of this host that is gone.
const (
	lockStale       = 120 * time.Second
	lockPIDCheck    = 2 * time.Second
	lockWaitTimeout = 5 * time.Minute
)

// dotlock is a held dovecot-uidlist.lock.
type dotlock struct {
	path string
	f    *os.File
	ino  uint64
}

var hostname = func() string { h, _ := os.Hostname(); return h }()

// lockUidlist takes dir's dovecot-uidlist.lock.
func lockUidlist(dir string, opts Options) (*dotlock, error) {
	return lockFile(filepath.Join(dir, UidlistName), opts)
}

// lockFile takes the dot lock FILE.lock as Dovecot does: created with
// O_EXCL, holding "pid:host".
func lockFile(file string, opts Options) (*dotlock, error) {
	dir, base := filepath.Split(file)
	path := file + ".lock"
	deadline := time.Now().Add(lockWaitTimeout)
	wait := 100 * time.Microsecond
	var lastChange time.Time
	var lastSeen, lastFile [3]int64
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0600)
		if err == nil {
			var st syscall.Stat_t
			syscall.Fstat(int(f.Fd()), &st)
			fmt.Fprintf(f, "%d:%s", os.Getpid(), hostname)
			if opts.UID >= 0 || opts.GID >= 0 {
				chown(int(f.Fd()), opts)
			}
			return &dotlock{path: path, f: f, ino: st.Ino}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, &Error{Dir: dir, Reason: "create " + base + ".lock", Err: err}
		}
		now := time.Now()
		var st syscall.Stat_t
		if syscall.Lstat(path, &st) == nil {
			seen := [3]int64{int64(st.Ino), st.Mtim.Nano(), st.Size}
			if seen != lastSeen || lastChange.IsZero() {
				lastSeen = seen
				mt := time.Unix(0, st.Mtim.Nano())
				if lastChange.IsZero() && mt.Before(now) {
					lastChange = mt
				} else {
					lastChange = now
				}
			}
			if now.Sub(time.Unix(0, st.Mtim.Nano())) > lockPIDCheck && deadPID(path) {
				os.Remove(path)
				continue
			}
			if now.Sub(lastChange) > lockStale {
				// The uidlist itself changing counts as life too.
				var ust syscall.Stat_t
				if syscall.Stat(file, &ust) == nil {
					fs := [3]int64{int64(ust.Ino), ust.Mtim.Nano(), ust.Size}
					if fs != lastFile {
						lastFile = fs
						if t := time.Unix(0, ust.Mtim.Nano()); t.After(lastChange) {
							lastChange = t
						}
					}
				}
				if now.Sub(lastChange) > lockStale {
					os.Remove(path)
					continue
				}
			}
		}
		if now.After(deadline) {
			return nil, &Error{Dir: dir, Reason: "timeout waiting for " + base + ".lock", Err: syscall.EAGAIN}
		}
		time.Sleep(wait)
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}

// deadPID reports whether the lock names a process of this host that no
// longer exists.
func deadPID(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	s := strings.TrimSuffix(string(b), "\n")
	pid, host, ok := strings.Cut(s, ":")
	if !ok || host != hostname {
		return false
	}
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 || n == os.Getpid() {
		return false
	}
	return syscall.Kill(n, 0) == syscall.ESRCH
}

// unlock removes the lock unless someone else overrode it meanwhile.
func (l *dotlock) unlock() {
	var st syscall.Stat_t
	if syscall.Lstat(l.path, &st) == nil && st.Ino == l.ino {
		os.Remove(l.path)
	}
	l.f.Close()
}

// replace writes u as the new uidlist through the lock file, renamed over
// the old list (Dovecot's way), and so releases the lock. It returns the
// new file's version (a rename keeps inode, size and mtime).
func (l *dotlock) replace(dir string, u *Uidlist) (uidlistVersion, error) {
	defer l.f.Close()
	data := u.Marshal()
	fail := func(err error) (uidlistVersion, error) {
		l.unlock()
		return uidlistVersion{}, err
	}
	if err := l.f.Truncate(0); err != nil {
		return fail(err)
	}
	if _, err := l.f.WriteAt(data, 0); err != nil {
		return fail(err)
	}
	if err := l.f.Sync(); err != nil {
		return fail(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(l.f.Fd()), &st); err != nil {
		return fail(err)
	}
	if err := os.Rename(l.path, filepath.Join(dir, UidlistName)); err != nil {
		return fail(err)
	}
	return uidlistVersion{[3]int64{int64(st.Ino), st.Size, st.Mtim.Nano()}, crc32.ChecksumIEEE(data)}, nil
}

// appendRecords adds records at the end of dir's uidlist (the lock held).
func appendRecords(dir string, rs []UidRecord) error {
	f, err := os.OpenFile(filepath.Join(dir, UidlistName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.line())
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
