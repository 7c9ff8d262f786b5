package smtpd

import (
	"strings"
	"testing"

	"postdove/pkg/queue"
)

// The replies and log lines below are Postfix 3.7's for the same
// settings (compat/restrictions_test.go runs the like against the
// oracle).

// smtpd_delay_reject = no: the client restrictions answer in place of
// the banner, and every command but QUIT then gets 503; a 421 there ends
// the session at once.
func TestDelayRejectConnect(t *testing.T) {
	ts := start(t, "smtpd_delay_reject = no\nsmtpd_client_restrictions = reject\n")
	dialog(t, ts.addr, `
554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: Access denied
> EHLO client.example
503 5.7.0 Error: access denied for localhost[127.0.0.1]
> MAIL FROM:<a@b.example>
503 5.7.0 Error: access denied for localhost[127.0.0.1]
> FOO
503 5.7.0 Error: access denied for localhost[127.0.0.1]
`+quit)
	ts.logHas(t, "]: NOQUEUE: reject: CONNECT from localhost[127.0.0.1]: 554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: Access denied; proto=SMTP\n",
		"]: disconnect from localhost[127.0.0.1] ehlo=0/1 mail=0/1 quit=1 unknown=0/1 commands=1/4\n")

	ts = start(t, "smtpd_delay_reject = no\nsmtpd_client_restrictions = check_client_access inline:{ {127.0.0.1=421 4.7.0 closing now} }\n")
	dialog(t, ts.addr, `
421 4.7.0 <localhost[127.0.0.1]>: Client host rejected: closing now
<EOF>
`)
	ts.logHas(t, "]: NOQUEUE: reject: CONNECT from localhost[127.0.0.1]: 421 4.7.0 <localhost[127.0.0.1]>: Client host rejected: closing now; proto=SMTP\n")

	// Not rejected: the banner, and the client restrictions are not
	// applied again at RCPT (a HOLD there would log a second line).
	ts = start(t, "smtpd_delay_reject = no\nsmtpd_client_restrictions = check_client_access inline:{127.0.0.1=HOLD}\n")
	dialog(t, ts.addr, heloMailAs("client.example")+rcptRoot("250 2.1.5 Ok")+quit)
	if log := ts.logHas(t, "]: NOQUEUE: hold: CONNECT from localhost[127.0.0.1]: <localhost[127.0.0.1]>: Client host triggers HOLD action; proto=SMTP\n"); strings.Count(log, "hold:") != 1 {
		t.Errorf("client restrictions applied again:\n%s", log)
	}
}

// smtpd_delay_reject = no: HELO and EHLO are checked as they come; a
// rejected one leaves the session as it was, a transaction included.
func TestDelayRejectHelo(t *testing.T) {
	ts := start(t, "smtpd_delay_reject = no\nsmtpd_helo_required = yes\n"+
		"smtpd_helo_restrictions = reject_non_fqdn_helo_hostname, check_helo_access inline:{bad.example=REJECT}\n")
	dialog(t, ts.addr, banner+`> EHLO localhost
504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname
> MAIL FROM:<a@b.example>
503 5.5.1 Error: send HELO/EHLO first
`+heloAs("ok.example")+mailFrom("a@b.example")+rcptRoot("250 2.1.5 Ok")+`> HELO bad.example
554 5.7.1 <bad.example>: Helo command rejected: Access denied
> RCPT TO:<root@localhost>
250 2.1.5 Ok
`+quit)
	ts.logHas(t, "]: NOQUEUE: reject: EHLO from localhost[127.0.0.1]: 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname; proto=SMTP helo=<localhost>\n",
		": reject: HELO from localhost[127.0.0.1]: 554 5.7.1 <bad.example>: Helo command rejected: Access denied; from=<a@b.example> to=<root@mail.example.test> proto=SMTP helo=<bad.example>\n",
		"]: disconnect from localhost[127.0.0.1] helo=1/2 ehlo=0/1 mail=1/2 rcpt=2 quit=1 commands=5/8\n")
}

// smtpd_delay_reject = no: the sender restrictions, and
// smtpd_reject_unlisted_sender, answer MAIL; they are not applied again
// at RCPT.
func TestDelayRejectMail(t *testing.T) {
	ts := start(t, "smtpd_delay_reject = no\nsmtpd_reject_unlisted_sender = yes\n"+
		"smtpd_sender_restrictions = check_sender_access inline:{rej@b.example=REJECT, hold@b.example=HOLD}\n")
	dialog(t, ts.addr, banner+ehlo+`> MAIL FROM:<rej@b.example>
554 5.7.1 <rej@b.example>: Sender address rejected: Access denied
> RCPT TO:<root@mail.example.test>
503 5.5.1 Error: need MAIL command
> MAIL FROM:<nosuchuser@mail.example.test>
550 5.1.0 <nosuchuser@mail.example.test>: Sender address rejected: User unknown in local recipient table
> MAIL FROM:<hold@b.example>
250 2.1.0 Ok
> RCPT TO:<root@mail.example.test>
250 2.1.5 Ok
> RCPT TO:<root@localhost>
250 2.1.5 Ok
> DATA
354 End data with <CR><LF>.<CR><LF>
> Subject: t\n\nhi\n.
250 2.0.0 Ok: queued as *
`+quit)
	log := ts.logHas(t, "]: NOQUEUE: reject: MAIL from localhost[127.0.0.1]: 554 5.7.1 <rej@b.example>: Sender address rejected: Access denied; from=<rej@b.example> proto=ESMTP helo=<client.example>\n",
		"]: NOQUEUE: reject: MAIL from localhost[127.0.0.1]: 550 5.1.0 <nosuchuser@mail.example.test>: Sender address rejected: User unknown in local recipient table; from=<nosuchuser@mail.example.test> proto=ESMTP helo=<client.example>\n",
		"]: NOQUEUE: hold: MAIL from localhost[127.0.0.1]: <hold@b.example>: Sender address triggers HOLD action; from=<hold@b.example> proto=ESMTP helo=<client.example>\n")
	if strings.Count(log, "hold:") != 1 {
		t.Errorf("sender restrictions applied again at RCPT:\n%s", log)
	}
	if ids, err := ts.q.List(queue.Hold); err != nil || len(ids) != 1 {
		t.Errorf("hold queue: %v %v", ids, err)
	}
}

