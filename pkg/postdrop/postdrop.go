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
}

// ErrTooBig means the message exceeds message_size_limit.
var ErrTooBig = errors.New("message file too big")

// Drop writes one message to the maildrop queue of q, durably, and wakes
// pickup. limit is message_size_limit (0: none). It returns the maildrop
// queue ID.
func Drop(q *queue.Queue, env *Envelope, content io.Reader, limit int64) (string, error) {
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
	for _, r := range env.Recipients {
		m.Recipients = append(m.Recipients, queue.Recipient{Address: r, Status: queue.Pending})
	}
	w, err := q.Create(queue.Maildrop, m)
	if err != nil {
		return "", err
	}
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
func ReadEnvelope(m *queue.Message) (*Envelope, error) {
	uid, err := strconv.Atoi(m.Attrs[AttrUID])
	if err != nil {
		return nil, fmt.Errorf("bad or missing %s attribute", AttrUID)
	}
	env := &Envelope{Sender: m.Sender, FullName: m.Attrs[AttrFullName], UID: uid, Extracted: m.Attrs[AttrExtracted] == "yes"}
	for _, r := range m.Recipients {
		env.Recipients = append(env.Recipients, r.Address)
	}
	return env, nil
}
