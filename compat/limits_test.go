package compat

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// limitsUserHeaders returns the delivered message's header fields from
// Subject: on (what the sender wrote, before the ones cleanup adds),
// each with its continuation lines.
func limitsUserHeaders(msg string) string {
	head, _, _ := strings.Cut(msg, "\n\n")
	i := strings.Index(head, "\nSubject: ")
	if i < 0 {
		return ""
	}
	head = head[i+1:]
	if j := strings.Index(head, "\nMessage-Id: "); j >= 0 {
		head = head[:j+1]
	}
	return head
}

// TestRuntimeHeaderSizeLimitMatchesPostfix sends messages with headers
// beyond header_size_limit (a long line, many continuation lines, lines
// that fit or not at the edge) to the real Postfix and to postdove and
// compares what each delivered of the headers, byte for byte.
func TestRuntimeHeaderSizeLimitMatchesPostfix(t *testing.T) {
	cont := func(s string, n int) string { return strings.Repeat(" "+s+"\n", n) }
	msgs := []string{
		"Subject: m1\nX-Big: start\n" + cont("cont", 200000) + "X-After: after\n\nbody\n",
		"Subject: m2\nX-Big: start " + strings.Repeat("y", 120000) + "\nX-After: after\n\nbody\n",
		"Subject: m3\nX-Big: start\n" + cont(strings.Repeat("c", 4999), 30) + "X-After: after\n\nbody\n",
		"Subject: m4\nX-Big: " + strings.Repeat("y", 102380) + "\n " + strings.Repeat("z", 30) + "\n z\nX-After: after\n\nbody\n",
		"Subject: m5\nX-Big: " + strings.Repeat("y", 102393) + "\n z\nX-After: after\n\nbody\n",
		"Subject: m6 " + strings.Repeat("x", 5000) + "\nX-After: y\n\nbody " + strings.Repeat("y", 5000) + "\n",
	}
	var got [2][]string
	for i, inst := range []*oracle.Instance{
		oracle.StartPostfix(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF}),
		oracle.StartPostdove(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF}),
	} {
		u := oracle.AddUser(t, inst.HomeDir, "hdrlim")
		for _, m := range msgs {
			runtimeSend(t, inst, m, "-oi", u.Name)
		}
		if n := oracle.WaitFiles(u.Maildir(), len(msgs), 60*time.Second); n != len(msgs) {
			t.Fatalf("%s: %d of %d messages delivered\n%s", inst.System, n, len(msgs), inst.ReadMaillog())
		}
		entries, _ := os.ReadDir(u.Maildir())
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(u.Maildir(), e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			_, body, _ := strings.Cut(string(b), "\n\n")
			got[i] = append(got[i], limitsUserHeaders(string(b))+"\n"+body)
		}
		sort.Strings(got[i]) // by Subject
	}
	for j := range got[0] {
		if j >= len(got[1]) || got[0][j] != got[1][j] {
			p, d := got[0][j], ""
			if j < len(got[1]) {
				d = got[1][j]
			}
			t.Errorf("message %d: postfix kept %d bytes of header and body, postdove %d; they differ at byte %d", j+1, len(p), len(d), firstDiff(p, d))
		}
	}
}

func firstDiff(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}
