package bounce

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"
)

const original = "From: carol@example.org\nTo: bob@vm2.example.ops\nSubject: lunch\n\nSee you at noon.\n"

func parts(t *testing.T, out []byte) (*mail.Message, [][2]string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("not a message: %v\n%s", err, out)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q (%v)", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var ps [][2]string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part: %v\n%s", err, out)
		}
		b, _ := io.ReadAll(p)
		ps = append(ps, [2]string{p.Header.Get("Content-Type"), string(b)})
	}
	return m, ps
}

func TestFailureReport(t *testing.T) {
	arr := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	err := Write(&out, Report{Hostname: "vm3.example.ops", QueueID: "3F2A81234B", Sender: "carol@example.org",
		Arrival: arr, Now: arr.Add(time.Minute),
		Recipients: []Recipient{
			{Final: "bob@vm3.example.ops", Original: "bob@vm3.example.ops", DSN: "5.1.1", Text: `unknown user: "bob"`},
			{Final: "root@vm3.example.ops", Original: "list@vm3.example.ops", DSN: "5.3.0", Text: "Command died with status 1:\n \"x\""},
		}}, strings.NewReader(original))
	if err != nil {
		t.Fatal(err)
	}
	m, ps := parts(t, out.Bytes())
	if got := m.Header.Get("From"); got != "MAILER-DAEMON@vm3.example.ops (Mail Delivery System)" {
		t.Errorf("From %q", got)
	}
	if m.Header.Get("Subject") != "Undelivered Mail Returned to Sender" || m.Header.Get("To") != "carol@example.org" || m.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("headers %v", m.Header)
	}
	if len(ps) != 3 {
		t.Fatalf("%d parts", len(ps))
	}
	if !strings.HasPrefix(ps[0][1], "This is the mail system at host vm3.example.ops.") ||
		!strings.Contains(ps[0][1], "<bob@vm3.example.ops>: unknown user: \"bob\"\n") ||
		!strings.Contains(ps[0][1], "<bob@vm3.example.ops>: unknown user: \"bob\"\n\n<root@vm3.example.ops> (expanded from <list@vm3.example.ops>): Command died\n    with status 1: \"x\"\n") {
		t.Errorf("notification:\n%s", ps[0][1])
	}
	if ps[1][0] != "message/delivery-status" {
		t.Errorf("part 2 is %s", ps[1][0])
	}
	for _, want := range []string{
		"Reporting-MTA: dns; vm3.example.ops\nX-Postfix-Queue-ID: 3F2A81234B\nX-Postfix-Sender: rfc822; carol@example.org\nArrival-Date: Sat, 21 Nov 2026 10:00:00 +0000 (UTC)\n\n",
		"Final-Recipient: rfc822; bob@vm3.example.ops\nOriginal-Recipient: rfc822;bob@vm3.example.ops\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: X-Postfix; unknown user: \"bob\"\n",
		"Status: 5.3.0\nDiagnostic-Code: X-Postfix; Command died with status 1: \"x\"\n",
	} {
		if !strings.Contains(ps[1][1], want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, ps[1][1])
		}
	}
	if ps[2][0] != "message/rfc822" || ps[2][1] != original {
		t.Errorf("original part %s:\n%q", ps[2][0], ps[2][1])
	}
}

