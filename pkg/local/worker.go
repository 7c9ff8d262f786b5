package local

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// workerArg is the hidden first argument that makes a re-executed binary
// run as a delivery worker.
const workerArg = "--postdove-local-worker"

// workerIdle is how long an idle worker is kept for reuse.
const workerIdle = 10 * time.Second

// chunkSize is how much of the message goes in one pipe message.
const chunkSize = 64 << 10

// job kinds
const (
	jobMbox    = "mbox"
	jobMaildir = "maildir"
	jobFile    = "file"
	jobCommand = "command"
	jobRead    = "read" // return a small file's contents (~/.forward)
)

// job is one request to a worker. For every kind but jobRead the message
// follows as chunks, ended by an empty chunk.
type job struct {
	Kind     string
	Path     string
	FromLine string    // "From sender date\n" or "" (commands)
	Sender   string    // envelope sender (mbox)
	Time     time.Time // for the mbox From line
	Prefix   []byte    // headers to prepend
	NoLock   bool      // the agent holds the dot lock
	Owner    int       // required owner uid of an existing mbox, -1 for any
	Command  string
	Shell    []string // argv prefix for commands run through a shell
	Env      []string
	Dir      string
	Timeout  time.Duration
	Hostname string
}

// reply is a worker's answer.
type reply struct {
	Code int // statusSent, statusDefer, statusBounce
	DSN  string
	Text string
	Data []byte
	// Notes are maillog lines about the attempt, before the delivery
	// line: "warning: ..." or, for a command that could not be
	// executed, "fatal: ...".
	Notes []string
}

// MaybeRunWorker runs the delivery worker loop and exits when the process
// was started as a worker; otherwise it returns at once. Call it first in
// the main of any binary that runs an Agent.
func MaybeRunWorker() {
	if len(os.Args) < 2 || os.Args[1] != workerArg {
		return
	}
	syscall.Close(3) // the executable, passed to exec ourselves
	if os.Getenv("GOMAXPROCS") == "" {
		// One job at a time: a second thread only adds hand-offs.
		runtime.GOMAXPROCS(1)
	}
	serveWorker(os.Stdin, os.Stdout)
	os.Exit(0)
}

// serveWorker answers jobs read from r until r ends.
func serveWorker(r io.Reader, w io.Writer) {
	dec := gob.NewDecoder(r)
	enc := gob.NewEncoder(w)
	for {
		var j job
		if err := dec.Decode(&j); err != nil {
			return
		}
		var rep reply
		if j.Kind == jobRead {
			rep = readSmallFile(j.Path)
		} else {
			body := &chunkReader{dec: dec}
			rep = runJob(j, body)
			if err := body.drain(); err != nil {
				return
			}
		}
		if err := enc.Encode(rep); err != nil {
			return
		}
	}
}