// defer is 450 4.3.2 "Try again later" (defer_code), reject 554 5.7.1
// (reject_code); an access table's DEFER and REJECT follow
// access_map_defer_code and access_map_reject_code.
func TestDeferRejectCodes(t *testing.T) {
	ts := start(t, "smtpd_client_restrictions = defer\n")
	dialog(t, ts.addr, heloMailAs("x.example")+rcptRoot("450 4.3.2 <localhost[127.0.0.1]>: Client host rejected: Try again later")+quit)
	ts.logHas(t, "]: NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 450 4.3.2 <localhost[127.0.0.1]>: Client host rejected: Try again later; from=<a@b.example> to=<root@mail.example.test> proto=SMTP helo=<x.example>\n")

	ts = start(t, "defer_code = 451\nreject_code = 550\naccess_map_defer_code = 421\naccess_map_reject_code = 553\n"+
		"smtpd_helo_restrictions = check_helo_access inline:{x.example=DEFER, y.example=REJECT}\n"+
		"smtpd_sender_restrictions = check_sender_access inline:{a@b.example=OK}, reject\n"+
		"smtpd_recipient_restrictions = check_recipient_access inline:{root@localhost=OK}, defer\n")
	dialog(t, ts.addr, heloMailAs("y.example")+rcptRoot("553 5.7.1 <y.example>: Helo command rejected: Access denied")+
		heloAs("z.example")+mailFrom("r@b.example")+rcptRoot("550 5.7.1 <r@b.example>: Sender address rejected: Access denied")+
		"> RSET\n250 2.0.0 Ok\n"+mailFrom("a@b.example")+rcptRoot("451 4.3.2 <root@mail.example.test>: Recipient address rejected: Try again later")+
		heloAs("x.example")+mailFrom("a@b.example")+rcptRoot("421 4.7.1 <x.example>: Helo command rejected: Access denied")+"<EOF>\n")
}

// A 421 (or 521) reply ends the session after it, as Postfix hangs up.
func TestHangup421(t *testing.T) {
	ts := start(t, "smtpd_sender_restrictions = check_sender_access inline:{ {t4@b.example=421 4.7.0 closing now}, {t5@b.example=521 5.7.0 gone} }\n")
	for _, c := range []struct{ sender, reply string }{
		{"t4@b.example", "421 4.7.0 <t4@b.example>: Sender address rejected: closing now"},
		{"t5@b.example", "521 5.7.0 <t5@b.example>: Sender address rejected: gone"},
	} {
		dialog(t, ts.addr, banner+heloAs("x.example")+mailFrom(c.sender)+rcptRoot(c.reply)+"> RSET\n<EOF>\n")
	}
	if log := ts.logHas(t, "]: disconnect from localhost[127.0.0.1] helo=1 mail=1 rcpt=0/1 commands=2/3\n"); strings.Contains(log, "rset") {
		t.Errorf("RSET after 421 was served:\n%s", log)
	}
}

// reject_unlisted_recipient as a restriction, with the implicit
// smtpd_reject_unlisted_recipient off.
func TestRejectUnlistedRecipient(t *testing.T) {
	for _, c := range []struct{ mainCF, replies string }{
		{"smtpd_recipient_restrictions = reject_unlisted_recipient, permit\n",
			"550 5.1.1 <nosuchuser@mail.example.test>: Recipient address rejected: User unknown in local recipient table\n" + rcptRoot("250 2.1.5 Ok")},
		{"", "250 2.1.5 Ok\n"},
	} {
		ts := start(t, "smtpd_reject_unlisted_recipient = no\n"+c.mainCF)
		dialog(t, ts.addr, heloMailAs("x.example")+"> RCPT TO:<nosuchuser@mail.example.test>\n"+c.replies+quit)
	}
}

// reject_unauth_pipelining in smtpd_client_restrictions: after plain
// HELO any command sent ahead is improper.
func TestClientUnauthPipelining(t *testing.T) {
	ts := start(t, "smtpd_client_restrictions = reject_unauth_pipelining\n")
	dialog(t, ts.addr, banner+`> HELO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<root@mail.example.test>
250 mail.example.test
250 2.1.0 Ok
503 5.5.0 <localhost[127.0.0.1]>: Client host rejected: Improper use of SMTP command pipelining
`+quit)
	ts.logHas(t, "]: improper command pipelining after HELO from localhost[127.0.0.1]: MAIL FROM:<a@b.example>\\r\\nRCPT TO:<root@mail.example.test>\\r\\n\n",
		"]: NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 503 5.5.0 <localhost[127.0.0.1]>: Client host rejected: Improper use of SMTP command pipelining; from=<a@b.example> to=<root@mail.example.test> proto=SMTP helo=<c.example>\n")
}
