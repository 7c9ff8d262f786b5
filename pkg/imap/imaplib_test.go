package imap

import (
	"os/exec"
	"strings"
	"testing"
)

// imaplibScript is a Thunderbird-like opening written with Python's
// imaplib: it prints what the checks below compare.
const imaplibScript = `
import imaplib, sys
port = int(sys.argv[1])
M = imaplib.IMAP4("127.0.0.1", port)
typ, caps = M.capability()
M.login("alice", "secret")
typ, caps = M.capability()
print("caps", b"IDLE" in caps[0].split(), b"SPECIAL-USE" in caps[0].split())
typ, data = M._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
print("list", typ, M._untagged_response(typ, data, "LIST")[1])
typ, data = M.lsub()
print("lsub", typ, data)
typ, data = M.select("INBOX")
print("select", typ, data)
typ, data = M.uid("FETCH", "1:*", "(FLAGS)")
print("flags", typ, data)
typ, data = M.fetch("1:2", "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (From Subject)])")
print("headers", typ, [d[1] for d in data if isinstance(d, tuple)])
typ, data = M.fetch("2", "(BODY[TEXT])")
print("text", typ, data[0][1])
typ, data = M.create("Trash")
print("create", typ)
typ, data = M.subscribe("Trash")
typ, data = M.lsub()
print("lsub2", typ, data)
typ, data = M._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
print("list2", typ, M._untagged_response(typ, data, "LIST")[1])
typ, data = M.uid("COPY", "1", "Trash")
print("copy", typ, data)
typ, data = M.store("1", "+FLAGS.SILENT", "(\\Deleted)")
typ, data = M.expunge()
print("expunge", typ, data)
M.create("Sent")
typ, data = M.append("Sent", "(\\Seen)", None, b"From: alice@example.com\r\nSubject: sent\r\n\r\nhi\r\n")
print("append", typ, data)
typ, data = M.status("Sent", "(MESSAGES UNSEEN UIDNEXT)")
print("status", typ, data)
typ, data = M.search(None, "UNSEEN")
print("search", typ, data)
M.close()
M.logout()
`

// TestImaplib replays a mail client's opening with Python's imaplib.
func TestImaplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	r := newRig(t)
	r.deliver("INBOX", testMessage(1))
	r.deliver("INBOX", testMessage(2))
	_, port, _ := strings.Cut(r.ln.Addr().String(), ":")
	out, err := exec.Command(py, "-c", imaplibScript, port).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{
		"caps True True\n",
		`list OK [b'() "." INBOX']` + "\n",
		"lsub OK [None]\n",
		"select OK [b'2']\n",
		"flags OK [b'1 (UID 1 FLAGS ())', b'2 (UID 2 FLAGS ())']\n",
		"headers OK [b'From: Bob <bob@example.org>\\r\\nSubject: test 1\\r\\n\\r\\n', b'From: Bob <bob@example.org>\\r\\nSubject: test 2\\r\\n\\r\\n']\n",
		"text OK b'body 2\\r\\nline two\\r\\n'\n",
		"create OK\n",
		`lsub2 OK [b'(\\Subscribed) "." "Trash"']` + "\n",
		`list2 OK [b'() "." INBOX', b'(\\Trash) "." "Trash"']` + "\n",
		"copy OK ",
		"expunge OK [b'1']\n",
		"append OK [b'[APPENDUID ",
		"status OK [b'\"Sent\" (MESSAGES 1 UIDNEXT 2 UNSEEN 0)']\n",
		"search OK [b'']\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if line := r.log.wait(t, "Disconnected:"); !strings.Contains(line, "Logged out") || !strings.Contains(line, "expunged=1") {
		t.Errorf("log %q", line)
	}
}
