package tests

import (
	"strings"
	"testing"
)

// A bounce that bounces is reported to the postmaster, from the
// double-bounce sender; a notification from the double-bounce sender that
// fails is dropped, so a broken postmaster cannot make mail loop.
func TestDoubleBounceGoesToPostmasterOnce(t *testing.T) {
	l := labStart(t, "", "")
	alice := l.user("pdtalice")
	l.setAliases("postmaster: " + alice.Name + "\n")
	if res := l.sendmail("Subject: a bounce\n\nreturned mail\n", "-f", "<>", "pdtnosuch1"); res.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", res.Code, res.Stderr)
	}
	box := l.waitMbox(alice.Name, "Final-Recipient: rfc822; pdtnosuch1@vm2.example.ops")
	if !strings.Contains(box, "\nTo: postmaster") {
		t.Errorf("double bounce not addressed to postmaster:\n%s", box)
	}
	l.waitLog(`postfix/bounce\[\d+\]: [0-9A-F]+: postmaster non-delivery notification: [0-9A-F]+`)
	l.waitLog(`postfix/qmgr\[\d+\]: [0-9A-F]+: from=<double-bounce@vm2\.example\.ops>, size=\d+, nrcpt=1 \(queue active\)`)

	// Mail from the double-bounce sender that fails is not reported.
	if res := l.sendmail("Subject: loop\n\nx\n", "-f", "double-bounce", "pdtnosuch2"); res.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitLog(`postfix/bounce\[\d+\]: [0-9A-F]+: discarding undeliverable notification from <double-bounce@vm2\.example\.ops>`)
	if strings.Contains(l.mbox(alice.Name), "pdtnosuch2@") {
		t.Errorf("a failed double-bounce notification was reported:\n%s", l.mbox(alice.Name))
	}
}

// Failures of a list with an owner- alias are reported to the owner, not
// to the sender (local(8), owner_request_special).
func TestListFailuresGoToOwner(t *testing.T) {
	l := labStart(t, "", "")
	alice, bob := l.user("pdtalice"), l.user("pdtbob")
	l.setAliases("root: " + alice.Name + "\nstaff: " + alice.Name + ", pdtnosuch3\nowner-staff: " + bob.Name + "\n")
	if res := l.mail("to the list\n", "-s", "list mail", "staff"); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitMbox(alice.Name, "to the list")
	box := l.waitMbox(bob.Name, "Final-Recipient: rfc822; pdtnosuch3@vm2.example.ops")
	if !strings.Contains(box, "\nTo: owner-staff") {
		t.Errorf("list bounce not addressed to owner-staff:\n%s", box)
	}
	if strings.Contains(l.mbox(alice.Name), "Undelivered Mail") {
		t.Errorf("list bounce went to the sender (root -> alice) too:\n%s", l.mbox(alice.Name))
	}
}
