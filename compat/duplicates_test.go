package compat

import (
	"os"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// TestRuntimeRecipientsDeliveredOneByOneMatchPostfix sends one message to
// alice, alice+ext, bob and a list holding alice and bob. Postfix's
// local(8) takes one recipient per request, so duplicates are eliminated
// within one recipient's expansion only: every recipient gets its
// delivery and its maillog line: alice gets three copies, bob two.
func TestRuntimeRecipientsDeliveredOneByOneMatchPostfix(t *testing.T) {
	var lines [2][]string
	var copies [2][2]int
	for i, sys := range []string{"postfix", "postdove"} {
		dir, err := os.MkdirTemp("/var/tmp", "runtime-dups-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		os.Chmod(dir, 0o755)
		alice, bob := oracle.AddUser(t, dir, "rtdupa"), oracle.AddUser(t, dir, "rtdupb")
		opt := oracle.PostfixOptions{MainCF: runtimeMaildirCF + "recipient_delimiter = +\n",
			Aliases: "root: /dev/null\npostmaster: root\nteam: " + alice.Name + ", " + bob.Name + "\n"}
		var inst *oracle.Instance
		if sys == "postfix" {
			inst = oracle.StartPostfix(t, opt)
		} else {
			inst = oracle.StartPostdove(t, opt)
		}
		runtimeSend(t, inst, "Subject: duplicates\n\nbody\n", alice.Name, alice.Name+"+ext", bob.Name, "team")
		log := runtimeWaitCount(inst, "relay=local", 5, 20*time.Second)
		lines[i] = runtimeLocalLines(log, map[string]string{alice.Name: "ALICE", bob.Name: "BOB"})
		copies[i] = [2]int{oracle.CountFiles(alice.Maildir()), oracle.CountFiles(bob.Maildir())}
		inst.Stop()
	}
	runtimeCompareLines(t, "duplicates", lines)
	if copies[0] != copies[1] || len(lines[0]) != 5 {
		t.Errorf("copies for alice, bob: postfix %v, postdove %v; postfix made %d deliveries, want 5", copies[0], copies[1], len(lines[0]))
	}
}
