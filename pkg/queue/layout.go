package queue

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// Queue and logfile directory names below queue_directory.
const (
	Maildrop = "maildrop"
	Incoming = "incoming"
	Active   = "active"
	Deferred = "deferred"
	Hold     = "hold"
	Corrupt  = "corrupt"
	Bounce   = "bounce"
	Defer    = "defer"
	Trace    = "trace"
	Flush    = "flush"
	Saved    = "saved"
	PID      = "pid"
	Public   = "public"
	Private  = "private"
)

// MessageQueues are the queues that hold messages, in the order postqueue
// reports them.
var MessageQueues = []string{Active, Incoming, Maildrop, Deferred, Hold}

// LogQueues hold per-message logfiles named after the message's queue ID.
var LogQueues = []string{Bounce, Defer, Trace}

// dirSpec is one directory of the layout, as in Postfix's postfix-files:
// its owner is root or the mail owner, its group root or the setgid
// group.
type dirSpec struct {
	name      string
	mailOwner bool
	setgid    bool
	mode      os.FileMode
}

var layout = []dirSpec{
	{Active, true, false, 0700},
	{Bounce, true, false, 0700},
	{Corrupt, true, false, 0700},
	{Defer, true, false, 0700},
	{Deferred, true, false, 0700},
	{Flush, true, false, 0700},
	{Hold, true, false, 0700},
	{Incoming, true, false, 0700},
	{Private, true, false, 0700},
	{Maildrop, true, true, 0730},
	{Public, true, true, 0710},
	{PID, false, false, 0755},
	{Saved, true, false, 0700},
	{Trace, true, false, 0700},
}

// Setup creates the queue directory dir (root-owned, 0755) and every
// directory below it with Postfix's owners and modes: owner is
// mail_owner (e.g. "postfix"), group is setgid_group (e.g. "postdrop") for
// maildrop and public. Existing directories get their owner and mode
// fixed, as `postfix set-permissions` does; running it twice is harmless.
func Setup(dir string, owner, group string) error {
	uid, err := lookupUser(owner)
	if err != nil {
		return err
	}
	gid, err := lookupGroup(group)
	if err != nil {
		return err
	}
	if err := fixDir(dir, 0, 0, 0755); err != nil {
		return err
	}
	for _, d := range layout {
		u, g := 0, 0
		if d.mailOwner {
			u = uid
		}
		if d.setgid {
			g = gid
		}
		if err := fixDir(filepath.Join(dir, d.name), u, g, d.mode); err != nil {
			return err
		}
	}
	return nil
}

func fixDir(path string, uid, gid int, mode os.FileMode) error {
	if err := os.Mkdir(path, mode); err != nil && !os.IsExist(err) {
		return fmt.Errorf("create directory %s: %w", path, unwrapPath(err))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("lstat %s: %w", path, unwrapPath(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", path)
	}
	if err := os.Lchown(path, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, unwrapPath(err))
	}
	// Chmod after chown: chown clears set-id bits on some systems.
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, unwrapPath(err))
	}
	return nil
}

func lookupUser(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, fmt.Errorf("unknown user: %s", name)
	}
	return strconv.Atoi(u.Uid)
}

func lookupGroup(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("unknown group: %s", name)
	}
	return strconv.Atoi(g.Gid)
}

// unwrapPath strips the *PathError wrapper so messages name the path once,
// as "open /x: No such file or directory" in Postfix's style.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	if le, ok := err.(*os.LinkError); ok {
		return le.Err
	}
	return err
}
