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

// runtimeNotification is the recipients' paragraphs of a report's first
// part, sorted: local(8) reports on recipients in parallel. (The prose
// around them is postdove's own.)
func runtimeNotification(t *testing.T, dir string) string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || !strings.Contains(string(b), "message/delivery-status") {
			continue
		}
		_, part, _ := strings.Cut(string(b), "Content-Description: Notification\n")
		_, part, _ = strings.Cut(part, "\n\n")
		part, _, _ = strings.Cut(part, "\n--")
		var paras []string
		for _, p := range strings.Split(part, "\n\n") {
			if p = strings.Trim(p, "\n"); strings.HasPrefix(p, "<") {
				paras = append(paras, p)
			}
		}
		sort.Strings(paras)
		return strings.Join(paras, "\n\n")
	}
	return ""
}

// TestRuntimeVerifyMatchesPostfix compares sendmail -bv's refusals, then
// runs it for a user, an unknown user and an alias with every kind of
// target, and compares what sendmail prints, local(8)'s lines, the
// bounce(8) line and the report: nothing is delivered, the sender gets a
// "Mail Delivery Status Report".
func TestRuntimeVerifyMatchesPostfix(t *testing.T) {
	opt := oracle.PostfixOptions{MainCF: runtimeMaildirCF,
		Aliases: "root: /dev/null\nrtbvlist: rtbvnosuch, \"|/bin/cat\", /var/tmp/rtbv-never-written\n"}
	var out [2]string
	var lines, dsn, bounce [2][]string
	var text [2]string
	var errs [2][]string
	for i, inst := range runtimeSystems(t, opt) {
		// Refused: no recipients, and -t.
		for _, args := range [][]string{{"-bv"}, {"-bv", "-t"}} {
			res := oracle.Run(inst.Sendmail(args...), "To: rtbvlist\n\n")
			errs[i] = append(errs[i], fmt.Sprintf("%v: exit %d, stdout %q, stderr %q", args, res.Code, res.Stdout, res.Stderr))
		}
		u := oracle.AddUser(t, inst.HomeDir, "rtbv")
		res := oracle.Run(inst.Sendmail("-bv", "-f", u.Name, u.Name, "nosuchuser", "rtbvlist"), "Subject: not read\n\n")
		if res.Code != 0 {
			t.Fatalf("%s sendmail -bv: exit %d: %s", inst.System, res.Code, res.Stderr)
		}
		names := map[string]string{u.Name: "USER"}
		out[i] = runtimeNormalize(res.Stdout, names)
		if n := oracle.WaitFiles(u.Maildir(), 1, 20*time.Second); n != 1 {
			t.Fatalf("%s: no report in %s\n%s", inst.System, u.Maildir(), inst.ReadMaillog())
		}
		log := runtimeWaitCount(inst, ": removed", 2, 20*time.Second)
		lines[i] = runtimeWithout(runtimeLocalLines(log, names), "status=sent")
		// One block per recipient, sorted.
		for _, l := range runtimeDSNFields(t, u.Maildir()) {
			l = runtimeNormalize(l, names)
			if strings.HasPrefix(l, "Final-Recipient:") || len(dsn[i]) == 0 {
				dsn[i] = append(dsn[i], l)
			} else {
				dsn[i][len(dsn[i])-1] += "\n\t" + l
			}
		}
		sort.Strings(dsn[i])
		text[i] = runtimeNormalize(runtimeNotification(t, u.Maildir()), names)
		for _, l := range regexp.MustCompile(`postfix/bounce\[\d+\]: [0-9A-F]+: (.*): [0-9A-F]+\n`).FindAllStringSubmatch(log, -1) {
			bounce[i] = append(bounce[i], l[1])
		}
		if _, err := os.Stat("/var/tmp/rtbv-never-written"); err == nil {
			os.Remove("/var/tmp/rtbv-never-written")
			t.Errorf("%s: -bv delivered to a file", inst.System)
		}
	}
	if strings.Join(errs[0], "\n") != strings.Join(errs[1], "\n") {
		t.Errorf("sendmail -bv errors differ\npostfix:\n\t%s\npostdove:\n\t%s", strings.Join(errs[0], "\n\t"), strings.Join(errs[1], "\n\t"))
	}
	if out[0] != out[1] {
		t.Errorf("sendmail -bv output differs\npostfix:  %q\npostdove: %q", out[0], out[1])
	}
	runtimeCompareLines(t, "sendmail -bv", lines)
	for what, v := range map[string][2][]string{"DSN fields": dsn, "bounce(8) lines": bounce} {
		if len(v[0]) == 0 || strings.Join(v[0], "\n") != strings.Join(v[1], "\n") {
			t.Errorf("%s differ\npostfix:\n\t%s\npostdove:\n\t%s", what, strings.Join(v[0], "\n\t"), strings.Join(v[1], "\n\t"))
		}
	}
	if text[0] == "" || text[0] != text[1] {
		t.Errorf("report text differs\npostfix:\n%s\npostdove:\n%s", text[0], text[1])
	}
}