// chunkReader reads the message chunks of one job.
type chunkReader struct {
	dec  *gob.Decoder
	buf  []byte
	done bool
	err  error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.done {
			return 0, io.EOF
		}
		if c.err != nil {
			return 0, c.err
		}
		var ch chunk
		if err := c.dec.Decode(&ch); err != nil {
			c.err = err
			return 0, err
		}
		if ch.Abort {
			c.err = errAborted
			return 0, c.err
		}
		if ch.End {
			c.done = true
			return 0, io.EOF
		}
		c.buf = ch.B
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// drain reads what is left of the job's message; it fails only when the
// pipe itself failed.
func (c *chunkReader) drain() error {
	_, err := io.Copy(io.Discard, c)
	if err == errAborted {
		return nil
	}
	return err
}

// chunk is one piece of a streamed message.
type chunk struct {
	B     []byte
	End   bool // message complete
	Abort bool // the agent could not read the message: undo the delivery
}

var errAborted = errors.New("message transfer aborted")

// creds identifies a worker's privileges.
type creds struct{ uid, gid int }

// worker is one running worker process.
type worker struct {
	c    creds
	cmd  *exec.Cmd
	in   io.WriteCloser
	enc  *gob.Encoder
	dec  *gob.Decoder
	idle *time.Timer
}

// pool keeps idle workers per uid/gid.
type pool struct {
	mu   sync.Mutex
	idle map[creds][]*worker
	exe  string // executable to re-run; "" means this process's
}

func (p *pool) get(c creds) (*worker, error) {
	p.mu.Lock()
	if ws := p.idle[c]; len(ws) > 0 {
		w := ws[len(ws)-1]
		p.idle[c] = ws[:len(ws)-1]
		p.mu.Unlock()
		if w.idle.Stop() {
			return w, nil
		}
		// the idle timer fired and is closing it; start another.
	} else {
		p.mu.Unlock()
	}
	return p.start(c)
}

func (p *pool) start(c creds) (*worker, error) {
	exe, err := os.Open(p.executable())
	if err != nil {
		return nil, fmt.Errorf("open executable: %w", err)
	}
	defer exe.Close()
	// The child execs its own copy of the descriptor, so directories the
	// target user cannot search do not matter.
	cmd := exec.Command("/proc/self/fd/3", workerArg)
	cmd.Args[0] = "local-worker"
	cmd.ExtraFiles = []*os.File{exe}
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid), Groups: []uint32{uint32(c.gid)}}
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start delivery worker for uid %d: %w", c.uid, err)
	}
	return &worker{c: c, cmd: cmd, in: in, enc: gob.NewEncoder(in), dec: gob.NewDecoder(out)}, nil
}

func (p *pool) executable() string {
	if p.exe != "" {
		return p.exe
	}
	return "/proc/self/exe"
}

// put returns a healthy worker for reuse.
func (p *pool) put(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		p.idle = map[creds][]*worker{}
	}
	w.idle = time.AfterFunc(workerIdle, func() {
		p.mu.Lock()
		ws := p.idle[w.c]
		for i, x := range ws {
			if x == w {
				p.idle[w.c] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
		w.close()
	})
	p.idle[w.c] = append(p.idle[w.c], w)
}

func (w *worker) close() {
	w.in.Close()
	done := make(chan struct{})
	go func() { w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		w.cmd.Process.Kill()
		<-done
	}
}

// closeAll stops every idle worker.
func (p *pool) closeAll() {
	p.mu.Lock()
	var all []*worker
	for c, ws := range p.idle {
		for _, w := range ws {
			if w.idle.Stop() {
				all = append(all, w)
			}
		}
		delete(p.idle, c)
	}
	p.mu.Unlock()
	for _, w := range all {
		w.close()
	}
}

var errWorker = errors.New("delivery worker failed")

// do runs one job as c, streaming msg (nil for jobRead).
func (p *pool) do(c creds, j job, msg io.Reader) (reply, error) {
	w, err := p.get(c)
	if err != nil {
		return reply{}, err
	}
	rep, err := w.run(j, msg)
	if err != nil {
		w.cmd.Process.Kill()
		w.close()
		return reply{}, fmt.Errorf("%w: %v", errWorker, err)
	}
	p.put(w)
	return rep, nil
}

func (w *worker) run(j job, msg io.Reader) (reply, error) {
	if err := w.enc.Encode(j); err != nil {
		return reply{}, err
	}
	var readErr error
	if j.Kind != jobRead {
		buf := make([]byte, chunkSize)
		for {
			n, err := msg.Read(buf)
			if n > 0 {
				if e := w.enc.Encode(chunk{B: buf[:n]}); e != nil {
					return reply{}, e
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				readErr = err
				break
			}
		}
		if err := w.enc.Encode(chunk{End: readErr == nil, Abort: readErr != nil}); err != nil {
			return reply{}, err
		}
	}
	var rep reply
	if err := w.dec.Decode(&rep); err != nil {
		return reply{}, err
	}
	if readErr != nil {
		// The worker got a truncated message; whatever it did, defer.
		return reply{Code: statusDefer, DSN: "4.3.0", Text: "error reading message: " + readErr.Error()}, nil
	}
	return rep, nil
}
