package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// TestPostlockMatchesPostfix runs Postfix's and postdove's postlock the
// same ways (a free mailbox, a missing one, a stale-free dot lock, a bad
// lock style, a command that fails, cannot start or dies) and compares
// exit codes, output and messages; then each holds a mailbox's lock
// while the other tries to take it.
func TestPostlockMatchesPostfix(t *testing.T) {
	o := oracle.Get(t)
	conf := t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), []byte("deliver_lock_attempts = 2\ndeliver_lock_delay = 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ours := oracle.Postdove(t, "postlock")
	commands := [2]func(args ...string) *exec.Cmd{
		func(args ...string) *exec.Cmd { return o.Command("postlock", append([]string{"-c", conf}, args...)...) },
		func(args ...string) *exec.Cmd { return exec.Command(ours, append([]string{"-c", conf}, args...)...) },
	}
	var got [2][]string
	dir := t.TempDir()
	box := filepath.Join(dir, "mbox")
	for i, command := range commands {
		os.Remove(filepath.Join(dir, "new"))
		os.WriteFile(box, nil, 0o600)
		for _, args := range [][]string{
			{}, {"MBOX"}, {"MBOX", "echo", "hi"}, {"MBOX", "sh", "-c", "exit 3"}, {"MBOX", "sh", "-c", "kill -KILL $$"},
			{"-l", "fcntl", "MBOX", "true"}, {"-l", "flock", "MBOX", "true"}, {"-l", "dotlock", "MBOX", "true"},
			{"-l", "bogus", "MBOX", "true"}, {"-l", "fcntl, bogus", "MBOX", "true"},
			{"MBOX", "/nonexistent/command"}, {"-x"}, {filepath.Join(dir, "new"), "true"},
		} {
			for j := range args {
				args[j] = strings.ReplaceAll(args[j], "MBOX", box)
			}
			res := oracle.Run(command(args...), "")
			got[i] = append(got[i], fmt.Sprintf("%q: exit %d: %s", args, res.Code, res.Stdout))
			got[i] = append(got[i], oracle.StderrShape(res.Stderr)...)
		}
		if fi, err := os.Stat(filepath.Join(dir, "new")); err != nil || fi.Mode().Perm() != 0o600 {
			got[i] = append(got[i], "missing mailbox not created 0600")
		}
		if err := os.WriteFile(box+".lock", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		res := oracle.Run(command(box, "true"), "")
		got[i] = append(got[i], fmt.Sprintf("dot locked: exit %d", res.Code))
		got[i] = append(got[i], oracle.StderrShape(res.Stderr)...)
		os.Remove(box + ".lock")
	}
	// Postfix's usage line names the program by its path.
	a := strings.ReplaceAll(strings.Join(got[0], "\n"), filepath.Join(o.Root, "usr/sbin")+"/", "")
	if b := strings.Join(got[1], "\n"); a != b {
		t.Errorf("postfix:\n%s\n\npostdove:\n%s", a, b)
	}
	// Each one's lock keeps the other out.
	ready := filepath.Join(dir, "ready")
	for i := range commands {
		os.Remove(ready)
		holder := commands[i]("-l", "fcntl", box, "sh", "-c", "touch "+ready+"; sleep 3")
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(ready); err == nil {
				break
			}
		}
		res := oracle.Run(commands[1-i]("-l", "fcntl", box, "true"), "")
		holder.Wait()
		if res.Code != 75 || !strings.Contains(res.Stderr, "fatal: open file "+box+": unable to lock for exclusive access: Resource temporarily unavailable") {
			t.Errorf("lock held by %d, other: exit %d: %s", i, res.Code, res.Stderr)
		}
	}
}
