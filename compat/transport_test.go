package compat

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// transportLines are the maillog lines of the error, retry and discard
// agents, without time, pid, queue ID and delays, sorted.
func transportLines(log string) []string {
	re := regexp.MustCompile(`(?m)^.* (postfix/(?:error|retry|discard))\[\d+\]: [0-9A-F]+: (to=.*)$`)
	delays := regexp.MustCompile(`delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		out = append(out, m[1]+": "+delays.ReplaceAllString(m[2], "delay=D"))
	}
	sort.Strings(out)
	return out
}

// transport_maps sends a domain to error: (with and without a status
// code and text), to discard: and to retry:, as trivial-rewrite does;
// the error, discard and retry agents log the same lines as Postfix's.
func TestTransportMapsErrorDiscard(t *testing.T) {
	dir, err := os.MkdirTemp("/var/tmp", "pdttransport-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	table := filepath.Join(dir, "transport")
	os.WriteFile(table, []byte(strings.Join([]string{
		"gone.example     error:5.1.1 this domain is gone",
		"plain.example    error:",
		"quiet.example    discard:",
		"silent.example   discard:dropped here",
		"later.example    retry:4.4.1 try later",
		"soft.example     error:4.7.1 soft failure",
		"hard.example     retry:5.7.1 hard failure",
		"odd.example      discard:5.1.1 odd code",
		"coded.example    discard:2.7.0 coded",
		"bob@mixed.example error:bob left",
		"mixed.example    discard:kept quiet",
	}, "\n")+"\n"), 0o644)
	opt := oracle.PostfixOptions{Hostname: "vm2.example.ops", MainCF: "transport_maps = texthash:" + table + "\n"}
	rcpts := []string{"a@gone.example", "b@plain.example", "c@quiet.example", "d@silent.example", "e@later.example", "f@soft.example", "g@hard.example", "h@odd.example", "i@coded.example", "bob@mixed.example", "carol@mixed.example"}
	run := func(inst *oracle.Instance) []string {
		if res := oracle.Run(inst.Sendmail(append([]string{"-f", "root@vm2.example.ops"}, rcpts...)...), "Subject: t\n\nbody\n"); res.Code != 0 {
			t.Fatalf("sendmail: %d %s", res.Code, res.Stderr)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			lines := transportLines(inst.ReadMaillog())
			if len(lines) >= len(rcpts) || time.Now().After(deadline) {
				return lines
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	theirs := run(oracle.StartPostfix(t, opt))
	ours := run(oracle.StartPostdove(t, opt))
	if len(theirs) != len(rcpts) {
		t.Fatalf("postfix logged %d lines:\n%s", len(theirs), strings.Join(theirs, "\n"))
	}
	if strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
		t.Errorf("postdove:\n%s\npostfix:\n%s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
	}
}

// passingLines are local's "passing <addr> to transport=..." lines
// without time, pid and queue ID, sorted.
func passingLines(log string) []string {
	re := regexp.MustCompile(`(?m)^.* (postfix/local)\[\d+\]: [0-9A-F]+: (passing .*)$`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		out = append(out, m[1]+": "+m[2])
	}
	sort.Strings(out)
	return out
}

// local hands the mailbox of every recipient, with an account or not, to
// mailbox_transport, and a recipient it does not know (without
// mailbox_transport) to fallback_transport; that agent delivers and
// logs, local logs that it passed it on, as Postfix's local does.
func TestLocalMailboxAndFallbackTransport(t *testing.T) {
	home, err := os.MkdirTemp("/var/tmp", "pdtmbt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	os.Chmod(home, 0o755)
	u := oracle.AddUser(t, home, "pdtmbt")
	for _, c := range []struct {
		name, maincf string
		n            int
	}{
		{"mailbox_transport", "mailbox_transport = error:5.2.1 mailboxes are elsewhere\nfallback_transport = discard:\n", 3},
		{"fallback_transport", "fallback_transport = discard:\n", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := oracle.PostfixOptions{Hostname: "vm2.example.ops", MainCF: c.maincf,
				Aliases: "postmaster: root\nroot: /dev/null\nteam: " + u.Name + "\n"}
			rcpts := []string{u.Name, "team", "nosuchuser"}
			run := func(inst *oracle.Instance) []string {
				if res := oracle.Run(inst.Sendmail(append([]string{"-f", "root@vm2.example.ops"}, rcpts...)...), "Subject: t\n\nbody\n"); res.Code != 0 {
					t.Fatalf("sendmail: %d %s", res.Code, res.Stderr)
				}
				deadline := time.Now().Add(20 * time.Second)
				for {
					log := inst.ReadMaillog()
					lines := transportLines(log)
					if len(lines) >= c.n && strings.Contains(log, "removed") || time.Now().After(deadline) {
						return append(lines, passingLines(log)...)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			theirs := run(oracle.StartPostfix(t, opt))
			ours := run(oracle.StartPostdove(t, opt))
			if len(theirs) != 2*c.n {
				t.Fatalf("postfix logged %d lines:\n%s", len(theirs), strings.Join(theirs, "\n"))
			}
			if strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
				t.Errorf("postdove:\n%s\npostfix:\n%s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
			}
		})
	}
}
