package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// expansionScript writes what a delivery command gets (its arguments,
// working directory and local(8)'s environment) to a new file in OUT,
// written whole in OUT/tmp first. It hands each address to eval before:
// a value that held live shell syntax would run there.
const expansionScript = `#!/bin/sh
for v in "$SENDER" "$RECIPIENT" "$EXTENSION" "$LOCAL" "$ORIGINAL_RECIPIENT"; do
	(eval "true $v") >/dev/null 2>&1
done
f=$(mktemp OUT/tmp/dump.XXXXXX)
{
	echo "ARGV: $*"
	echo "PWD: $(pwd)"
	env | grep -E '^(SENDER|RECIPIENT|LOCAL|EXTENSION|DOMAIN|ORIGINAL_RECIPIENT|USER|LOGNAME|HOME|SHELL)=' | sort
} >"$f"
chmod 644 "$f"
mv "$f" OUT/
`

var expansionQueueID = regexp.MustCompile(`^\d+\]: warning: [0-9A-F]+:`)

// TestRuntimeCommandExpansionMatchesPostfix sends mail whose envelope
// sender and recipient extension (recipient_delimiter = +) hold shell
// syntax (backquotes, $VAR, ${IFS}, quotes, ;, &, |, spaces) to a |command
// alias, to a user whose mailbox_command is a plain command, and to a user
// whose forward_path picks ~/.forward+EXTENSION, and compares what each
// command receives with Postfix: its argv, working directory and
// environment, censored by command_expansion_filter, and the .forward file
// forward_expansion_filter makes the extension choose. A backquoted touch
// in the sender and the extension would create a file if any of it
// reached a shell; it never does.
func TestRuntimeCommandExpansionMatchesPostfix(t *testing.T) {
	dir, err := os.MkdirTemp("/var/tmp", "runtime-expand-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "dump")
	if err := os.WriteFile(script, []byte(strings.ReplaceAll(expansionScript, "OUT", out)), 0o755); err != nil {
		t.Fatal(err)
	}
	// Where the commands' users could create the file.
	shared := filepath.Join(dir, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(shared, 0o1777)
	pwned := filepath.Join(shared, "pwned")
	touch := "`touch${IFS}" + pwned + "`"
	opt := oracle.PostfixOptions{
		MainCF: "recipient_delimiter = +\nhome_mailbox = Maildir/\n" +
			"mailbox_command = " + script + " mbc arg2\n",
		Aliases: "root: /dev/null\npostmaster: root\nenvcmd: \"|" + script + " aliasarg\"\n",
	}
	var dumps, warnings [2][]string
	for i, sys := range []string{"postfix", "postdove"} {
		os.RemoveAll(out)
		for _, d := range []string{out, filepath.Join(out, "tmp")} {
			if err := os.Mkdir(d, 0o777); err != nil {
				t.Fatal(err)
			}
			os.Chmod(d, 0o1777)
		}
		var inst *oracle.Instance
		if sys == "postfix" {
			inst = oracle.StartPostfix(t, opt)
		} else {
			inst = oracle.StartPostdove(t, opt)
		}
		// Users without a ~/.forward get the mailbox_command.
		fwd := oracle.AddUser(t, inst.HomeDir, "rtxfwd")
		mbox := oracle.AddUser(t, inst.HomeDir, "rtxmbc")
		for name, arg := range map[string]string{".forward": "fwd-default", ".forward+_id_": "fwd-_id_", ".forward+a_b": "fwd-a_b"} {
			p := filepath.Join(fwd.Home, name)
			if err := os.WriteFile(p, []byte("\"|"+script+" "+arg+"\"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chown(p, fwd.UID, fwd.GID)
		}
		cases := []struct{ sender, rcpt string }{
			{"a" + touch + "$HOME!&*?~^{}#=|'b@example.com", "envcmd+" + touch + "$x&y|z'q"},
			{"plain@example.com", "envcmd"},
			{`"a b;c"@example.com`, `"` + mbox.Name + `+s t;u"`},
			{"s" + touch + "@example.com", mbox.Name + "+" + touch},
			{"plain@example.com", fwd.Name + "+`id`"},
			{"plain@example.com", fwd.Name + "+a&b"},
			{"plain@example.com", fwd.Name + "+nofile"},
			{"plain@example.com", "EnvCmd+MiXed"},
		}
		for _, c := range cases {
			runtimeSend(t, inst, "Subject: expansion\n\nbody\n", "-f", c.sender, c.rcpt)
		}
		deadline := time.Now().Add(20 * time.Second)
		for oracle.CountFiles(out) < len(cases)+1 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		entries, _ := os.ReadDir(out)
		names := strings.NewReplacer(fwd.Name, "FWDUSER", mbox.Name, "MBCUSER", inst.QueueDir, "QUEUE", inst.HomeDir, "HOMES", dir, "DIR")
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(out, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			dumps[i] = append(dumps[i], names.Replace(string(b)))
		}
		sort.Strings(dumps[i])
		if len(dumps[i]) != len(cases) {
			t.Errorf("%s: %d commands ran, want %d\nmaillog:\n%s", sys, len(dumps[i]), len(cases), inst.ReadMaillog())
		}
		if _, err := os.Stat(pwned); err == nil {
			t.Errorf("%s: an address was run by a shell: %s exists", sys, pwned)
			os.Remove(pwned)
		}
		// An extension holding a '/' is dropped, with a warning.
		for _, l := range strings.Split(inst.ReadMaillog(), "\n") {
			if _, w, ok := strings.Cut(l, "/local["); ok && strings.Contains(w, "illegal extension") {
				warnings[i] = append(warnings[i], names.Replace(expansionQueueID.ReplaceAllString(w, "]: warning: ID:")))
			}
		}
		sort.Strings(warnings[i])
		inst.Stop()
	}
	if a, b := strings.Join(dumps[0], "----\n"), strings.Join(dumps[1], "----\n"); a != b {
		t.Errorf("what the commands got differs\npostfix:\n%s\npostdove:\n%s", a, b)
	}
	if a, b := strings.Join(warnings[0], "\n"), strings.Join(warnings[1], "\n"); a != b || len(warnings[0]) != 2 {
		t.Errorf("illegal extension warnings differ\npostfix:\n%s\npostdove:\n%s", a, b)
	}
	if want := "ARGV: fwd-_id_\n"; !strings.Contains(strings.Join(dumps[0], ""), want) {
		t.Errorf("postfix did not choose ~/.forward+_id_:\n%s", fmt.Sprint(dumps[0]))
	}
}

// TestRuntimeForwardPathMatchesPostfix compares which ~/.forward file
// forward_path picks: $mailbox is the whole local part, a main.cf
// parameter ($myhostname) is no attribute (the entry is skipped, as is
// one naming $extension of an address without one), $extension is
// censored by forward_expansion_filter; and luser_relay's $extension is
// not censored.
func TestRuntimeForwardPathMatchesPostfix(t *testing.T) {
	var lines [2][]string
	for i, sys := range []string{"postfix", "postdove"} {
		dir, err := os.MkdirTemp("/var/tmp", "runtime-fwdpath-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		os.Chmod(dir, 0o755)
		u := oracle.AddUser(t, dir, "rtfwdp")
		opt := oracle.PostfixOptions{MainCF: "recipient_delimiter = +\nhome_mailbox = Maildir/\n" +
			"forward_path = $home/.fwd-main-$myhostname, $home/.fwd-$mailbox, $home/.fwd-$extension, $home/.forward\n" +
			"luser_relay = " + u.Name + "+$extension\n"}
		var inst *oracle.Instance
		if sys == "postfix" {
			inst = oracle.StartPostfix(t, opt)
		} else {
			inst = oracle.StartPostdove(t, opt)
		}
		for _, name := range []string{".fwd-main-mail.example.test", ".fwd-" + u.Name + "+ext", ".fwd-a&b", ".fwd-a_b", ".forward"} {
			p := filepath.Join(u.Home, name)
			if err := os.WriteFile(p, []byte("\"|/bin/echo "+name+"\"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chown(p, u.UID, u.GID)
		}
		rcpts := []string{u.Name + "+ext", "nosuch+a&b", "nosuch"}
		for _, r := range rcpts {
			runtimeSend(t, inst, "Subject: forward_path\n\nbody\n", r)
		}
		log := runtimeWaitCount(inst, "relay=local", len(rcpts), 20*time.Second)
		lines[i] = runtimeLocalLines(log, map[string]string{u.Name: "USER"})
		inst.Stop()
	}
	runtimeCompareLines(t, "forward_path", lines)
	if len(lines[0]) != 3 {
		t.Errorf("postfix made %d deliveries, want 3", len(lines[0]))
	}
}
