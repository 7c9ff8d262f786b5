package smtpd

import (
	"bufio"
	"io"
	"sync"
)

// Per-session buffers are kept small while a session idles: a 1 KiB
// command reader, a 64 KiB reader only while DATA streams in, and a reply
// writer taken from a pool only between the first reply byte and the
// flush. A thousand idle sessions then hold about 1 MiB of buffers.
const (
	cmdReaderSize  = 1024
	dataReaderSize = 64 * 1024
	replyBufSize   = 4096
)

var (
	replyPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, replyBufSize) }}
	dataPool  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, dataReaderSize) }}
)

// replyWriter buffers replies (so that pipelined replies go out
// together) in a pooled buffer that it returns on each Flush.
type replyWriter struct {
	dst io.Writer
	bw  *bufio.Writer
}

func newReplyWriter(dst io.Writer) *replyWriter { return &replyWriter{dst: dst} }

func (w *replyWriter) buf() *bufio.Writer {
	if w.bw == nil {
		w.bw = replyPool.Get().(*bufio.Writer)
		w.bw.Reset(w.dst)
	}
	return w.bw
}

func (w *replyWriter) Write(p []byte) (int, error) { return w.buf().Write(p) }

func (w *replyWriter) WriteString(s string) (int, error) { return w.buf().WriteString(s) }

// Flush sends what is buffered and gives the buffer back.
func (w *replyWriter) Flush() error {
	if w.bw == nil {
		return nil
	}
	err := w.bw.Flush()
	w.bw.Reset(nil)
	replyPool.Put(w.bw)
	w.bw = nil
	return err
}

// bigReader switches the session to a large pooled reader for a message
// body; it reads what the command reader holds first, then the
// connection directly (bufio reads large requests straight into the
// caller's buffer).
func (ss *session) bigReader() {
	if ss.cmdR != nil {
		return
	}
	big := dataPool.Get().(*bufio.Reader)
	big.Reset(ss.r)
	ss.cmdR, ss.r = ss.r, big
}

// smallReader goes back to the command reader once the large one holds
// nothing more, so no byte changes order; it is retried before each
// command line.
func (ss *session) smallReader() {
	if ss.cmdR == nil || ss.r.Buffered() > 0 {
		return
	}
	big := ss.r
	ss.r, ss.cmdR = ss.cmdR, nil
	big.Reset(nil)
	dataPool.Put(big)
}
