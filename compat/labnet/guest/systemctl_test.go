package guest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newSystemctl runs Systemctl with units, state and links in folders of
// the test's.
func newSystemctl(t testing.TB, units map[string]string) func(args ...string) (string, string, int) {
	dir := t.TempDir()
	UnitDirs = []string{filepath.Join(dir, "etc"), filepath.Join(dir, "lib")}
	StateDir, WantsDir = filepath.Join(dir, "state"), filepath.Join(dir, "etc/multi-user.target.wants")
	os.MkdirAll(UnitDirs[1], 0o755)
	for name, text := range units {
		if err := os.WriteFile(filepath.Join(UnitDirs[1], name), []byte(strings.ReplaceAll(text, "DIR", dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := Systemctl(args, &out, &errb)
		return out.String(), errb.String(), code
	}
}

// A forking service as postfix.service is: ExecStartPre, ExecStart that
// leaves a daemon and its pid file, ExecReload, ExecStop.
const forking = `[Unit]
Description=A forking test daemon

[Service]
Type=forking
PIDFile=DIR/daemon.pid
ExecStartPre=/bin/sh -c 'test ! -e DIR/broken'
ExecStart=/bin/sh -c 'sleep 60 >/dev/null 2>&1 & echo $! > DIR/daemon.pid; echo started'
ExecReload=/bin/sh -c 'echo reloaded >> DIR/log'
ExecStop=/bin/sh -c 'kill $(cat DIR/daemon.pid)'
`

func TestSystemctl(t *testing.T) {
	sc := newSystemctl(t, map[string]string{"daemon.service": forking})
	dir := filepath.Dir(UnitDirs[0])
	check := func(args string, wantOut, wantErr string, wantCode int) {
		t.Helper()
		out, errs, code := sc(strings.Fields(args)...)
		if code != wantCode || !strings.Contains(out, wantOut) || !strings.Contains(errs, wantErr) {
			t.Errorf("systemctl %s: exit %d, stdout %q, stderr %q; want %d, %q, %q", args, code, out, errs, wantCode, wantOut, wantErr)
		}
	}
	check("is-active daemon", "inactive\n", "", 3)
	check("status daemon", "Active: inactive (dead)", "", 3)
	check("reload daemon", "", "daemon.service is not active, cannot reload.\n", 1)
	check("start daemon", "", "", 0)
	check("is-active daemon.service", "active\n", "", 0)
	check("status daemon", "● daemon.service - A forking test daemon", "", 0)
	check("status daemon", "Active: active (running) since ", "", 0)
	check("status daemon", "started", "", 0)
	check("reload daemon", "", "", 0)
	if b, _ := os.ReadFile(filepath.Join(dir, "log")); string(b) != "reloaded\n" {
		t.Errorf("ExecReload did not run: %q", b)
	}
	check("restart daemon", "", "", 0)
	check("stop daemon", "", "", 0)
	check("is-active daemon", "inactive\n", "", 3)
	check("stop daemon", "", "", 0)

	check("is-enabled daemon", "disabled\n", "", 1)
	check("enable daemon", "", "Created symlink "+WantsDir+"/daemon.service → "+UnitDirs[1]+"/daemon.service.\n", 0)
	check("is-enabled daemon", "enabled\n", "", 0)
	check("enable --now daemon", "", "", 0)
	check("is-active daemon", "active\n", "", 0)
	check("disable --now daemon", "", "Removed \""+WantsDir+"/daemon.service\".\n", 0)
	check("is-active daemon", "inactive\n", "", 3)

	os.WriteFile(filepath.Join(dir, "broken"), nil, 0o644)
	check("start daemon", "", "Job for daemon.service failed because the control process exited with error code.\n", 1)
	check("is-active daemon", "failed\n", "", 3)
	check("status daemon", "Active: failed (Result: exit-code)", "", 3)

	check("start nosuch", "", "Failed to start nosuch.service: Unit nosuch.service not found.\n", 5)
	check("status nosuch", "", "Unit nosuch.service could not be found.\n", 4)
	check("is-enabled nosuch", "", "Failed to get unit file state for nosuch.service: No such file or directory\n", 1)
	check("frobnicate daemon", "", "Unknown command verb frobnicate.\n", 1)
	check("start", "", "Too few arguments.\n", 1)
	check("start --bogus daemon", "", "systemctl: unrecognized option '--bogus'\n", 1)
	check("start ../daemon", "", "Unit name ../daemon is not valid.\n", 1)
}

// FuzzSystemctl: any command line gets an answer and an exit code, never
// a panic, and nothing is written outside the state and unit folders.
func FuzzSystemctl(f *testing.F) {
	for _, s := range []string{"start one", "status one.service", "enable --now one", "is-enabled", "-q", "reload one two", "stop ../../x", "status /", "--bogus", "disable --now one"} {
		f.Add(s)
	}
	sc := newSystemctl(f, map[string]string{"one.service": "[Unit]\nDescription=one\n[Service]\nType=oneshot\nExecStart=/bin/true\n"})
	root := filepath.Dir(UnitDirs[0])
	f.Fuzz(func(t *testing.T, line string) {
		_, _, code := sc(strings.Fields(line)...)
		if code < 0 || code > 5 {
			t.Errorf("systemctl %s: exit %d", line, code)
		}
		if ents, _ := os.ReadDir(filepath.Dir(root)); len(ents) != 1 {
			t.Errorf("systemctl %s wrote beside its folder: %v", line, ents)
		}
	})
}
