package delivery

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Recipient is one recipient of the queued message, as the queue manager
// hands it to a delivery agent.
type Recipient struct {
	Address string // user@domain
	Orig    string // the address as given to Postfix (orig_to), "" if same
	Index   int    // the queue manager's handle for this recipient
	// Notify is the RFC 3461 NOTIFY parameter ("SUCCESS,DELAY",
	// "NEVER", ...), "" when none was given.
	Notify string `json:",omitempty"`
	// ORCPT is the RFC 3461 ORCPT parameter ("rfc822;user@domain"), ""
	// when none was given.
	ORCPT string `json:",omitempty"`
}

// Delays are the queue manager's parts of delays=a/b/c/d.
type Delays struct {
	BeforeQmgr, InQmgr, ConnSetup time.Duration
}

// Request is one message to deliver to some of its recipients, all of one
// transport and next hop.
type Request struct {
	QueueID    string
	Sender     string // envelope sender, "" for the null sender
	Arrival    time.Time
	Recipients []Recipient
	Size       int64
	Delays     Delays
	// Open returns the message (headers and body, LF line ends); it is
	// called once per delivery.
	Open func() (io.ReadCloser, error) `json:"-"`
	// Verify (sendmail -bv) reports what delivery would do and delivers
	// nothing: results say what would be done, logged as deliverable or
	// undeliverable.
	Verify bool

	// Transport is the master.cf service the request is for ("smtp",
	// "relay", "local", ...) and Nexthop what trivial-rewrite(8) gave
	// with it ("[mail.example.com]:587", "example.com", the error text
	// of the error transport ...).
	Transport string `json:",omitempty"`
	Nexthop   string `json:",omitempty"`
	// ConnStore says more mail for the same destination waits in the
	// active queue: an smtp or lmtp agent with connection_cache_on_demand
	// keeps its session for it rather than saying QUIT (Postfix's
	// DEL_REQ_FLAG_CONN_STORE).
	ConnStore bool `json:",omitempty"`

	// The message's DSN parameters (RFC 3461 ENVID and RET: "FULL" or
	// "HDRS"), its RFC 6531 SMTPUTF8 flag and RFC 6152 BODY ("7BIT",
	// "8BITMIME"), as the queue file records them.
	ENVID    string `json:",omitempty"`
	RET      string `json:",omitempty"`
	SMTPUTF8 bool   `json:",omitempty"`
	Body     string `json:",omitempty"`

	// The SMTP client the message came from, as recorded: its name,
	// address, HELO, protocol (SMTP, ESMTP, ...) and SASL user.
	ClientName string `json:",omitempty"`
	ClientAddr string `json:",omitempty"`
	HELO       string `json:",omitempty"`
	Protocol   string `json:",omitempty"`
	SASLUser   string `json:",omitempty"`
}

// Status is the outcome of one delivery.
type Status int

// The delivery outcomes.
const (
	Sent Status = iota
	Deferred
	Bounced
)

func (s Status) String() string {
	switch s {
	case Sent:
		return "sent"
	case Deferred:
		return "deferred"
	case Bounced:
		return "bounced"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Result is the outcome of one final delivery made for a recipient; an
// alias can make several, a duplicate none.
type Result struct {
	Recipient
	Final  string // address that was delivered (to=<...>)
	Status Status
	DSN    string // "2.0.0", "5.1.1", ...
	Text   string // "delivered to mailbox", "unknown user: \"bob\"", ...
	Relay  string // "local", "mail.example.com[192.0.2.1]:25", "none"
	// NotifySender, when set, is where a bounce for this result goes
	// (owner-NAME of a mailing list) instead of the envelope sender.
	NotifySender string `json:",omitempty"`
	// Duplicate marks a recipient done without a delivery of its own: it
	// duplicated a delivery made for another recipient of the message.
	Duplicate bool `json:",omitempty"`
	// Dead says the destination as a whole failed (no server could be
	// reached, or it failed before any recipient was tried): the queue
	// manager lowers its concurrency and, after enough such failures,
	// suspends it for a while, deferring its mail without trying it.
	Dead bool `json:",omitempty"`
}

// Overall is the status of the queue manager's recipient idx: Deferred if
// any delivery for it was deferred, else Bounced if every one bounced,
// else Sent (also when it had no deliveries: duplicates).
func Overall(results []Result, idx int) Status {
	n, bounced := 0, 0
	for _, r := range results {
		if r.Index != idx {
			continue
		}
		n++
		switch r.Status {
		case Deferred:
			return Deferred
		case Bounced:
			bounced++
		}
	}
	if n > 0 && bounced == n {
		return Bounced
	}
	return Sent
}

// FormatDelay prints seconds the way Postfix's delay= and delays= do:
// two significant digits below 10 s, whole seconds above, "0" for
// almost nothing.
func FormatDelay(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s < 0.01:
		return "0"
	case s >= 10:
		return fmt.Sprintf("%.0f", s)
	case s >= 1:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", s), "0"), ".")
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", s), "0"), ".")
}

// LogLine is an agent's maillog line about result r of req, without the
// "postfix/agent[pid]: " prefix: "ID: to=<...>, orig_to=<...>, relay=...,
// delay=..., delays=a/b/c/d, dsn=..., status=... (text)". began is when
// the agent started on the delivery (the d of delays=).
func LogLine(req Request, r Result, conn time.Duration, began time.Time) string {
	orig := ""
	if r.Orig != "" && !strings.EqualFold(r.Orig, r.Final) {
		orig = fmt.Sprintf(", orig_to=<%s>", r.Orig)
	}
	relay := r.Relay
	if relay == "" {
		relay = "none"
	}
	dl := req.Delays
	xmit := time.Since(began)
	total := time.Since(req.Arrival)
	if req.Arrival.IsZero() {
		total = dl.BeforeQmgr + dl.InQmgr + conn + xmit
	}
	return fmt.Sprintf("%s: to=<%s>%s, relay=%s, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)",
		req.QueueID, r.Final, orig, relay, FormatDelay(total),
		FormatDelay(dl.BeforeQmgr), FormatDelay(dl.InQmgr), FormatDelay(dl.ConnSetup+conn), FormatDelay(xmit),
		r.DSN, StatusWord(req, r.Status), r.Text)
}

// StatusWord is status= in a log line: the status, or for a request of
// sendmail -bv, deliverable or undeliverable.
func StatusWord(req Request, s Status) string {
	switch {
	case !req.Verify:
		return s.String()
	case s == Sent:
		return "deliverable"
	}
	return "undeliverable"
}

// SplitDSN splits "5.1.1 text" into the status code and the text; text
// without a code gets def.
func SplitDSN(s, def string) (dsn, text string) {
	code, rest, _ := strings.Cut(s, " ")
	if len(code) >= 5 && (code[0] == '2' || code[0] == '4' || code[0] == '5') && code[1] == '.' &&
		strings.Count(code, ".") == 2 && strings.Trim(code, "0123456789.") == "" {
		return code, strings.TrimSpace(rest)
	}
	return def, s
}
