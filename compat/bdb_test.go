package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// TestPostfixBuiltTables: the Berkeley DB files Postfix's own postmap and
// postalias wrote are read by postdove's postmap and postalias as they
// are: -q, -q - and -s give what the real commands give on the same
// files, and -i and -d carry a file over into postdove's format with the
// same entries.
func TestPostfixBuiltTables(t *testing.T) {
	o := oracle.Get(t)
	dir := postmapSetup(t, o.DynamicMapsConfig(), map[string]string{
		"aliases": "root: john\nsales: charles,john,\n  mike\nTeam: alice\nowner-sales: root\nlong: " +
			strings.Repeat("member, ", 1000) + "last\n",
		"virtual": func() string {
			var b strings.Builder
			for i := 0; i < 3000; i++ {
				fmt.Fprintf(&b, "user%d@Example.COM u%d\n", i, i)
			}
			b.WriteString("@example.net catchall\nbig@example.com " + strings.Repeat("x", 9000) + "\n")
			return b.String()
		}(),
	})
	run := func(prog string, ours bool, stdin string, args ...string) oracle.Result {
		cmd := o.Command(prog, append([]string{"-c", "."}, args...)...)
		if ours {
			p := oracle.Postdove(t, prog)
			cmd.Path, cmd.Args[0] = p, p
		}
		cmd.Dir = dir
		return oracle.Run(cmd, stdin)
	}
	for _, typ := range []string{"hash", "btree"} {
		os.Link(filepath.Join(dir, "aliases"), filepath.Join(dir, typ+"-aliases"))
		os.Link(filepath.Join(dir, "virtual"), filepath.Join(dir, typ+"-virtual"))
		for _, b := range [][]string{{"postalias", typ + ":" + typ + "-aliases"}, {"postmap", typ + ":" + typ + "-virtual"}} {
			if res := run(b[0], false, "", b[1]); res.Code != 0 {
				t.Fatalf("oracle %s %s: %d %s", b[0], b[1], res.Code, res.Stderr)
			}
		}
	}
	steps := []struct {
		prog, stdin string
		args        []string
	}{
		{"postalias", "", []string{"-q", "team", "hash:hash-aliases"}},
		{"postalias", "", []string{"-q", "nobody", "hash:hash-aliases"}},
		{"postalias", "root\nsales\nTEAM\nlong\n@\nnone\n", []string{"-q", "-", "hash:hash-aliases"}},
		{"postalias", "root\nsales\nTEAM\nlong\n@\nnone\n", []string{"-q", "-", "btree:btree-aliases"}},
		{"postalias", "", []string{"-s", "btree:btree-aliases"}},
		{"postmap", "", []string{"-q", "USER7@example.com", "hash:hash-virtual"}},
		{"postmap", "", []string{"-q", "big@example.com", "btree:btree-virtual"}},
		{"postmap", "user1@example.com\nuser2999@example.com\n@example.net\nnone\n", []string{"-q", "-", "hash:hash-virtual", "btree:btree-virtual"}},
		{"postmap", "", []string{"-s", "hash:hash-virtual"}},
		{"postmap", "", []string{"-s", "btree:btree-virtual"}},
		{"postmap", "", []string{"-q", "root", "btree:hash-aliases"}},
		{"postmap", "", []string{"-q", "root", "hash:btree-aliases"}},
	}
	for i, st := range steps {
		want := run(st.prog, false, st.stdin, st.args...)
		got := run(st.prog, true, st.stdin, st.args...)
		sorted := st.args[0] == "-s"
		if ws, gs := postmapStdout(want.Stdout, sorted), postmapStdout(got.Stdout, sorted); !reflect.DeepEqual(ws, gs) {
			t.Errorf("step %d %s %q: stdout\n got %.300q\nwant %.300q", i, st.prog, st.args, gs, ws)
		}
		// Berkeley DB's own complaint (BDB0641 ...) comes before
		// Postfix's line; the line itself must match.
		we, ge := bdbStderr(want.Stderr), oracle.StderrShape(got.Stderr)
		if !reflect.DeepEqual(we, ge) {
			t.Errorf("step %d %s %q: stderr\n got %q\nwant %q", i, st.prog, st.args, ge, we)
		}
		if want.Code != got.Code {
			t.Errorf("step %d %s %q: exit %d, want %d", i, st.prog, st.args, got.Code, want.Code)
		}
	}

	// postmap -d and -i on Postfix's file: postdove's format, same entries.
	for _, typ := range []string{"hash", "btree"} {
		spec := typ + ":" + typ + "-virtual"
		want := run("postmap", false, "", "-s", spec)
		for _, step := range [][]string{{"-d", "user5@example.com", spec}, {"-i", spec}} {
			if res := run("postmap", true, "new@example.com fresh\n", step...); res.Code != 0 {
				t.Fatalf("postdove postmap %q: %d %s", step, res.Code, res.Stderr)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(dir, typ+"-virtual.db")); strings.HasPrefix(string(b[12:16]), "\x62\x31\x05\x00") || strings.HasPrefix(string(b[12:16]), "\x61\x15\x06\x00") {
			t.Errorf("%s: still a Berkeley DB file", spec)
		}
		got := run("postmap", true, "", "-s", spec)
		wl := postmapStdout(want.Stdout+"new@example.com\tfresh\n", true)
		var wantLines []string
		for _, l := range wl {
			if !strings.HasPrefix(l, "user5@example.com\t") {
				wantLines = append(wantLines, l)
			}
		}
		if gl := postmapStdout(got.Stdout, true); !reflect.DeepEqual(gl, wantLines) {
			t.Errorf("%s after -d and -i: %d entries, want %d", spec, len(gl), len(wantLines))
		}
	}
}

// bdbStderr is StderrShape without Berkeley DB's own diagnostics.
func bdbStderr(s string) []string {
	var out []string
	for _, l := range oracle.StderrShape(s) {
		if !strings.HasPrefix(l, "BDB") && !strings.Contains(l, "__db_") {
			out = append(out, l)
		}
	}
	return out
}

// TestRuntimeUnavailableLocalTables: with an alias database or a
// mailbox_command_maps table that does not exist, both systems defer the
// mail with the same local(8) lines (error, warnings, status=deferred) and
// mailq shows the same reason.
func TestRuntimeUnavailableLocalTables(t *testing.T) {
	for _, c := range []struct{ mainCF, reason string }{
		{"alias_maps = hash:/nonexistent-postdove-test/aliases\n", "alias database unavailable"},
		{"mailbox_command_maps = hash:/nonexistent-postdove-test/commands\n", "table lookup failure"},
	} {
		var shapes [2][]string
		for i, inst := range runtimeSystems(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF + c.mainCF}) {
			u := oracle.AddUser(t, inst.HomeDir, "rtal")
			runtimeSend(t, inst, "Subject: tables\n\nbody\n", u.Name)
			log := runtimeWaitLog(t, inst, "status=deferred", 20*time.Second)
			id := runtimeFirstID(log)
			norm := map[string]string{u.Name: "USER", id: "ID"}
			for _, l := range strings.Split(log, "\n") {
				if !strings.Contains(l, "postfix/local[") || strings.Contains(l, "overriding earlier entry") {
					continue
				}
				if j := strings.Index(l, "]: "); j > 0 {
					shapes[i] = append(shapes[i], runtimeNormalize(l[j+3:], norm))
				}
			}
			// mailq shows the reason once the message is back in the
			// deferred queue.
			rx := regexp.MustCompile(`\n +\(` + c.reason + `\)\n +` + u.Name + `@`)
			res := oracle.Run(inst.Command("postqueue", "-p"), "")
			for deadline := time.Now().Add(10 * time.Second); !rx.MatchString(res.Stdout) && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
				res = oracle.Run(inst.Command("postqueue", "-p"), "")
			}
			if !rx.MatchString(res.Stdout) {
				t.Errorf("%s: mailq:\n%s", inst.System, res.Stdout)
			}
			inst.Stop()
		}
		if len(shapes[0]) < 4 {
			t.Errorf("Postfix's local logged %q, want error, two warnings and the deferral", shapes[0])
		}
		if !reflect.DeepEqual(shapes[0], shapes[1]) {
			t.Errorf("local's lines differ\npostfix:  %q\npostdove: %q", shapes[0], shapes[1])
		}
	}
}
