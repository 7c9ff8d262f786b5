package lda

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"postdove/pkg/syserr"
)

// Permission bits as access(2) tests them.
const (
	permR = 4
	permW = 2
	permX = 1
)

// eaccesError words a call that failed with EACCES as Dovecot does:
//
//	op(path) failed: Permission denied (euid=65534(nobody) egid=65534(nogroup) missing +x perm: /root, dir owned by 0:0 mode=0700)
//
// It looks for the nearest parent folder it can stat and names the
// permission missing there (or on path itself) and who owns it. creating
// is set when path was to be made (mkdir, open with O_CREAT).
func eaccesError(op, path string, creating bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s(%s) failed: Permission denied (euid=%s egid=%s", op, path, uidName(os.Geteuid()), gidName(os.Getegid()))
	prev, dir := path, ""
	var st syscall.Stat_t
	found := false
	for prev != "/" {
		i := strings.LastIndexByte(prev, '/')
		if i < 0 {
			break
		}
		dir = prev[:i]
		err := syscall.Stat(dir, &st)
		if err == nil {
			found = true
			break
		}
		if !(err == syscall.EACCES && dir != "/") && !(err == syscall.ENOENT && creating && dir != "/") {
			fmt.Fprintf(&b, " stat(%s) failed: %s", dir, syserr.Text(err))
			break
		}
		prev = dir
	}
	if found {
		switch {
		case !mayAccess(dir, permX):
			b.WriteString(" missing +x perm: " + dir)
		case creating && !mayAccess(dir, permW):
			b.WriteString(" missing +w perm: " + dir)
		case prev == path && !mayAccess(path, permR):
			b.WriteString(" missing +r perm: " + path)
		case !creating && !mayAccess(path, permW):
			b.WriteString(" missing +w perm: " + path)
		default:
			b.WriteString(" UNIX perms appear ok (ACL/MAC wrong?)")
		}
		if int(st.Uid) != os.Geteuid() {
			fmt.Fprintf(&b, ", dir owned by %d:%d mode=0%o", st.Uid, st.Gid, st.Mode&0o777)
		}
	}
	b.WriteByte(')')
	return b.String()
}

// mayAccess reports whether the effective user may read, write or search
// (perm) path, from its mode and owner: access(2) would answer for the
// real user.
func mayAccess(path string, perm uint32) bool {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return false
	}
	euid := os.Geteuid()
	if euid == 0 {
		return perm != permX || st.Mode&0o111 != 0 || st.Mode&syscall.S_IFMT == syscall.S_IFDIR
	}
	switch {
	case int(st.Uid) == euid:
		return (st.Mode>>6)&perm == perm
	case inGroup(int(st.Gid)):
		return (st.Mode>>3)&perm == perm
	}
	return st.Mode&perm == perm
}

func inGroup(gid int) bool {
	if gid == os.Getegid() {
		return true
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g == gid {
			return true
		}
	}
	return false
}

// uidName is "65534(nobody)", or the number alone for an unknown uid.
func uidName(uid int) string {
	s := strconv.Itoa(uid)
	if u, err := user.LookupId(s); err == nil {
		return s + "(" + u.Username + ")"
	}
	return s
}

// gidName is "65534(nogroup)", or the number alone for an unknown gid.
func gidName(gid int) string {
	s := strconv.Itoa(gid)
	if g, err := user.LookupGroupId(s); err == nil {
		return s + "(" + g.Name + ")"
	}
	return s
}
