package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// A non-delivery notification that cannot be queued (here it is larger
// than message_size_limit) keeps the message; once it can be, the retry
// sends it, and only then is the message removed.
func TestBounceNoticeIsRetried(t *testing.T) {
	l := labStart(t, "message_size_limit = 4000\n", "")
	alice := l.user("pdtalice")
	body := strings.Repeat("a line of the returned message\n", 80)
	if res := l.sendmail("Subject: to nobody\n\n"+body, "-f", alice.Name, "pdtnosuch4"); res.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", res.Code, res.Stderr)
	}
	id := l.waitLog(`postfix/qmgr\[\d+\]: warning: ([0-9A-F]+): sender non-delivery notification failed: .*Message size exceeds fixed limit`)[1]
	if n := l.queueFiles("deferred"); n != 1 {
		t.Fatalf("%d files in deferred/, want the message kept", n)
	}
	l.must(l.Command("postconf", "-e", "message_size_limit = 10240000"), "")
	// The queue manager reads main.cf when it starts.
	l.shutdown()
	l.must(l.Command("postfix", "start"), "")
	l.waitFor("postqueue -f to reach the new qmgr", func() bool {
		return oracle.Run(l.Command("postqueue", "-f"), "").Code == 0
	})
	box := l.waitMbox(alice.Name, "Final-Recipient: rfc822; pdtnosuch4@vm2.example.ops")
	if !strings.Contains(box, "Subject: Undelivered Mail Returned to Sender") {
		t.Errorf("notification:\n%s", box)
	}
	l.waitLog(`postfix/bounce\[\d+\]: ` + id + `: sender non-delivery notification: [0-9A-F]+`)
	l.waitLog(`postfix/qmgr\[\d+\]: ` + id + `: removed`)
	if n := l.queueFiles("bounce"); n != 0 {
		t.Errorf("%d bounce logfiles left", n)
	}
}

// A recipient that an alias of another recipient already delivered to is
// done, not deferred: one copy, and the message is removed.
func TestDuplicateRecipientIsDone(t *testing.T) {
	l := labStart(t, "", "")
	alice := l.user("pdtalice")
	l.setAliases("pdtteam: " + alice.Name + "\n")
	if res := l.sendmail("Subject: twice\n\nonce only\n", alice.Name, "pdtteam"); res.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitMbox(alice.Name, "once only")
	id := l.waitLog(`postfix/qmgr\[\d+\]: ([0-9A-F]+): removed`)[1]
	if n := strings.Count(l.mbox(alice.Name), "once only"); n != 1 {
		t.Errorf("%d copies delivered, want 1", n)
	}
	if m := regexp.MustCompile(`(?m)^.*` + id + `: .*(status=deferred|warning).*$`).FindString(l.ReadMaillog()); m != "" {
		t.Errorf("maillog: %s", m)
	}
}

// sendmail -bv delivers nothing: the sender gets a delivery status report
// saying what delivery to each recipient would do, as with Postfix.
func TestSendmailVerify(t *testing.T) {
	l := labStart(t, "", "")
	alice := l.user("pdtalice")
	file, ran := filepath.Join(l.Out, "bvfile"), filepath.Join(l.Out, "bvcmd")
	l.setAliases("pdtteam: " + alice.Name + ", pdtnosuch5, \"|/usr/bin/touch " + ran + "\", " + file + "\npdtsame: " + alice.Name + "\n")
	// pdtsame only duplicates alice: nothing is reported about it.
	res := l.sendmail("Subject: not read\n\nstdin is not read\n", "-bv", "-f", alice.Name, alice.Name, "pdtnosuch6", "pdtteam", "pdtsame")
	if res.Code != 0 || res.Stdout != "Mail Delivery Status Report will be mailed to <"+alice.Name+">.\n" {
		t.Fatalf("sendmail -bv: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	box := l.waitMbox(alice.Name, "Subject: Mail Delivery Status Report")
	box = strings.ReplaceAll(box, "\n    ", " ") // lines wrapped at 80 columns
	id := l.waitLog(`postfix/bounce\[\d+\]: ([0-9A-F]+): sender delivery status notification: [0-9A-F]+`)[1]
	l.waitLog(`postfix/qmgr\[\d+\]: ` + id + `: removed`)
	a := alice.Name + "@vm2.example.ops"
	for _, want := range []string{
		"\nHere is the delivery report you asked for: what the mail system\nwould do with mail to each recipient. Nothing was delivered.\n",
		"<" + a + "> (expanded from <" + alice.Name + ">): delivery via local: delivers to mailbox\n",
		"<pdtnosuch6@vm2.example.ops> (expanded from <pdtnosuch6>): delivery via local: unknown user: \"pdtnosuch6\"\n",
		"Final-Recipient: rfc822; " + a + "\nOriginal-Recipient: rfc822;" + a + "\nAction: deliverable\nStatus: 2.0.0\nDiagnostic-Code: X-Postfix; delivery via local: delivers to mailbox\n",
		"Final-Recipient: rfc822; pdtnosuch6@vm2.example.ops\nOriginal-Recipient: rfc822;pdtnosuch6@vm2.example.ops\nAction: undeliverable\nStatus: 5.1.1\n",
		"Final-Recipient: rfc822; pdtteam@vm2.example.ops\nOriginal-Recipient: rfc822;pdtteam@vm2.example.ops\nAction: deliverable\nStatus: 2.0.0\nDiagnostic-Code: X-Postfix; delivery via local: delivers to command: /usr/bin/touch " + ran + "\n",
		"Diagnostic-Code: X-Postfix; delivery via local: delivers to file: " + file + "\n",
		"Content-Description: Message Headers\nContent-Type: text/rfc822-headers\n",
		"\nSubject: probe\n",
	} {
		if !strings.Contains(box, want) {
			t.Errorf("report lacks %q:\n%s", want, box)
		}
	}
	if strings.Contains(box, "stdin is not read") || strings.Count(box, "Final-Recipient:") != 5 || strings.Contains(box, "Original-Recipient: rfc822;pdtsame") || strings.Count(box, "\nFrom ")+1 != strings.Count("\n"+box, "\nFrom ") || strings.Count("\n"+box, "\nFrom ") != 1 {
		t.Errorf("mailbox holds more than the report:\n%s", box)
	}
	for _, p := range []string{file, ran} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written: -bv delivered", p)
		}
	}
	log := l.ReadMaillog()
	for _, re := range []string{
		`postfix/local\[\d+\]: ` + id + `: to=<` + a + `>, orig_to=<` + alice.Name + `>, relay=local, .*dsn=2\.0\.0, status=deliverable \(delivers to mailbox\)`,
		`postfix/local\[\d+\]: ` + id + `: to=<pdtnosuch6@vm2\.example\.ops>, orig_to=<pdtnosuch6>, relay=local, .*dsn=5\.1\.1, status=undeliverable \(unknown user: "pdtnosuch6"\)`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("maillog lacks %s", re)
		}
	}
}
