package master

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envFDTest makes the test binary, run again by TestStrayFDs, call
// strayFDs and exec a shell that lists its descriptors.
const envFDTest = "POSTDOVE_FD_TEST"

func TestMain(m *testing.M) {
	// Run again as the master or a daemon (listen_test.go), this
	// binary serves master.cf's smtpd with a test server.
	RegisterServer("smtpd", testServe)
	MaybeRun()
	if dir := os.Getenv(envSpawnTest); dir != "" {
		pid, err := Spawn(dir)
		if err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(1)
		}
		os.Stdout.WriteString(strconv.Itoa(pid))
		os.Exit(0)
	}
	if how := os.Getenv(envFDTest); how != "" {
		strayFDs(how == "close", -1)
		f := os.NewFile(4, "kept")
		if how == "close" {
			// Closed: the descriptor is gone in this process already.
			if _, err := f.Stat(); err == nil {
				os.Stdout.WriteString("4 still open\n")
			}
		} else if _, err := f.Stat(); err != nil {
			os.Stdout.WriteString("4 closed: " + err.Error() + "\n")
		}
		err := syscall.Exec("/bin/sh", []string{"sh", "-c", "ls /proc/$$/fd"}, os.Environ())
		os.Stdout.WriteString("exec: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestStrayFDs: a descriptor a process inherits (here 3 and 4, as the
// master's ready pipe or a daemon's status pipe) does not reach what it
// executes, whether it is closed (the master) or kept for use (daemons).
func TestStrayFDs(t *testing.T) {
	for _, how := range []string{"close", "cloexec"} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), envFDTest+"="+how)
		cmd.ExtraFiles = []*os.File{w, r}
		out, err := cmd.Output()
		w.Close()
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v: %s", how, err, out)
		}
		fds := strings.Fields(string(out))
		for _, fd := range fds {
			if fd == "3" || fd == "4" || strings.Contains(string(out), ":") {
				t.Errorf("%s: the shell got %v", how, fds)
				break
			}
		}
	}
}

// TestAliveZombie: an exited process that nobody has reaped yet counts as
// gone (a master killed after postfix start has exited).
func TestAliveZombie(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for Alive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if Alive(pid) {
		t.Errorf("pid %d: a zombie counts as alive", pid)
	}
	if syscall.Kill(pid, 0) != nil {
		t.Errorf("pid %d was reaped: the test proves nothing", pid)
	}
	cmd.Wait()
	if !Alive(os.Getpid()) {
		t.Error("this process counts as gone")
	}
}

// TestDrainContext: on SIGTERM local's accept loop ends at once; once
// the master is gone it keeps taking connections (qmgr's last
// hand-overs) while any is open, and ends when they are done.
func TestDrainContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a := &activity{}
	drain := drainContext(ctx, a)
	cancel()
	select {
	case <-drain.Done():
	case <-time.After(drainMax):
		t.Fatal("with the master alive, the drain waited")
	}

	select {
	case <-orphaned:
	default:
		close(orphaned) // as when the status pipe breaks
	}
	raw, err := net.Listen("unix", filepath.Join(t.TempDir(), "local"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ln := a.listener(raw)
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("unix", raw.Addr().String())
		if err != nil {
			t.Fatalf("connect while draining: %v", err)
		}
		return c
	}
	accept := func() net.Conn {
		select {
		case c := <-accepted:
			return c
		case <-time.After(drainMax):
			t.Fatal("connection not accepted")
			return nil
		}
	}
	c1 := dial()
	s1 := accept()
	ctx, cancel = context.WithCancel(context.Background())
	drain = drainContext(ctx, a)
	cancel()
	// s1 is open: the drain goes on.
	c2 := dial()
	accept().Close()
	c2.Close()
	time.Sleep(drainIdle * 3 / 2)
	select {
	case <-drain.Done():
		t.Fatal("ended while a connection was open")
	default:
	}
	s1.Close()
	c1.Close()
	select {
	case <-drain.Done():
	case <-time.After(2 * drainMax):
		t.Fatal("not ended once idle")
	}
}
