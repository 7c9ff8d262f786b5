package postdrop

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"postdove/pkg/queue"
)

// Maildrop file attributes.
const (
	AttrUID       = "uid"
	AttrFullName  = "full_name"
	AttrExtracted = "extracted"
)

// Exit statuses of the postdrop command (see doc.go).
const (
	ExitTooBig   = 65
	ExitTempFail = 75
)

// Envelope is what sendmail submits with a message.
type Envelope struct {
	Sender     string // "" is the null sender
	FullName   string
	Recipients []string
	Extracted  bool // recipients were taken from the headers (-t)
	UID        int
	Requeued   bool // a queued message put back by postsuper -r
	Verify     bool // sendmail -bv: report on delivery, do not deliver
}

// ErrTooBig means the message exceeds message_size_limit.
var ErrTooBig = errors.New("message file too big")

// Drop writes one message to the maildrop queue of q, durably, and wakes
// pickup. limit is message_size_limit (0: none). It returns the maildrop
// queue ID.
func Drop(q *queue.Queue, env *Envelope, content io.Reader, limit int64) (string, error) {
	w, err := q.Create(queue.Maildrop, envelope(env))
	if err != nil {
		return "", err
	}
	return finish(q, w, content, limit)
}

// Open starts a maildrop file whose envelope comes later: sendmail -bs
// opens it at the first accepted recipient, as Postfix's smtpd does, so
// that its queue ID is known from there on. Finish it or Abort it.
func Open(q *queue.Queue) (*queue.Writer, error) {
	return q.Create(queue.Maildrop, &queue.Message{Recipients: []queue.Recipient{{Address: "pending"}}})
}

// Finish writes env and content to w from Open and queues it as Drop
// does; it removes the file on failure.
func Finish(q *queue.Queue, w *queue.Writer, env *Envelope, content io.Reader, limit int64) (string, error) {
	if err := w.SetEnvelope(envelope(env)); err != nil {
		w.Abort()
		return "", err
	}
	return finish(q, w, content, limit)
}

func envelope(env *Envelope) *queue.Message {
	m := &queue.Message{
		Sender: env.Sender,
		Attrs: map[string]string{
			AttrUID:      strconv.Itoa(env.UID),
			AttrFullName: env.FullName,
		},
	}
	if env.Extracted {
		m.Attrs[AttrExtracted] = "yes"
	}
	if env.Verify {
		m.Attrs[queue.AttrTraceFlags] = queue.TraceVerify
	}
	for _, r := range env.Recipients {
		m.Recipients = append(m.Recipients, queue.Recipient{Address: r, Status: queue.Pending})
	}
	return m
}

func finish(q *queue.Queue, w *queue.Writer, content io.Reader, limit int64) (string, error) {
	r := content
	if limit > 0 {
		r = io.LimitReader(content, limit+1)
	}
	n, err := w.ReadFrom(r)
	if err != nil {
		w.Abort()
		return "", err
	}
	if limit > 0 && n > limit {
		w.Abort()
		return "", ErrTooBig
	}
	id, err := w.Commit()
	if err != nil {
		return "", err
	}
	_ = queue.Trigger(q.Dir, "pickup", queue.Wakeup)
	return id, nil
}

// ReadEnvelope returns the submission details pickup needs from a
// maildrop file's envelope.
//
// A queue file that cleanup already wrote (put back into maildrop by
// postsuper -r) is accepted too: it is Requeued, its UID is -1 (it is not
// a local submission any more, so cleanup adds no Received: header and
// leaves the headers alone), and only its recipients not yet done count.
func ReadEnvelope(m *queue.Message) (*Envelope, error) {
	env := &Envelope{Sender: m.Sender, FullName: m.Attrs[AttrFullName], Extracted: m.Attrs[AttrExtracted] == "yes", Verify: m.Verify()}
	if _, cleaned := m.Attrs[queue.AttrRewriteContext]; cleaned && m.Attrs[AttrUID] == "" {
		env.UID, env.Requeued = -1, true
	} else {
		uid, err := strconv.Atoi(m.Attrs[AttrUID])
		if err != nil {
			return nil, fmt.Errorf("bad or missing %s attribute", AttrUID)
		}
		env.UID = uid
	}
	for _, r := range m.Recipients {
		if !r.Status.Done() {
			env.Recipients = append(env.Recipients, r.Address)
		}
	}
	return env, nil
}
