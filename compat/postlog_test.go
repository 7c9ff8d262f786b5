package compat

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// postlogRecord drops the time, host name and process ID of a maillog line.
var postlogRecord = regexp.MustCompile(`^\S+ +\d+ \d\d:\d\d:\d\d \S+ ([^\[]*)\[\d+\]: (.*)$`)

// postlogTags are the tags TestPostlogMatchesPostfix logs with.
var postlogTags = map[string]bool{"postfix/postlog": true, "mytag": true, "tag2": true, "": true}

// TestPostlogMatchesPostfix runs postlog the same ways with the real
// Postfix and postdove and compares the exit codes and the records each
// added to the maillog.
func TestPostlogMatchesPostfix(t *testing.T) {
	cases := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"hello", "world"}},
		{"", []string{"-t", "mytag", "-p", "warning", "something", "bad"}},
		{"", []string{"-p", "ERROR", "upper", "case"}},
		{"", []string{"-p", "fatal", "dying"}},
		{"", []string{"-i", "-p", "panic", "x", "-t", "y"}},
		{"line1\nline2\n\nlast without newline", []string{"-t", "tag2"}},
		{"", []string{"-t", "", "empty", "tag"}},
		{"", []string{"-p", "bogus", "not", "logged"}},
		{"", []string{"-x"}},
		{"", []string{"-t"}},
	}
	var got [2][]string
	for i, inst := range runtimeSystems(t, oracle.PostfixOptions{}) {
		mark := len(inst.ReadMaillog())
		for _, c := range cases {
			res := oracle.Run(inst.Command("postlog", c.args...), c.stdin)
			got[i] = append(got[i], strings.Join(c.args, " ")+": exit "+string(rune('0'+res.Code)))
		}
		// Postfix's postlog hands its records to postlogd: wait for all
		// ten.
		var records []string
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			records = records[:0]
			for _, l := range strings.Split(inst.ReadMaillog()[mark:], "\n") {
				// Only postlog's tags: the daemons may log meanwhile.
				if m := postlogRecord.FindStringSubmatch(l); m != nil && postlogTags[m[1]] {
					records = append(records, m[1]+": "+m[2])
				}
			}
			if len(records) >= 10 || time.Now().After(deadline) {
				break
			}
		}
		got[i] = append(got[i], records...)
	}
	if strings.Join(got[0], "\n") != strings.Join(got[1], "\n") {
		t.Errorf("postfix:\n%s\n\npostdove:\n%s", strings.Join(got[0], "\n"), strings.Join(got[1], "\n"))
	}
	if !strings.Contains(strings.Join(got[1], "\n"), "\nmytag: warning: something bad\n") {
		t.Errorf("no record of postlog -t mytag -p warning:\n%s", strings.Join(got[1], "\n"))
	}
}

// TestPostkickMatchesPostfix compares postkick's answers: a request to a
// running service, to one that does not exist, and usage errors.
func TestPostkickMatchesPostfix(t *testing.T) {
	var got [2][]string
	for i, inst := range runtimeSystems(t, oracle.PostfixOptions{}) {
		for _, args := range []string{"public qmgr I", "public nosuch W", "bogus pickup W", "private nosuch W", "public pickup", "-x", ""} {
			res := oracle.Run(inst.Command("postkick", strings.Fields(args)...), "")
			// Postfix's postkick can die of SIGPIPE when the FIFO's
			// reader goes away mid-write (a daemon restarting): that
			// is not what is compared here, so ask again.
			for try := 0; res.Code < 0 && try < 3; try++ {
				time.Sleep(200 * time.Millisecond)
				res = oracle.Run(inst.Command("postkick", strings.Fields(args)...), "")
			}
			got[i] = append(got[i], args+": exit "+strconv.Itoa(res.Code))
			got[i] = append(got[i], oracle.StderrShape(res.Stderr)...)
		}
	}
	if strings.Join(got[0], "\n") != strings.Join(got[1], "\n") {
		t.Errorf("postfix:\n%s\n\npostdove:\n%s", strings.Join(got[0], "\n"), strings.Join(got[1], "\n"))
	}
}
