package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/addr"
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

// TestRuntimeHopcountMatchesPostfix sends messages with 48 and 49
// Received: headers: with the Received: header the system adds, the
// second reaches hopcount_limit (50) in Postfix and is not delivered;
// postdove must deliver the same ones, and bounce the other to its
// sender with the same warning and log line.
func TestRuntimeHopcountMatchesPostfix(t *testing.T) {
	var got, bounced [2][]string
	hopLines := regexp.MustCompile(`(?m)(warning: [0-9A-F]+: message rejected: hopcount exceeded|to=<[^>]*>, relay=none, .*dsn=5\.4\.0, status=bounced \(too many hops\))$`)
	ids := regexp.MustCompile(`[0-9A-F]{10,}|to=<[^>]*>|delay=[^ ]+ delays=[^ ]+ `)
	for i, inst := range []*oracle.Instance{
		oracle.StartPostfix(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF}),
		oracle.StartPostdove(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF}),
	} {
		u := oracle.AddUser(t, inst.HomeDir, "hops")
		for _, n := range []int{49, 48} {
			runtimeSend(t, inst, fmt.Sprintf("Subject: hops %d\n", n)+strings.Repeat("Received: from a by b\n", n)+"\nbody\n", "-oi", u.Name)
		}
		oracle.WaitFiles(u.Maildir(), 1, 30*time.Second)
		limitsWaitQueueEmpty(t, inst, 30*time.Second)
		entries, _ := os.ReadDir(u.Maildir())
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(u.Maildir(), e.Name()))
			if _, rest, ok := strings.Cut(string(b), "\nSubject: "); ok {
				s, _, _ := strings.Cut(rest, "\n")
				got[i] = append(got[i], s)
			}
		}
		sort.Strings(got[i])
		log := runtimeWaitLog(t, inst, "status=bounced (too many hops)", 30*time.Second)
		for _, l := range hopLines.FindAllString(log, -1) {
			bounced[i] = append(bounced[i], ids.ReplaceAllString(l, ""))
		}
		// The warning is logged once per Received: header over the
		// limit by Postfix: compare the distinct lines.
		bounced[i] = slices.Compact(bounced[i])
	}
	if strings.Join(got[0], ", ") != strings.Join(got[1], ", ") {
		t.Errorf("delivered: postfix %q, postdove %q", got[0], got[1])
	}
	if strings.Join(bounced[0], "\n") != strings.Join(bounced[1], "\n") || len(bounced[0]) == 0 {
		t.Errorf("too many hops:\npostfix:\n%s\npostdove:\n%s", strings.Join(bounced[0], "\n"), strings.Join(bounced[1], "\n"))
	}
}

// limitsWaitQueueEmpty waits until maildrop, incoming and active hold no
// file: every message submitted has been delivered, bounced or dropped.
func limitsWaitQueueEmpty(t *testing.T, inst *oracle.Instance, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		n := 0
		for _, q := range []string{"maildrop", "incoming", "active"} {
			filepath.WalkDir(filepath.Join(inst.QueueDir, q), func(_ string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					n++
				}
				return nil
			})
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d files still in the queue after %v", inst.System, n, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRuntimeAddressTokenLimitMatchesPostfix sends a To: header of 3,000
// addresses (about 18,000 tokens) to both systems: what is delivered must
// hold the same addresses, those within header_address_token_limit
// (10240). (Postfix also folds the header it rewrites; postdove keeps the
// original layout: not compared.)
func TestRuntimeAddressTokenLimitMatchesPostfix(t *testing.T) {
	var rcpts []string
	for i := 0; i < 3000; i++ {
		rcpts = append(rcpts, fmt.Sprintf("a%d@x.example", i))
	}
	var got [2][]string
	for i, inst := range []*oracle.Instance{
		oracle.StartPostfix(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF}),
		oracle.StartPostdove(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF}),
	} {
		u := oracle.AddUser(t, inst.HomeDir, "tokens")
		runtimeSend(t, inst, "Subject: tokens\nTo: "+strings.Join(rcpts, ", ")+"\n\nbody\n", "-oi", u.Name)
		if n := oracle.WaitFiles(u.Maildir(), 1, 30*time.Second); n != 1 {
			t.Fatalf("%s: not delivered\n%s", inst.System, inst.ReadMaillog())
		}
		entries, _ := os.ReadDir(u.Maildir())
		b, err := os.ReadFile(filepath.Join(u.Maildir(), entries[0].Name()))
		if err != nil {
			t.Fatal(err)
		}
		_, to, _ := strings.Cut(string(b), "\nTo: ")
		to, _, _ = strings.Cut(to, "\nMessage-Id: ")
		got[i] = addr.ParseList(to)
	}
	if len(got[0]) == 0 || len(got[0]) >= len(rcpts) || strings.Join(got[0], " ") != strings.Join(got[1], " ") {
		t.Errorf("To: addresses: postfix %d, ending %q; postdove %d, ending %q", len(got[0]), got[0][max(0, len(got[0])-2):], len(got[1]), got[1][max(0, len(got[1])-2):])
	}
}

