package labnet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envTeardown tells a child test process how to end once its lab is up:
// "panic", or "hang" until it is killed.
const envTeardown = "LABNET_TEARDOWN_TEST"

// envNets names the file where the child writes its lab's network
// namespaces.
const envNets = "LABNET_TEARDOWN_NETS"

// TestTeardownAfterPanic and TestTeardownAfterKill run a lab in a child
// test process that panics, or is killed with SIGKILL, with the lab up:
// nothing of it may be left.
func TestTeardownAfterPanic(t *testing.T) { teardownAfter(t, "panic") }
func TestTeardownAfterKill(t *testing.T)  { teardownAfter(t, "hang") }

func teardownAfter(t *testing.T, how string) {
	if os.Getenv(envTeardown) == how {
		lab := New(t)
		lab.Host("vm2").Must(t, "systemctl start postfix")
		var nets []string
		for _, h := range append([]*Host{lab.sw}, lab.order()...) {
			ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", h.PID()))
			nets = append(nets, ns)
		}
		if err := os.WriteFile(os.Getenv(envNets), []byte(strings.Join(nets, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		if how == "panic" {
			panic("labnet: a test panics with its lab up")
		}
		time.Sleep(time.Minute)
		return
	}
	requirements(t)
	mountsBefore := mounts(t)
	netsFile := filepath.Join(t.TempDir(), "nets")
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envTeardown+"="+how, envNets+"="+netsFile)
	var out SafeBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if b, err := os.ReadFile(netsFile); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the child's lab did not come up:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if how == "hang" {
		cmd.Process.Kill()
	}
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("the child passed:\n%s", out.String())
	}
	if how == "panic" && !strings.Contains(out.String(), "panic: labnet: a test panics") {
		t.Errorf("the child did not panic:\n%s", out.String())
	}
	if how == "hang" {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("the child ended with %v", cmd.ProcessState)
		}
	}
	b, _ := os.ReadFile(netsFile)
	nets := strings.Split(string(b), "\n")
	deadline = time.Now().Add(10 * time.Second)
	for {
		left := inNamespaces(nets)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes left in the lab's namespaces: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after := mounts(t); !slices.Equal(after, mountsBefore) {
		t.Errorf("mounts changed:\n%s\nafter:\n%s", strings.Join(mountsBefore, "\n"), strings.Join(after, "\n"))
	}
}
