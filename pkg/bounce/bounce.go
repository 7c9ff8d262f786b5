package bounce

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Kind is which notification to write.
type Kind int

// The notification kinds.
const (
	Failure Kind = iota // non-delivery report: "Undelivered Mail Returned to Sender"
	Delay               // delay warning: "Delayed Mail (still being retried)"
	// Verify is the delivery status report sendmail -bv asks for:
	// "Mail Delivery Status Report", one Action per recipient.
	Verify
)

// Recipient is one recipient the notification is about.
type Recipient struct {
	Final    string // address delivery was attempted to (Final-Recipient)
	Original string // address as given to the mail system, "" if unknown
	// Given is the original address exactly as given ("alice"), shown
	// as "(expanded from <alice>)"; "" means Original.
	Given string
	DSN   string // enhanced status code, "5.1.1"
	Text  string // why, as logged: `unknown user: "bob"`
	// RemoteMTA and Diagnostic are set when a remote server answered:
	// "mx.example.org" and "smtp; 550 5.1.1 <bob@...>: user unknown".
	RemoteMTA, Diagnostic string
	// Action is the recipient's Action: in a report ("deliverable",
	// "undeliverable"); "" means the Kind's ("failed", "delayed").
	Action string
}

// Report is the envelope and the recipients of one notification.
type Report struct {
	Kind       Kind
	Hostname   string // myhostname: From MAILER-DAEMON@Hostname, Reporting-MTA
	QueueID    string // the original message's queue ID
	Sender     string // the original envelope sender
	To         string // who the notification goes to; "" means as Envelope says
	Arrival    time.Time
	Now        time.Time // Date of the notification; zero means time.Now()
	RetryUntil time.Time // delay warnings: Will-Retry-Until (arrival + maximal_queue_lifetime)
	Recipients []Recipient
	// SizeLimit is bounce_size_limit: a longer original is returned as
	// headers only (text/rfc822-headers). 0 means Postfix's 50000.
	SizeLimit int64
	// HeadersOnly returns only the original headers, whatever the size.
	HeadersOnly bool
}

// Postfix's defaults for the addresses of notifications about bounces.
const (
	DoubleBounceSender = "double-bounce" // double_bounce_sender
	NoticeRecipient    = "postmaster"    // 2bounce_notice_recipient
)

// Envelope is the envelope of the notification for a message from sender:
// from the null sender back to sender. A message with the null sender (a
// bounce that bounced) is reported to notice (2bounce_notice_recipient)
// from doubleBounce (double_bounce_sender); one from doubleBounce itself
// is not reported at all (ok is false), so that an undeliverable postmaster
// cannot make notifications loop. Empty arguments take Postfix's defaults.
func Envelope(sender, doubleBounce, notice string) (from, to string, ok bool) {
	if doubleBounce == "" {
		doubleBounce = DoubleBounceSender
	}
	if notice == "" {
		notice = NoticeRecipient
	}
	if sender == "" {
		return doubleBounce, notice, true
	}
	local := sender
	if i := strings.LastIndexByte(sender, '@'); i >= 0 {
		local = sender[:i]
	}
	if strings.EqualFold(local, doubleBounce) {
		return "", "", false
	}
	return "", sender, true
}

// dateFormat is RFC 5322 with the zone name, as Postfix writes dates.
const dateFormat = "Mon, 2 Jan 2006 15:04:05 -0700 (MST)"

