package maildir

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"postdove/pkg/mbox/lineconv"
)

// Options control one delivery.
type Options struct {
	// UID and GID own the folders and the file this delivery creates;
	// -1 leaves them to the calling process. When UID is not -1, existing
	// folders must belong to UID, so a root caller cannot be led into
	// someone else's directory.
	UID, GID int
	// Mode of the message file (0600 when zero); folders get 0700.
	Mode os.FileMode
	// Hostname in the file name (os.Hostname() when empty).
	Hostname string
	// Flags, when not empty, deliver straight into cur/ with ":2,FLAGS"
	// (for example "S" for \Seen); the letters are sorted as Dovecot
	// writes them. Allowed: ASCII letters.
	Flags string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// counter numbers the deliveries of this process (Dovecot's Q<n>).
var counter atomic.Uint64

// Error is a failed delivery; nothing is left in tmp/, new/ or cur/.
type Error struct {
	Dir    string
	Reason string
	Err    error
	// Tmp is the tmp/ file the delivery meant to create, when it failed
	// before the file existed (a folder could not be made or opened, or
	// the file not created): Postfix's local(8) reports those as "create
	// maildir file TMP: ...".
	Tmp string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "maildir " + e.Dir + ": " + e.Reason + ": " + e.Err.Error()
	}
	return "maildir " + e.Dir + ": " + e.Reason
}
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed.
func (e *Error) Temporary() bool {
	return !errors.Is(e.Err, syscall.EFBIG) && !errors.Is(e.Err, errUnsafe) && !errors.Is(e.Err, errFlags)
}

var (
	errUnsafe = errors.New("unsafe ownership")
	errFlags  = errors.New("invalid flags")
)

// EscapeHostname writes "/" as \057 and ":" as \072, as Dovecot does in
// Maildir file names.
func EscapeHostname(h string) string {
	return strings.NewReplacer("/", `\057`, ":", `\072`).Replace(h)
}

// BaseName returns the file name of a message stored at t by process pid
// as its n-th delivery, before the ",S=" and ",W=" sizes are known.
func BaseName(t time.Time, pid int, n uint64, hostname string) string {
	q := ""
	if n > 1 {
		q = "Q" + strconv.FormatUint(n, 10)
	}
	return fmt.Sprintf("%d.M%dP%d%s.%s", t.Unix(), t.Nanosecond()/1000, pid, q, EscapeHostname(hostname))
}

// Deliver stores the message read from msg in the Maildir dir, creating
// dir and its tmp/, new/ and cur/ when missing. It returns the path of the
// delivered file (in new/, or in cur/ when opts.Flags is set) once the file
// and the folder holding it are fsynced.
func Deliver(dir string, msg io.Reader, opts Options) (string, error) {
	flags, err := sortFlags(opts.Flags)
	if err != nil {
		return "", &Error{Dir: dir, Reason: fmt.Sprintf("flags %q", opts.Flags), Err: errFlags}
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Mode == 0 {
		opts.Mode = 0600
	}
	base := BaseName(opts.Now(), os.Getpid(), counter.Add(1), opts.Hostname)
	tmpFile := func(err error) error {
		var me *Error
		if errors.As(err, &me) && me.Err != errUnsafe {
			me.Tmp = filepath.Join(dir, "tmp", base)
		}
		return err
	}
	top, err := openDir(-1, dir, dir, opts, true)
	if err != nil {
		return "", tmpFile(err)
	}
	defer syscall.Close(top)
	subs := map[string]int{}
	for _, name := range []string{"tmp", "new", "cur"} {
		fd, err := openDir(top, name, filepath.Join(dir, name), opts, false)
		if err != nil {
			for _, fd := range subs {
				syscall.Close(fd)
			}
			return "", tmpFile(err)
		}
		subs[name] = fd
	}
	defer func() {
		for _, fd := range subs {
			syscall.Close(fd)
		}
	}()
	dest, suffix := "new", ""
	if flags != "" {
		dest, suffix = "cur", ":2,"+flags
	}
	name, err := store(dir, subs["tmp"], msg, opts, base, func(_ *os.File, base string, st lineconv.Stats) (int, string, error) {
		name := fmt.Sprintf("%s,S=%d,W=%d%s", base, st.Bytes, st.Bytes+st.BareLF, suffix)
		return subs[dest], name, linkAt(subs["tmp"], base, subs[dest], name)
	})
	if err != nil {
		return "", err
	}
	if err := syscall.Fsync(subs[dest]); err != nil {
		unlinkat(subs[dest], name)
		return "", &Error{Dir: dir, Reason: "fsync " + dest, Err: err}
	}
	return filepath.Join(dir, dest, name), nil
}

// linkFunc links the written tmp/ file base into its folder and returns
// that folder and the final name (sizes and info added).
type linkFunc func(f *os.File, base string, st lineconv.Stats) (dest int, name string, err error)

// store writes the message into tmp/ (as base, or a fresh name when that
// exists), has link put it in its folder under its final name, which it
// returns, and fsyncs it. On error nothing is left behind.
func store(dir string, tmp int, msg io.Reader, opts Options, base string, link linkFunc) (string, error) {
	var (
		fd  int
		err error
	)
	for try := 0; ; try++ {
		if try > 0 {
			base = BaseName(opts.Now(), os.Getpid(), counter.Add(1), opts.Hostname)
		}
		fd, err = syscall.Openat(tmp, base, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, uint32(opts.Mode.Perm()))
		if err != syscall.EEXIST || try == 10 {
			break
		}
	}
	if err != nil {
		return "", &Error{Dir: dir, Reason: "create tmp/" + base, Err: err, Tmp: filepath.Join(dir, "tmp", base)}
	}
	f := os.NewFile(uintptr(fd), base)
	defer func() {
		f.Close()
		unlinkat(tmp, base) // after the link, only the tmp/ name goes
	}()
	if err := chown(fd, opts); err != nil {
		return "", &Error{Dir: dir, Reason: "chown tmp/" + base, Err: err}
	}
	bw := bufio.NewWriterSize(f, 64*1024)
	st, err := lineconv.Copy(bw, msg, lineconv.Options{})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return "", &Error{Dir: dir, Reason: "write tmp/" + base, Err: err}
	}
	dest, name, err := link(f, base, st)
	if err != nil {
		var me *Error
		if errors.As(err, &me) {
			return "", err
		}
		return "", &Error{Dir: dir, Reason: "link tmp/" + base, Err: err}
	}
	// One fsync after the link makes the content and its name in new/
	// durable together: the link dirtied the inode, so the journal commit
	// the fsync forces carries the directory entry as well. A reader never
	// sees a partial file: the name appears only once the data is written.
	if err := f.Sync(); err != nil {
		unlinkat(dest, name)
		return "", &Error{Dir: dir, Reason: "fsync " + name, Err: err}
	}
	return name, nil
}