func TestDelayAndLimits(t *testing.T) {
	var out bytes.Buffer
	big := original + strings.Repeat("x", 100) + "\n"
	err := Write(&out, Report{Kind: Delay, Hostname: "h", QueueID: "Q", Sender: "", RetryUntil: time.Unix(0, 0).UTC(),
		SizeLimit: 50, Recipients: []Recipient{{Final: "a@b", DSN: "bogus", Text: "connect to b: timed out"}}},
		strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	m, ps := parts(t, out.Bytes())
	if m.Header.Get("Subject") != "Delayed Mail (still being retried)" || m.Header.Get("To") != "postmaster" {
		t.Errorf("headers %v", m.Header)
	}
	if !strings.Contains(ps[1][1], "Action: delayed\nStatus: 4.0.0\n") || !strings.Contains(ps[1][1], "Will-Retry-Until: Thu, 1 Jan 1970") {
		t.Errorf("status:\n%s", ps[1][1])
	}
	if ps[2][0] != "text/rfc822-headers" || strings.Contains(ps[2][1], "noon") {
		t.Errorf("headers part %s: %q", ps[2][0], ps[2][1])
	}
	if err := Write(io.Discard, Report{Hostname: "h"}, strings.NewReader("")); err == nil {
		t.Error("no recipients accepted")
	}
	// Binary junk and CRLF in the original still give a parsable report.
	out.Reset()
	junk := "Subject: x\r\n\r\n\x00\x01\xff\r\n"
	if err := Write(&out, Report{Hostname: "h", QueueID: "Q", Sender: "s@x", Recipients: []Recipient{{Final: "a@b", DSN: "5.1.1", Text: "no"}}}, strings.NewReader(junk)); err != nil {
		t.Fatal(err)
	}
	if _, ps := parts(t, out.Bytes()); ps[2][1] != "Subject: x\n\n\x00\x01\xff\n" {
		t.Errorf("junk original %q", ps[2][1])
	}
}

func TestEnvelope(t *testing.T) {
	for _, c := range []struct {
		sender, from, to string
		ok               bool
	}{
		{"carol@example.org", "", "carol@example.org", true},
		{"", "double-bounce", "postmaster", true},
		{"double-bounce@vm2.example.ops", "", "", false},
		{"Double-Bounce", "", "", false},
	} {
		from, to, ok := Envelope(c.sender, "", "")
		if from != c.from || to != c.to || ok != c.ok {
			t.Errorf("Envelope(%q) = %q, %q, %v; want %q, %q, %v", c.sender, from, to, ok, c.from, c.to, c.ok)
		}
	}
	if from, to, _ := Envelope("", "mailer-loop", "hostmaster"); from != "mailer-loop" || to != "hostmaster" {
		t.Errorf("configured double bounce: %q %q", from, to)
	}
}

// The report sendmail -bv asks for, as Postfix's bounce(8) writes it.
func TestVerifyReport(t *testing.T) {
	arr := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	err := Write(&out, Report{Kind: Verify, Hostname: "vm3.example.ops", QueueID: "3F2A81234B", Sender: "carol@vm3.example.ops",
		Arrival: arr, Now: arr,
		Recipients: []Recipient{
			{Final: "carol@vm3.example.ops", Original: "carol@vm3.example.ops", Given: "carol", DSN: "2.0.0", Text: "delivery via local: delivers to mailbox", Action: "deliverable"},
			{Final: "nosuch@vm3.example.ops", Original: "nosuch@vm3.example.ops", DSN: "5.1.1", Text: `delivery via local: unknown user: "nosuch"`, Action: "undeliverable"},
		}}, strings.NewReader(original))
	if err != nil {
		t.Fatal(err)
	}
	m, ps := parts(t, out.Bytes())
	if m.Header.Get("Subject") != "Mail Delivery Status Report" || m.Header.Get("To") != "carol@vm3.example.ops" {
		t.Errorf("headers %v", m.Header)
	}
	if len(ps) != 3 {
		t.Fatalf("%d parts", len(ps))
	}
	if !strings.Contains(ps[0][1], "\n\nHere is the delivery report you asked for: what the mail system\nwould do with mail to each recipient. Nothing was delivered.\n\n") ||
		!strings.Contains(ps[0][1], "<carol@vm3.example.ops> (expanded from <carol>): delivery via local: delivers\n    to mailbox\n\n") ||
		!strings.Contains(ps[0][1], "<nosuch@vm3.example.ops>: delivery via local: unknown user") ||
		strings.Contains(ps[0][1], "given up") {
		t.Errorf("notification:\n%s", ps[0][1])
	}
	for _, want := range []string{
		"Final-Recipient: rfc822; carol@vm3.example.ops\nOriginal-Recipient: rfc822;carol@vm3.example.ops\nAction: deliverable\nStatus: 2.0.0\nDiagnostic-Code: X-Postfix; delivery via local: delivers to mailbox\n",
		"Action: undeliverable\nStatus: 5.1.1\n",
	} {
		if !strings.Contains(ps[1][1], want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, ps[1][1])
		}
	}
	if ps[2][0] != "text/rfc822-headers" || strings.Contains(ps[2][1], "See you at noon.") || !strings.Contains(out.String(), "Content-Description: Message Headers\n") {
		t.Errorf("third part %s:\n%s", ps[2][0], ps[2][1])
	}
}

// Lines are wrapped as Postfix wraps them (samples from its reports).
func TestWrap(t *testing.T) {
	for in, want := range map[string]string{
		"<team@mail.example.test> (expanded from <team>): delivery via local: delivers to command: /bin/cat":                              "<team@mail.example.test> (expanded from <team>): delivery via local: delivers\n    to command: /bin/cat",
		"<nosuchx@mail.example.test> (expanded from <team>): delivery via local: unknown user: \"nosuchx\"":                               "<nosuchx@mail.example.test> (expanded from <team>): delivery via local: unknown\n    user: \"nosuchx\"",
		"Diagnostic-Code: X-Postfix; Host or domain name not found. Name service error for name=remote.example type=AAAA: Host not found": "Diagnostic-Code: X-Postfix; Host or domain name not found. Name service error\n    for name=remote.example type=AAAA: Host not found",
		"Diagnostic-Code: X-Postfix; delivery via local: delivers to file: /var/tmp/" + strings.Repeat("x", 90):                           "Diagnostic-Code: X-Postfix; delivery via local: delivers to file:\n    /var/tmp/" + strings.Repeat("x", 90),
		"short": "short",
	} {
		if got := wrap(in); got != want {
			t.Errorf("wrap(%q)\n= %q\nwant %q", in, got, want)
		}
	}
}
