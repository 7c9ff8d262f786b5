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
// target, and compares what sendmail prints, the maillog lines about the
// probe and the report: nothing is delivered, the sender gets a
// "Mail Delivery Status Report".
func TestRuntimeVerifyMatchesPostfix(t *testing.T) {
	opt := oracle.PostfixOptions{MainCF: runtimeMaildirCF,
		Aliases: "root: /dev/null\nrtbvlist: rtbvnosuch, \"|/bin/cat\", /var/tmp/rtbv-never-written\n"}
	// What each system did, by what it is.
	var got [2]map[string][]string
	for i, inst := range runtimeSystems(t, opt) {
		got[i] = map[string][]string{}
		// Refused: no recipients, and -t.
		for _, args := range [][]string{{"-bv"}, {"-bv", "-t"}} {
			res := oracle.Run(inst.Sendmail(args...), "To: rtbvlist\n\n")
			got[i]["refusals"] = append(got[i]["refusals"], fmt.Sprintf("%v: exit %d, stdout %q, stderr %q", args, res.Code, res.Stdout, res.Stderr))
		}
		u := oracle.AddUser(t, inst.HomeDir, "rtbv")
		res := oracle.Run(inst.Sendmail("-bv", "-f", u.Name, u.Name, "nosuchuser", "rtbvlist"), "Subject: not read\n\n")
		if res.Code != 0 {
			t.Fatalf("%s sendmail -bv: exit %d: %s", inst.System, res.Code, res.Stderr)
		}
		names := map[string]string{u.Name: "USER"}
		got[i]["sendmail output"] = []string{runtimeNormalize(res.Stdout, names)}
		if n := oracle.WaitFiles(u.Maildir(), 1, 20*time.Second); n != 1 {
			t.Fatalf("%s: no report in %s\n%s", inst.System, u.Maildir(), inst.ReadMaillog())
		}
		log := runtimeWaitCount(inst, ": removed", 2, 20*time.Second)
		// Every line about the probe, sorted (local(8) reports on
		// recipients in parallel); the report's queue ID is a name too.
		id := runtimeFirstID(log)
		names[id] = "ID"
		for _, l := range regexp.MustCompile(`: ([0-9A-F]+): sender delivery status notification: ([0-9A-F]+)\n`).FindAllStringSubmatch(log, -1) {
			names[l[2]] = "REPORTID"
		}
		lines := runtimeLogShape(log, id, names)
		sort.Strings(lines)
		got[i]["maillog lines about the probe"] = lines
		// One block per recipient, sorted.
		var dsn []string
		for _, l := range runtimeDSNFields(t, u.Maildir()) {
			l = runtimeNormalize(l, names)
			if strings.HasPrefix(l, "Final-Recipient:") || len(dsn) == 0 {
				dsn = append(dsn, l)
			} else {
				dsn[len(dsn)-1] += "\n\t" + l
			}
		}
		sort.Strings(dsn)
		got[i]["report's DSN fields"] = dsn
		got[i]["report's text"] = []string{runtimeNormalize(runtimeNotification(t, u.Maildir()), names)}
		if _, err := os.Stat("/var/tmp/rtbv-never-written"); err == nil {
			os.Remove("/var/tmp/rtbv-never-written")
			t.Errorf("%s: -bv delivered to a file", inst.System)
		}
	}
	for what, want := range got[0] {
		if len(want) == 0 || want[0] == "" || strings.Join(want, "\n") != strings.Join(got[1][what], "\n") {
			t.Errorf("%s differ\npostfix:\n\t%s\npostdove:\n\t%s", what, strings.Join(want, "\n\t"), strings.Join(got[1][what], "\n\t"))
		}
	}
}
