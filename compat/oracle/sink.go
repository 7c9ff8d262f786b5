package oracle

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Sink is a running smtp-sink(1) from Debian's Postfix: an SMTP (or, with
// -L, LMTP) server that captures every transaction to a dump file.
type Sink struct {
	Addr string // host:port, or the unix socket's path
	Dump string // the -D dump file
	dir  string
}

// FreePort returns a TCP port that is free on ip now; it skips the test
// when ip cannot be bound.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartSink runs smtp-sink with opts on a free port of ip, or on a unix
// socket when ip is "unix:", until the test ends, as nobody.
func StartSink(t testing.TB, ip string, opts ...string) *Sink {
	t.Helper()
	o := Get(t)
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // smtp-sink runs as nobody
	os.Chmod(dir, 0o777)
	s := &Sink{Dump: filepath.Join(dir, "dump"), dir: dir}
	network, listen := "tcp", ""
	if ip == "unix:" {
		s.Addr = filepath.Join(dir, "lmtp")
		network, listen = "unix", "unix:"+s.Addr
	} else {
		s.Addr = fmt.Sprintf("%s:%d", ip, FreePort(t, ip))
		listen = s.Addr
	}
	args := append([]string{"-u", "nobody", "-D", s.Dump}, opts...)
	cmd := o.Command("smtp-sink", append(args, listen, "1000")...)
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("smtp-sink: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial(network, s.Addr)
		if err == nil {
			c.Close()
			return s
		}
		if i > 100 {
			t.Fatalf("smtp-sink does not listen on %s: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Hop is the sink as a next hop: "[ip]:port".
func (s *Sink) Hop() string {
	h, p, _ := net.SplitHostPort(s.Addr)
	return "[" + h + "]:" + p
}

// Read returns what the sink captured so far.
func (s *Sink) Read(t testing.TB) string {
	b, err := os.ReadFile(s.Dump)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// Counters is the last "sess=N quit=N mesg=N" smtp-sink -c printed
// (the first session is StartSink's probe, which says nothing).
func (s *Sink) Counters() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "stdout"))
	out := strings.TrimRight(string(b), "\r")
	return out[strings.LastIndexByte(out, '\r')+1:]
}