// openDir opens (creating when missing) the directory name relative to
// the directory at, without following a symbolic link unless it is the top
// folder, and checks who owns it when opts.UID is set.
func openDir(at int, name, display string, opts Options, top bool) (int, error) {
	const flags = syscall.O_RDONLY | syscall.O_DIRECTORY | syscall.O_CLOEXEC
	nofollow := syscall.O_NOFOLLOW
	if top {
		nofollow = 0 // ~/Maildir may be a user's link to another disk
		if at == -1 {
			at = atFDCWD
		}
	}
	fd, err := syscall.Openat(at, name, flags|nofollow, 0)
	if err == syscall.ENOENT {
		if err := syscall.Mkdirat(at, name, 0700); err != nil && err != syscall.EEXIST {
			return -1, &Error{Dir: display, Reason: "mkdir", Err: err}
		}
		fd, err = syscall.Openat(at, name, flags|syscall.O_NOFOLLOW, 0)
		if err == nil {
			if err := chown(fd, opts); err != nil {
				syscall.Close(fd)
				return -1, &Error{Dir: display, Reason: "chown", Err: err}
			}
		}
	}
	if err != nil {
		return -1, &Error{Dir: display, Reason: "open", Err: err}
	}
	if opts.UID >= 0 {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil || int(st.Uid) != opts.UID {
			syscall.Close(fd)
			return -1, &Error{Dir: display, Reason: fmt.Sprintf("not owned by uid %d", opts.UID), Err: errUnsafe}
		}
	}
	return fd, nil
}

func chown(fd int, opts Options) error {
	if opts.UID < 0 && opts.GID < 0 {
		return nil
	}
	if opts.UID == os.Geteuid() && opts.GID == os.Getegid() {
		return nil
	}
	return syscall.Fchown(fd, opts.UID, opts.GID)
}

func sortFlags(s string) (string, error) {
	b := []byte(s)
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return "", errFlags
		}
	}
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	out := b[:0]
	for i, c := range b {
		if i == 0 || c != b[i-1] {
			out = append(out, c)
		}
	}
	return string(out), nil
}

const atFDCWD = -100

func unlinkat(dirfd int, name string) { syscall.Unlinkat(dirfd, name) }

func renameAt(olddir int, oldname string, newdir int, newname string) error {
	return syscall.Renameat(olddir, oldname, newdir, newname)
}

// linkAt hard-links olddir/oldname as newdir/newname, failing rather than
// replacing an existing file; where hard links are not supported it falls
// back to rename.
func linkAt(olddir int, oldname string, newdir int, newname string) error {
	p1, err := syscall.BytePtrFromString(oldname)
	if err != nil {
		return err
	}
	p2, err := syscall.BytePtrFromString(newname)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(syscall.SYS_LINKAT, uintptr(olddir), uintptr(unsafe.Pointer(p1)), uintptr(newdir), uintptr(unsafe.Pointer(p2)), 0, 0)
	switch e {
	case 0:
		return nil
	case syscall.EPERM, syscall.EOPNOTSUPP, syscall.ENOSYS:
		return renameAt(olddir, oldname, newdir, newname)
	}
	return e
}
