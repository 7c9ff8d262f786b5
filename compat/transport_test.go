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
		"bob@mixed.example error:bob left",
		"mixed.example    discard:kept quiet",
	}, "\n")+"\n"), 0o644)
	opt := oracle.PostfixOptions{Hostname: "vm2.example.ops", MainCF: "transport_maps = texthash:" + table + "\n"}
	rcpts := []string{"a@gone.example", "b@plain.example", "c@quiet.example", "d@silent.example", "e@later.example", "bob@mixed.example", "carol@mixed.example"}
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
