// Package syserr words a failed system call the way Postfix and Dovecot
// print it: the C library's strerror(3) text ("No such file or directory"),
// without Go's "open /path:" decoration, which the callers' own messages
// already carry in Postfix's order.
package syserr

import (
	"errors"
	"os"
	"strings"
	"syscall"
)

// Text is err's strerror text: the errno underneath any *os.PathError,
// *os.LinkError or *os.SyscallError, first letter upper-cased as the C
// library writes it. Other errors keep their own text.
func Text(err error) string {
	if err == nil {
		return ""
	}
	var pe *os.PathError
	var le *os.LinkError
	var se *os.SyscallError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	case errors.As(err, &se):
		err = se.Err
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	s := errno.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
