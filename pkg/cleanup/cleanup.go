package cleanup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"postdove/pkg/addr"
	"postdove/pkg/maps"
	"postdove/pkg/queue"
)

// Params is the part of a main.cf model (*postconf.Config) cleanup reads.
type Params interface {
	addr.Params
	Int(name string) int
	Size(name string) int64
}

// Logger receives cleanup's log records (*maillog.Logger does).
type Logger interface {
	Info(format string, args ...any)
	Warning(format string, args ...any)
}

// Submission is one message's envelope as handed to cleanup.
type Submission struct {
	Sender     string   // envelope sender as given; "" is the null sender
	Recipients []string // envelope recipients as given
	// FullName is the sender's full name (sendmail -F, else GECOS), used
	// in a From: header cleanup adds.
	FullName string
	// UID is the submitting user's uid for local submissions (sendmail,
	// pickup): cleanup then adds Received: "from userid UID" and rewrites
	// header addresses. -1 for mail from the network.
	UID int
	// Extracted is set when the recipients were taken from the headers
	// (sendmail -t): Bcc: headers are then removed.
	Extracted bool
	// Arrival is the time the message was submitted (now when zero).
	Arrival time.Time
	// Received is a Received: header (without the name) that the caller,
	// e.g. smtpd, wants prepended; used when UID < 0.
	Received string
	// ReceivedFor, when set, builds the Received: header (without the
	// name) from the queue ID; it wins over Received (smtpd's "with ESMTP
	// id ID").
	ReceivedFor func(id string) string
	// Copy says the caller keeps its own durable copy of the message until
	// after Process returns (pickup's maildrop file): the incoming file is
	// then committed without the directory fsync (queue's CommitOrdered).
	Copy bool
	// Queued, when set, is called with the new queue ID once the message
	// is queued and before cleanup logs it (pickup logs its line here).
	Queued func(id string)
	// Verify (sendmail -bv) asks for a delivery status report instead of
	// delivery: the queue file is marked with queue.TraceVerify.
	Verify bool
	// DSN, when set, holds each recipient's RFC 3461 NOTIFY and ORCPT
	// (the same index as Recipients); they follow the recipient through
	// virtual alias expansion.
	DSN []RecipientDSN
	// Attrs are queue file attributes the caller records (smtpd: ENVID,
	// RET, BODY, SMTPUTF8, the client).
	Attrs map[string]string
	// File is the queue file Open made for this message; Process
	// finishes or removes it.
	File *File
	// Hold puts the message in the hold queue (smtpd's HOLD action).
	Hold bool
}

// RecipientDSN is one recipient's NOTIFY and ORCPT parameters.
type RecipientDSN struct {
	Notify string // "SUCCESS,DELAY", "NEVER"
	ORCPT  string // "rfc822;user@example.com", xtext decoded
}

// File is a queue file opened before its envelope is complete: smtpd
// opens it at the first accepted recipient, as Postfix's smtpd opens its
// cleanup stream then, so that the queue ID is known (and logged) from
// there on.
type File struct {
	w       *queue.Writer
	arrival time.Time
}

// Open starts a queue file in the incoming queue; hand it to Process in
// Submission.File, or Abort it.
func (c *Cleanup) Open() (*File, error) {
	now := time.Now()
	w, err := c.q.Create(queue.Incoming, &queue.Message{Arrival: now, Recipients: []queue.Recipient{{Address: "pending"}}})
	if err != nil {
		return nil, err
	}
	return &File{w: w, arrival: now}, nil
}

// ID is the queue ID the message will have.
func (f *File) ID() string { return f.w.ID() }

// Abort removes the unfinished queue file (RSET, QUIT, a lost
// connection); it does nothing once Process has used the file.
func (f *File) Abort() { f.w.Abort() }

// Reject is a message cleanup refused; nothing was queued.
type Reject struct {
	Code int    // SMTP reply code: 552, 554
	DSN  string // enhanced status: "5.3.4"
	Text string // "Message size exceeds fixed limit"
}

func (r *Reject) Error() string { return fmt.Sprintf("%d %s %s", r.Code, r.DSN, r.Text) }

// Defer is a message cleanup cannot accept now ("... -- message not
// accepted, try again later"): nothing was queued, the submission is
// kept and tried again, and other messages are not held up.
type Defer struct {
	Text string
}

func (d *Defer) Error() string { return d.Text }

// Rejections cleanup produces.
var (
	ErrTooBig       = &Reject{552, "5.3.4", "Message size exceeds fixed limit"}
	ErrNoRecipients = &Reject{554, "5.5.1", "No recipients specified"}
)