// TestRuntimeVirtualAliasLimitsMatchPostfix: a recipient whose virtual
// alias expansion passes virtual_alias_expansion_limit (1000), or nests
// deeper than virtual_alias_recursion_limit (1000), keeps its message
// waiting with Postfix's warning, while a message sent after it is
// delivered.
func TestRuntimeVirtualAliasLimitsMatchPostfix(t *testing.T) {
	var many, chain []string
	for i := 0; i < 1100; i++ {
		many = append(many, fmt.Sprintf("m%d@remote.example", i))
	}
	for i := 0; i < 1005; i++ {
		chain = append(chain, fmt.Sprintf("{c%d@mail.example.test = c%d@mail.example.test}", i, i+1))
	}
	dir, err := os.MkdirTemp("/var/tmp", "virtual-limits-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	virtual := filepath.Join(dir, "virtual")
	if err := os.WriteFile(virtual, []byte("big@mail.example.test "+strings.Join(many, ",")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opt := oracle.PostfixOptions{MainCF: runtimeMaildirCF + "virtual_alias_maps = texthash:" + virtual + ", inline:{" + strings.Join(chain, ",") + "}\n"}
	for _, inst := range []*oracle.Instance{oracle.StartPostfix(t, opt), oracle.StartPostdove(t, opt)} {
		u := oracle.AddUser(t, inst.HomeDir, "valias")
		runtimeSend(t, inst, "Subject: big\n\nx\n", "-oi", "big")
		runtimeSend(t, inst, "Subject: nested\n\nx\n", "-oi", "c0")
		runtimeSend(t, inst, "Subject: after\n\nx\n", "-oi", u.Name)
		if n := oracle.WaitFiles(u.Maildir(), 1, 30*time.Second); n != 1 {
			t.Errorf("%s: the message after the deferred ones was not delivered\n%s", inst.System, inst.ReadMaillog())
		}
		for _, want := range []string{
			"unreasonable virtual_alias_maps map expansion size for big@mail.example.test -- message not accepted, try again later",
			"unreasonable virtual_alias_maps map nesting for c0@mail.example.test -- message not accepted, try again later",
		} {
			if log := runtimeWaitLog(t, inst, want, 10*time.Second); !strings.Contains(log, want) {
				t.Errorf("%s: maillog lacks %q:\n%s", inst.System, want, log)
			}
		}
		if res := oracle.Run(inst.Command("mailq"), ""); !strings.Contains(res.Stdout, " big\n") || !strings.Contains(res.Stdout, " c0\n") {
			t.Errorf("%s: mailq lacks the waiting messages:\n%s", inst.System, res.Stdout)
		}
	}
}

// TestRuntimeAddressHeadersMatchPostfix: a header whose addresses cleanup
// rewrites (unqualified names get @myhostname) is written anew, in
// Postfix's layout (tokens re-spaced, lines folded before 70 columns);
// one with nothing to rewrite is left as it was. The headers delivered by
// both systems must be the same, byte for byte.
func TestRuntimeAddressHeadersMatchPostfix(t *testing.T) {
	var many []string
	for i := 0; i < 3000; i++ {
		many = append(many, fmt.Sprintf("a%d@x.example", i))
	}
	msgs := []string{
		"Subject: F\nTo: alice, bob, carol, dave, erin, frank, grace, heidi, ivan, judy, mallory, niaj, olivia\n\nbody\n",
		"Subject: G\nCc:   Joe   Q  <joe>  (a   comment) ,  \"x  y\"@z.example,,, team: m, o@p.example; last\n\nbody\n",
		"Subject: H\nTo: alice,\n  bob\n\nbody\n",
		"Subject: I\nFrom: Me Myself <me>\nReply-To: \"Quoted, Name\" <rt>\n\nbody\n",
		"Subject: J\nTo: <a>, b@c.example (x), \"d\" <e>, f(y), g <h> (z), i.j@k.example\n\nbody\n",
		"Subject: K\nTo:alice\nCc: x@y.example,\n  z@y.example\n\nbody\n",
		"Subject: L\nTo: " + strings.Join(many, ", ") + "\n\nbody\n",
	}
	var got [2][]string
	for i, inst := range []*oracle.Instance{
		oracle.StartPostfix(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF}),
		oracle.StartPostdove(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF}),
	} {
		u := oracle.AddUser(t, inst.HomeDir, "addrhdr")
		for _, m := range msgs {
			runtimeSend(t, inst, m, "-oi", u.Name)
		}
		if n := oracle.WaitFiles(u.Maildir(), len(msgs), 30*time.Second); n != len(msgs) {
			t.Fatalf("%s: %d of %d delivered\n%s", inst.System, n, len(msgs), inst.ReadMaillog())
		}
		entries, _ := os.ReadDir(u.Maildir())
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(u.Maildir(), e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			got[i] = append(got[i], limitsUserHeaders(string(b)))
		}
		sort.Strings(got[i])
	}
	for j := range got[0] {
		if got[0][j] != got[1][j] {
			p, d := got[0][j], got[1][j]
			if len(p) > 600 {
				k := max(0, firstDiff(p, d)-100)
				p, d = "..."+p[k:min(len(p), k+400)], "..."+d[k:min(len(d), k+400)]
			}
			t.Errorf("headers differ\npostfix:\n%s\npostdove:\n%s", p, d)
		}
	}
}
