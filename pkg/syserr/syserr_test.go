package syserr

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

func TestText(t *testing.T) {
	_, openErr := os.Open("/nonexistent/postdove")
	linkErr := os.Link("/nonexistent/a", "/nonexistent/b")
	for _, c := range []struct {
		err  error
		want string
	}{
		{openErr, "No such file or directory"},
		{linkErr, "No such file or directory"},
		{fmt.Errorf("wrapped: %w", &os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}), "Permission denied"},
		{os.NewSyscallError("connect", syscall.ECONNREFUSED), "Connection refused"},
		{syscall.ENOSPC, "No space left on device"},
		{errors.New("table is corrupt"), "table is corrupt"},
		{nil, ""},
	} {
		if got := Text(c.err); got != c.want {
			t.Errorf("Text(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