// Cleanup is a configured cleanup service.
type Cleanup struct {
	q        *queue.Queue
	log      Logger
	rw       *addr.Rewriter
	rs       *addr.Resolver
	hostname string
	origin   string
	sizeMax  int64
	hopMax   int
	hdrMax   int
	tokenMax int
	recMax   int
	expMax   int

	canonical, senderCanonical, recipientCanonical, virtual []string

	tables *maps.Cache // the tables of the *_maps parameters
}

// New returns a cleanup service writing to queue q and logging to log
// (nil: no logging), with the main.cf settings in p.
func New(p Params, q *queue.Queue, log Logger) *Cleanup {
	c := &Cleanup{
		q:                  q,
		log:                log,
		rw:                 addr.NewRewriter(p),
		rs:                 addr.NewResolver(p),
		hostname:           strings.TrimSpace(p.Get("myhostname")),
		origin:             strings.ToLower(strings.TrimSpace(p.Get("myorigin"))),
		sizeMax:            p.Size("message_size_limit"),
		hopMax:             p.Int("hopcount_limit"),
		hdrMax:             p.Int("header_size_limit"),
		tokenMax:           p.Int("header_address_token_limit"),
		recMax:             p.Int("virtual_alias_recursion_limit"),
		expMax:             p.Int("virtual_alias_expansion_limit"),
		canonical:          p.List("canonical_maps"),
		senderCanonical:    p.List("sender_canonical_maps"),
		recipientCanonical: p.List("recipient_canonical_maps"),
		virtual:            p.List("virtual_alias_maps"),
	}
	c.tables = maps.NewCache(maps.Options{FoldCase: true, Warn: func(m string) { c.warning("%s", m) }}, c.errorLine)
	if c.hopMax <= 0 {
		c.hopMax = 50
	}
	if c.recMax <= 0 {
		c.recMax = 1000
	}
	if c.expMax <= 0 {
		c.expMax = 1000
	}
	return c
}

func (c *Cleanup) info(format string, args ...any) {
	if c.log != nil {
		c.log.Info(format, args...)
	}
}

func (c *Cleanup) warning(format string, args ...any) {
	if c.log != nil {
		c.log.Warning(format, args...)
	}
}

// errorLine logs Postfix's "error:" line, when the logger has that level.
func (c *Cleanup) errorLine(msg string) {
	if el, ok := c.log.(interface{ Error(string, ...any) }); ok {
		el.Error("%s", msg)
	} else {
		c.warning("%s", msg)
	}
}

