package delivery

import (
	"io"
	"os"
)

// OpenContent opens the message content of a queue file: size bytes at
// off.
func OpenContent(path string, off, size int64) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, size), f}, nil
}
