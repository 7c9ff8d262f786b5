package postlock

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMainLocks(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("deliver_lock_attempts = 1\n"), 0o644)
	box := filepath.Join(dir, "mbox")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(append([]string{"-c", dir}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	// The command runs while the dot lock exists.
	if code, out, _ := run(box, "sh", "-c", "ls "+box+".lock; exit 7"); code != 7 || out != box+".lock\n" {
		t.Errorf("exit %d, output %q", code, out)
	}
	if _, err := os.Stat(box + ".lock"); err == nil {
		t.Errorf("dot lock left behind")
	}
	if fi, err := os.Stat(box); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mailbox not created 0600: %v", err)
	}
	os.WriteFile(box+".lock", nil, 0o600)
	if code, _, errs := run(box, "true"); code != ExTempFail || errs != "postlock: fatal: open file "+box+": unable to create lock file "+box+".lock: File exists\n" {
		t.Errorf("locked: exit %d: %q", code, errs)
	}
	if code, _, errs := run("-l", "fcntl,nfs", box, "true"); code != ExTempFail || errs != "postlock: fatal: unknown mailbox_delivery_lock value \"nfs\" in \"fcntl,nfs\"\n" {
		t.Errorf("-l fcntl,nfs: exit %d: %q", code, errs)
	}
	if code, _, _ := run("-l", "fcntl", box, "true"); code != 0 {
		t.Errorf("-l fcntl with a dot lock present: exit %d", code)
	}
}
