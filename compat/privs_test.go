package compat

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// privsLocalFatal is local(8)'s fatal line: "postfix/local[pid]: fatal: ...".
var privsLocalFatal = regexp.MustCompile(`postfix/local\[\d+\]: (fatal: .*)`)

// TestRuntimeDefaultPrivsRootMatchesPostfix gives local(8) default_privs
// = root (master.cf -o, so that the other programs still start) and sends
// mail to a |command alias. Postfix's local refuses to run, with a fatal
// error naming main.cf in the maillog; the mail stays in the queue and the
// command never runs as root. postdove must do the same.
func TestRuntimeDefaultPrivsRootMatchesPostfix(t *testing.T) {
	dir, err := os.MkdirTemp("/var/tmp", "runtime-privs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o1777)
	marker := filepath.Join(dir, "ran")
	opt := oracle.PostfixOptions{Aliases: "root: /dev/null\npostmaster: root\ncmd: \"|/usr/bin/id >" + marker + "\"\n"}
	var fatals [2]string
	for i, inst := range runtimeSystems(t, opt) {
		mf := filepath.Join(inst.ConfigDir, "master.cf")
		b, err := os.ReadFile(mf)
		if err != nil {
			t.Fatal(err)
		}
		line := regexp.MustCompile(`(?m)^(local +unix .* local)$`)
		if !line.Match(b) {
			t.Fatalf("no local service in %s", mf)
		}
		if err := os.WriteFile(mf, line.ReplaceAll(b, []byte("$1 -o default_privs=root")), 0o644); err != nil {
			t.Fatal(err)
		}
		if res := oracle.Run(inst.Command("postfix", "reload"), ""); res.Code != 0 {
			t.Fatalf("%s reload: exit %d: %s", inst.System, res.Code, res.Stderr)
		}
		runtimeSend(t, inst, "Subject: privs\n\nbody\n", "cmd")
		log := runtimeWaitLog(t, inst, "postfix/local[", 20*time.Second)
		m := privsLocalFatal.FindStringSubmatch(log)
		if m == nil {
			t.Errorf("%s: no fatal error from local:\n%s", inst.System, log)
			continue
		}
		fatals[i] = strings.ReplaceAll(m[1], inst.ConfigDir, "CONFIG")
		if strings.Contains(log, "status=") {
			t.Errorf("%s: a delivery was made:\n%s", inst.System, log)
		}
		if res := oracle.Run(inst.Command("postqueue", "-p"), ""); !strings.Contains(res.Stdout, "cmd@mail.example.test") {
			t.Errorf("%s: the mail is not in the queue: %s%s", inst.System, res.Stdout, res.Stderr)
		}
		if b, err := os.ReadFile(marker); err == nil {
			t.Errorf("%s: the alias command ran: %s", inst.System, b)
			os.Remove(marker)
		}
		inst.Stop()
	}
	if want := "fatal: file CONFIG/main.cf: parameter default_privs: user root has privileged user ID"; fatals[0] != want || fatals[1] != fatals[0] {
		t.Errorf("local's fatal error:\npostfix:  %s\npostdove: %s\nwant:     %s", fatals[0], fatals[1], want)
	}
}
