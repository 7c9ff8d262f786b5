package tests

import (
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