// Process cleans up one message read from content (LF line endings) and
// writes it to the incoming queue. It returns the queue ID once the
// queue file is durable, a *Reject when the message is refused, or
// another error for a temporary failure (nothing is queued then either).
func (c *Cleanup) Process(sub *Submission, content io.Reader) (string, error) {
	arrival := sub.Arrival
	if sub.File != nil {
		defer sub.File.Abort() // harmless after the commit
		arrival = sub.File.arrival
	}
	if arrival.IsZero() {
		arrival = time.Now()
	}
	local := sub.UID >= 0
	br := bufio.NewReaderSize(content, 64*1024)
	hdrs, bodyStart, err := readHeaders(br, c.hdrMax)
	if err != nil {
		return "", err
	}

	sender := sub.Sender
	if sender != "" {
		sender, err = c.mapSender(sender)
		if err != nil {
			return "", err
		}
	}
	rcpts, err := c.recipients(sub.Recipients, sub.DSN)
	if err != nil {
		return "", err
	}
	if len(rcpts) == 0 {
		return "", ErrNoRecipients
	}

	st := headerState{}
	if local || sub.Received != "" || sub.ReceivedFor != nil {
		st.hops = 1 // the Received: header prepended here counts, as in Postfix
	}
	var out []header
	for _, h := range hdrs {
		keep, err := c.header(&h, sub, local, &st)
		if err != nil {
			return "", err
		}
		if keep {
			out = append(out, h)
		}
	}
	// Too many hops: as Postfix's cleanup, the message is queued all the
	// same and every recipient bounces, so that the sender is told.
	tooManyHops := st.hops >= c.hopMax
	a := attrs(local, sub.Verify)
	if tooManyHops {
		a[queue.AttrFail] = "5.4.0 too many hops"
	}
	for k, v := range sub.Attrs {
		a[k] = v
	}
	env := &queue.Message{Arrival: arrival, Sender: sender, Recipients: rcpts, Attrs: a}
	var w *queue.Writer
	if sub.File != nil {
		w, err = sub.File.w, sub.File.w.SetEnvelope(env)
	} else {
		w, err = c.q.Create(queue.Incoming, env)
	}
	if err != nil {
		return "", err
	}
	if sub.Hold {
		w.SetQueue(queue.Hold)
	}
	ok := false
	defer func() {
		if !ok {
			w.Abort()
		}
	}()
	id := provisionalID(w, arrival)
	lw := &limitWriter{w: w, max: c.sizeMax}
	bw := bufio.NewWriterSize(lw, 64*1024)
	if local {
		fmt.Fprintf(bw, "Received: by %s (Postfix, from userid %d)\n\tid %s; %s\n", c.hostname, sub.UID, id, mailDate(arrival))
	} else if sub.ReceivedFor != nil {
		fmt.Fprintf(bw, "Received: %s\n", sub.ReceivedFor(id))
	} else if sub.Received != "" {
		fmt.Fprintf(bw, "Received: %s\n", sub.Received)
	}
	for _, h := range out {
		bw.WriteString(h.raw)
	}
	if st.messageID == "" {
		st.messageID = fmt.Sprintf("<%s.%s@%s>", arrival.Format("20060102150405"), id, c.hostname)
		fmt.Fprintf(bw, "Message-Id: %s\n", st.messageID)
	}
	if !st.date {
		fmt.Fprintf(bw, "Date: %s\n", mailDate(arrival))
	}
	if !st.from {
		fmt.Fprintf(bw, "From: %s\n", fromHeader(sub.FullName, sender))
	}
	bw.WriteString("\n")
	if bodyStart != "" {
		bw.WriteString(bodyStart)
	}
	if _, err := io.Copy(bw, br); err != nil {
		if errors.Is(err, errTooBig) {
			return "", ErrTooBig
		}
		return "", fmt.Errorf("read message content: %w", err)
	}
	if err := bw.Flush(); err != nil {
		if errors.Is(err, errTooBig) {
			return "", ErrTooBig
		}
		return "", err
	}
	commit := w.Commit
	if sub.Copy {
		commit = w.CommitOrdered
	}
	qid, err := commit()
	if err != nil {
		return "", err
	}
	ok = true
	if sub.Queued != nil {
		sub.Queued(qid)
	}
	c.info("%s: message-id=%s", qid, st.messageID)
	if tooManyHops {
		c.warning("%s: message rejected: hopcount exceeded", qid)
	}
	// Wake qmgr; when the mail system is down the message waits.
	_ = queue.Trigger(c.q.Dir, "qmgr", queue.QmgrScanIncoming)
	return qid, nil
}

func contextName(local bool) string {
	if local {
		return "local"
	}
	return "remote"
}

// provisionalID is the queue ID the message will have when the queue
// writer can tell it before Commit; otherwise an ID-shaped token from
// the arrival time, used only inside the Received: and Message-Id:
// headers.
func provisionalID(w any, t time.Time) string {
	if iw, ok := w.(interface{ ID() string }); ok {
		if id := iw.ID(); id != "" {
			return id
		}
	}
	return queue.ShortID(t, uint64(t.UnixNano()>>20)&0xfffff)
}

// mailDate is Postfix's header date layout (day of month space-padded).
func mailDate(t time.Time) string {
	return t.Format("Mon, _2 Jan 2006 15:04:05 -0700 (MST)")
}

// fromHeader is the From: value Postfix's header_from_format = standard
// produces.
func fromHeader(fullName, sender string) string {
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	fullName = strings.TrimSpace(fullName)
	if fullName == "" {
		return sender
	}
	if strings.ContainsAny(fullName, "()<>[]:;@\\,.\"") {
		fullName = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(fullName) + `"`
	}
	return fullName + " <" + addr.Quote(sender) + ">"
}

// attrs are the attributes of a new queue file.
func attrs(local, verify bool) map[string]string {
	a := map[string]string{queue.AttrRewriteContext: contextName(local)}
	if verify {
		a[queue.AttrTraceFlags] = queue.TraceVerify
	}
	return a
}

var errTooBig = errors.New("message file too big")

// limitWriter fails once more than max bytes (0: no limit) are written.
type limitWriter struct {
	w   io.Writer
	n   int64
	max int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	l.n += int64(len(p))
	if l.max > 0 && l.n > l.max {
		return 0, errTooBig
	}
	return l.w.Write(p)
}
