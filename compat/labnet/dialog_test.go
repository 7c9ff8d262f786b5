package labnet

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// smtpClient is a small SMTP client run with the lab's python3 on a host:
// it connects to port 25 of argv[1] (from address argv[2] when not
// empty), sends each command of the JSON list on stdin after the reply to
// the one before, and prints the greeting and every reply as a JSON list
// (null for a reply that never came).
const smtpClient = `import json, socket, sys
server, source = sys.argv[1], sys.argv[2]
s = socket.create_connection((server, 25), timeout=30, source_address=(source, 0) if source else None)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline()
        if not l:
            return None
        lines.append(l.decode("latin-1").rstrip("\r\n"))
        if len(l) < 4 or l[3:4] != b"-":
            return "\n".join(lines)
replies = [reply()]
for cmd in json.load(sys.stdin):
    if replies[-1] is None:
        break
    s.sendall(cmd.encode("latin-1") + b"\r\n")
    replies.append(reply())
json.dump(replies, sys.stdout)
`

// step is one SMTP command and the start of the reply it must get.
type step struct{ cmd, want string }

// smtpDialog runs one SMTP session from h to server's port 25, from
// address source unless it is "", and checks the greeting is 220 and
// each reply starts with its step's want; it returns the transcript.
func smtpDialog(t *testing.T, h *Host, server, source string, steps ...step) string {
	t.Helper()
	if err := h.WriteFile("/run/labnet/smtp-client.py", smtpClient, 0o644); err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, s := range steps {
		cmds = append(cmds, s.cmd)
	}
	in, _ := json.Marshal(cmds)
	r := h.RunInput(string(in), fmt.Sprintf("python3 /run/labnet/smtp-client.py %s '%s'", server, source))
	var replies []*string
	if err := json.Unmarshal([]byte(r.Stdout), &replies); err != nil || r.Code != 0 {
		t.Fatalf("%s: SMTP session with %s: exit %d %v\n%s%s", h.Name, server, r.Code, err, r.Stdout, r.Stderr)
	}
	var b strings.Builder
	for i, rep := range replies {
		if i > 0 {
			fmt.Fprintf(&b, "> %s\n", cmds[i-1])
		}
		if rep == nil {
			b.WriteString("(connection closed)\n")
			continue
		}
		b.WriteString(*rep + "\n")
	}
	transcript := b.String()
	fail := func(why string) {
		t.Errorf("%s -> %s (from %q): %s\n%s", h.Name, server, source, why, transcript)
	}
	if len(replies) == 0 || replies[0] == nil || !strings.HasPrefix(*replies[0], "220 ") {
		fail("no 220 greeting")
		return transcript
	}
	for i, s := range steps {
		if i+1 >= len(replies) || replies[i+1] == nil || !strings.HasPrefix(*replies[i+1], s.want) {
			fail(fmt.Sprintf("%s: want a reply starting %q", s.cmd, s.want))
			break
		}
	}
	return transcript
}
