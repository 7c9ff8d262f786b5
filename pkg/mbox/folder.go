package mbox

import "os"

// LockFolder takes the kernel locks l asks for (fcntl, flock) on the open
// mailbox f, retrying as t says, as a delivery does; postlock uses it. The
// returned function releases them.
func LockFolder(f *os.File, l Locks, t LockTimeouts) (unlock func(), err error) {
	if err := lockFile(f, l, t); err != nil {
		return nil, err
	}
	return func() { unlockFile(f, l) }, nil
}
