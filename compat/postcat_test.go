package compat

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// postcatKept are the postcat lines that must read the same for the same
// message in Postfix's queue and in postdove's.
var postcatKept = regexp.MustCompile(`^(sender|recipient|original_recipient|named_attribute: rewrite_context)[:=]`)

var postcatHashDir = regexp.MustCompile(`deferred/[0-9A-F]/ID`)

// TestPostcatMatchesPostfix queues the same message (for a remote domain,
// so that it stays deferred) in the real Postfix and in postdove and
// compares what each one's postcat -q prints: the section markers, the
// envelope records both have, the arrival time's format, the header
// field names and the body; -h and -b select the same parts.
func TestPostcatMatchesPostfix(t *testing.T) {
	long := strings.Repeat("x", 3000)
	msg := "Subject: postcat test\nFrom: Alice <alice@example.com>\nX-Folded: a\n b\n\nbody line 1\n\nlong " + long + "\nend\n"
	var full, header, body [2]string
	for i, inst := range runtimeSystems(t, oracle.PostfixOptions{MainCF: "defer_transports = smtp\n"}) {
		runtimeSend(t, inst, msg, "-f", "alice@example.com", "-F", "Alice A", "bob@example.org")
		log := runtimeWaitLog(t, inst, "status=deferred", 20*time.Second)
		id := runtimeFirstID(log)
		if id == "" {
			t.Fatalf("%s: no queue ID in the maillog:\n%s", inst.System, log)
		}
		show := func(args ...string) string {
			res := oracle.Run(inst.Command("postcat", append(args, "-q", id)...), "")
			if res.Code != 0 || res.Stderr != "" {
				t.Fatalf("%s postcat %v: exit %d: %s", inst.System, args, res.Code, res.Stderr)
			}
			// deferred/7/ID: the hash folder follows from the ID.
			return postcatHashDir.ReplaceAllString(strings.ReplaceAll(res.Stdout, id, "ID"), "deferred/H/ID")
		}
		// The deferred line is logged before the file leaves active/.
		out := show()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out, "*** ENVELOPE RECORDS deferred/") && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			out = show()
		}
		var kept []string
		head, content, _ := strings.Cut(out, "\n*** MESSAGE CONTENTS deferred/H/ID ***\n")
		for _, l := range strings.Split(head+"\n*** MESSAGE CONTENTS deferred/H/ID ***", "\n") {
			switch {
			case postcatKept.MatchString(l), strings.HasPrefix(l, "***"):
				kept = append(kept, l)
			case strings.HasPrefix(l, "message_arrival_time: "):
				if _, err := time.Parse("Mon Jan _2 15:04:05 2006", strings.TrimPrefix(l, "message_arrival_time: ")); err != nil {
					t.Errorf("%s: %q: %v", inst.System, l, err)
				}
			}
		}
		hdr, rest, _ := strings.Cut(content, "\n\n")
		full[i] = strings.Join(kept, "\n") + "\n--\n" + strings.Join(runtimeHeaderNames(hdr+"\n"), " ") + "\n--\n" + rest
		header[i] = strings.Join(runtimeHeaderNames(show("-h")), " ")
		body[i] = show("-b")
	}
	for _, c := range []struct {
		what string
		got  [2]string
	}{{"postcat", full}, {"postcat -h", header}, {"postcat -b", body}} {
		if c.got[0] != c.got[1] {
			t.Errorf("%s:\npostfix:\n%s\npostdove:\n%s", c.what, c.got[0], c.got[1])
		}
	}
}
