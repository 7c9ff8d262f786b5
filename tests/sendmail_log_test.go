package tests

import (
	"strings"
	"testing"
)

// sendmail's errors reach the maillog as well as the terminal, as
// Postfix's do (postfix/sendmail[pid]: fatal: ...).
func TestSendmailErrorsAreLogged(t *testing.T) {
	l := labStart(t, "message_size_limit = 100000\n", "")
	res := l.sendmail("Subject: big\n\n"+strings.Repeat("x", 200000)+"\n", "root")
	if res.Code != 75 || !strings.Contains(res.Stderr, "sendmail: fatal: root(0): message file too big") {
		t.Fatalf("sendmail: %+v", res)
	}
	l.waitLog(`postfix/sendmail\[\d+\]: fatal: root\(0\): message file too big`)
	res = l.sendmail("Subject: nobody\n\nbody\n", "-t")
	if res.Code != 75 {
		t.Fatalf("sendmail -t: %+v", res)
	}
	l.waitLog(`postfix/sendmail\[\d+\]: fatal: root\(0\): No recipient addresses found in message header`)
}