// Write writes the notification for r, returning original (headers and
// body, LF line ends) after the reports.
func Write(w io.Writer, r Report, original io.Reader) error {
	if r.Hostname == "" {
		return errors.New("bounce: no hostname")
	}
	if len(r.Recipients) == 0 {
		return errors.New("bounce: no recipients")
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	limit := r.SizeLimit
	if limit <= 0 {
		limit = 50000
	}
	orig, err := io.ReadAll(io.LimitReader(original, limit+1))
	if err != nil {
		return fmt.Errorf("bounce: read original message: %w", err)
	}
	headersOnly := r.HeadersOnly || int64(len(orig)) > limit || r.Kind != Failure
	if headersOnly {
		orig = headerBlock(orig)
	}
	to := r.To
	if to == "" {
		_, to, _ = Envelope(r.Sender, "", "")
	}
	boundary := fmt.Sprintf("%s.%d/%s", r.QueueID, now.Unix(), r.Hostname)

	bw := bufio.NewWriter(w)
	subject := "Undelivered Mail Returned to Sender"
	switch r.Kind {
	case Delay:
		subject = "Delayed Mail (still being retried)"
	case Verify:
		subject = "Mail Delivery Status Report"
	}
	fmt.Fprintf(bw, "Date: %s\n", now.Format(dateFormat))
	fmt.Fprintf(bw, "From: MAILER-DAEMON@%s (Mail Delivery System)\n", r.Hostname)
	fmt.Fprintf(bw, "Subject: %s\n", subject)
	fmt.Fprintf(bw, "To: %s\n", to)
	fmt.Fprintf(bw, "Auto-Submitted: auto-replied\n")
	fmt.Fprintf(bw, "MIME-Version: 1.0\n")
	fmt.Fprintf(bw, "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"%s\"\n", boundary)
	fmt.Fprintf(bw, "Content-Transfer-Encoding: 8bit\n\n")
	fmt.Fprintf(bw, "This is a MIME-encapsulated message.\n\n")

	// The part for people.
	fmt.Fprintf(bw, "--%s\nContent-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n", boundary)
	fmt.Fprintf(bw, "This is the mail system at host %s.\n\n", r.Hostname)
	switch r.Kind {
	case Verify:
		fmt.Fprintf(bw, "Here is the delivery report you asked for: what the mail system\n")
		fmt.Fprintf(bw, "would do with mail to each recipient. Nothing was delivered.\n\n")
	case Delay:
		fmt.Fprintf(bw, "####################################################################\n")
		fmt.Fprintf(bw, "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n")
		fmt.Fprintf(bw, "####################################################################\n\n")
		fmt.Fprintf(bw, "Your message has not reached all of its recipients yet. The mail\n")
		fmt.Fprintf(bw, "system keeps trying")
		if !r.RetryUntil.IsZero() {
			fmt.Fprintf(bw, " until %s", r.RetryUntil.Format(dateFormat))
		}
		fmt.Fprintf(bw, "; you will be told\nif it finally gives up.\n\n")
	default:
		fmt.Fprintf(bw, "Your message could not be delivered to one or more of its\n")
		fmt.Fprintf(bw, "recipients, and the mail system has given up on them. The\n")
		fmt.Fprintf(bw, "reasons are listed below; the original message is attached.\n\n")
		fmt.Fprintf(bw, "For help, contact <postmaster>; if you do, include this report.\n\n")
	}
	fmt.Fprintf(bw, "                   The mail system\n\n")
	for _, rc := range r.Recipients {
		given := rc.Given
		if given == "" {
			given = rc.Original
		}
		if given != "" && !strings.EqualFold(given, rc.Final) {
			bw.WriteString(wrap(fmt.Sprintf("<%s> (expanded from <%s>): %s", rc.Final, given, oneLine(rc.Text))) + "\n\n")
		} else {
			bw.WriteString(wrap(fmt.Sprintf("<%s>: %s", rc.Final, oneLine(rc.Text))) + "\n\n")
		}
	}

	// The machine-readable part (RFC 3464).
	fmt.Fprintf(bw, "--%s\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n", boundary)
	fmt.Fprintf(bw, "Reporting-MTA: dns; %s\n", r.Hostname)
	fmt.Fprintf(bw, "X-Postfix-Queue-ID: %s\n", r.QueueID)
	fmt.Fprintf(bw, "X-Postfix-Sender: rfc822; %s\n", r.Sender)
	if !r.Arrival.IsZero() {
		fmt.Fprintf(bw, "Arrival-Date: %s\n", r.Arrival.Format(dateFormat))
	}
	for _, rc := range r.Recipients {
		bw.WriteString("\n")
		fmt.Fprintf(bw, "Final-Recipient: rfc822; %s\n", rc.Final)
		if rc.Original != "" {
			fmt.Fprintf(bw, "Original-Recipient: rfc822;%s\n", rc.Original)
		}
		action := rc.Action
		switch {
		case action != "":
		case r.Kind == Delay:
			action = "delayed"
		default:
			action = "failed"
		}
		fmt.Fprintf(bw, "Action: %s\n", action)
		fmt.Fprintf(bw, "Status: %s\n", statusCode(rc.DSN, r.Kind))
		if rc.RemoteMTA != "" {
			fmt.Fprintf(bw, "Remote-MTA: dns; %s\n", rc.RemoteMTA)
		}
		if rc.Diagnostic != "" {
			bw.WriteString(wrap("Diagnostic-Code: "+oneLine(rc.Diagnostic)) + "\n")
		} else {
			bw.WriteString(wrap("Diagnostic-Code: X-Postfix; "+oneLine(rc.Text)) + "\n")
		}
		if r.Kind == Delay && !r.RetryUntil.IsZero() {
			fmt.Fprintf(bw, "Will-Retry-Until: %s\n", r.RetryUntil.Format(dateFormat))
		}
	}
	bw.WriteString("\n")

	// The original.
	if r.Kind == Verify {
		fmt.Fprintf(bw, "--%s\nContent-Description: Message Headers\nContent-Type: text/rfc822-headers\nContent-Transfer-Encoding: 8bit\n\n", boundary)
	} else if headersOnly {
		fmt.Fprintf(bw, "--%s\nContent-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\nContent-Transfer-Encoding: 8bit\n\n", boundary)
	} else {
		fmt.Fprintf(bw, "--%s\nContent-Description: Undelivered Message\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\n", boundary)
	}
	orig = bytes.ReplaceAll(orig, []byte("\r\n"), []byte("\n"))
	bw.Write(orig)
	if len(orig) > 0 && orig[len(orig)-1] != '\n' {
		bw.WriteString("\n")
	}
	fmt.Fprintf(bw, "\n--%s--\n", boundary)
	return bw.Flush()
}

// headerBlock is the header section of msg (up to the empty line).
func headerBlock(msg []byte) []byte {
	if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		return msg[:i+1]
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+2]
	}
	return msg
}

// statusCode is dsn, or a generic code when it is malformed.
func statusCode(dsn string, k Kind) string {
	parts := strings.Split(dsn, ".")
	ok := len(parts) == 3 && (parts[0] == "2" || parts[0] == "4" || parts[0] == "5")
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			ok = false
		}
	}
	if ok {
		return dsn
	}
	if k == Delay {
		return "4.0.0"
	}
	return "5.0.0"
}

// wrapWidth is the length lines of a notification stay under, as
// Postfix's: longer ones continue on lines indented by four spaces.
const wrapWidth = 80

// wrap breaks a line of words (see oneLine) before a word that would make
// it wrapWidth characters or longer; a word longer than that stays whole.
func wrap(s string) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Split(s, " ") {
		switch {
		case i == 0:
		case n+1+len(w) >= wrapWidth:
			b.WriteString("\n    ")
			n = 4
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// oneLine keeps a diagnostic on one header line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
