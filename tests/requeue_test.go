package tests

import (
	"fmt"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// postsuper -r puts a queued message back through pickup and cleanup: it
// is not taken for a corrupt maildrop file, only its recipients not yet
// delivered are tried again, and pickup is woken at once.
func TestPostsuperRequeue(t *testing.T) {
	// Nothing listens at the relayhost: carol's copy stays deferred.
	l := labStart(t, fmt.Sprintf("relayhost = [127.0.0.2]:%d\n", oracle.FreePort(t, "127.0.0.2")), "")
	alice := l.user("pdtalice")
	if res := l.sendmail("Subject: half done\n\nonce\n", alice.Name, "carol@remote.example"); res.Code != 0 {
		t.Fatalf("sendmail: %+v", res)
	}
	l.waitMbox(alice.Name, "\nonce\n")
	l.waitLog(`postfix/smtp\[\d+\]: [0-9A-F]+: to=<carol@remote\.example>, relay=none, .*status=deferred`)
	if res := l.must(l.binCmd("postsuper", "-r", "ALL"), ""); res.Code != 0 || !strings.Contains(res.Stderr, "Requeued: 1 message") {
		t.Fatalf("postsuper -r ALL: %+v", res)
	}
	lines := l.waitLog(`postfix/qmgr\[\d+\]: [0-9A-F]+: from=<root@vm2\.example\.ops>, size=\d+, nrcpt=1 \(queue active\)`)
	if len(lines) == 0 {
		t.Fatal("the requeued message was not picked up again")
	}
	if n := l.queueFiles("corrupt"); n != 0 {
		t.Errorf("%d files in corrupt/ after requeue", n)
	}
	if got := strings.Count(l.mbox(alice.Name), "\nonce\n"); got != 1 {
		t.Errorf("alice got the message %d times, want 1", got)
	}
}
