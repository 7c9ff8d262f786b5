package labnet

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// openInRoot opens path as if root were "/": symbolic links in it, even
// absolute ones, resolve inside root (openat2(2) with RESOLVE_IN_ROOT), so
// a link on a host can never lead to the machine's files.
func openInRoot(root, path string, flags int, mode os.FileMode) (*os.File, error) {
	const oPath = 0x200000 // O_PATH
	dir, err := syscall.Open(root, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer syscall.Close(dir)
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return nil, err
	}
	how := struct{ flags, mode, resolve uint64 }{
		flags:   uint64(flags | syscall.O_CLOEXEC),
		mode:    uint64(mode.Perm()),
		resolve: 0x10, // RESOLVE_IN_ROOT
	}
	const sysOpenat2 = 437 // the same on every Linux architecture
	fd, _, errno := syscall.Syscall6(sysOpenat2, uintptr(dir), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how), 0, 0)
	if errno != 0 {
		return nil, &os.PathError{Op: "openat2", Path: path, Err: errno}
	}
	return os.NewFile(fd, fmt.Sprintf("%s%s", root, path)), nil
}
