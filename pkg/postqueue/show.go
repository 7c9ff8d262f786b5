package postqueue

import (
	"fmt"
	"io"
	"strings"
	"time"

	"postdove/pkg/queue"
)

// Entry is one message as postqueue reports it.
type Entry struct {
	Queue        string
	ID           string
	Arrival      time.Time
	Size         int64
	ForcedExpire bool
	Sender       string // "MAILER-DAEMON" for the null sender
	Recipients   []Recipient
}

// Recipient is one recipient still to be delivered, with the reason of
// the last deferral ("" when none is recorded).
type Recipient struct {
	Address string
	Reason  string
}

// reasonUnavailable is shown, as by Postfix, for a recipient that has no
// entry in a message's existing defer logfile.
const reasonUnavailable = "reason unavailable"

// Scan reads every message in the queues postqueue reports (active,
// incoming, maildrop, deferred, hold, in that order). Files that cannot
// be parsed, or vanish while being read, are skipped as Postfix's showq
// skips them.
func Scan(q *queue.Queue) ([]Entry, error) {
	var out []Entry
	for _, name := range queue.MessageQueues {
		ids, err := q.List(name)
		if err != nil {
			return out, err
		}
		for _, id := range ids {
			m, err := q.ReadEnvelope(name, id)
			if err != nil {
				continue
			}
			e := Entry{Queue: name, ID: id, Arrival: m.Arrival, Size: m.MessageSize, ForcedExpire: m.ForcedExpire, Sender: externalForm(m.Sender)}
			if e.Sender == "" {
				e.Sender = "MAILER-DAEMON"
			}
			log, _ := q.ReadLog(queue.Defer, id)
			reasons := map[string]string{}
			for _, l := range log {
				reasons[l.Recipient] = l.Reason
			}
			for _, r := range m.Recipients {
				if r.Status.Done() {
					continue
				}
				rr := Recipient{Address: externalForm(r.Address)}
				if why, ok := reasons[r.Address]; ok {
					rr.Reason = why
				} else if log != nil {
					rr.Reason = reasonUnavailable
				}
				e.Recipients = append(e.Recipients, rr)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// Column layout of Postfix's queue listing.
const (
	header      = "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------"
	rcptIndent  = 41
	reasonRight = 78 // reasons end in this column when they fit
)

// PrintQueue writes the queue listing of postqueue -p and mailq.
func PrintQueue(w io.Writer, q *queue.Queue) error {
	if err := q.Check(); err != nil {
		return err
	}
	entries, err := Scan(q)
	if err != nil {
		return err
	}
	return WriteListing(w, entries)
}

// WriteListing formats entries in Postfix's mailq layout.
func WriteListing(w io.Writer, entries []Entry) error {
	var b strings.Builder
	if len(entries) == 0 {
		b.WriteString("Mail queue is empty\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString(header + "\n")
	var total int64
	for _, e := range entries {
		total += e.Size
		status := byte(' ')
		switch e.Queue {
		case queue.Active:
			status = '*'
		case queue.Hold:
			status = '!'
		}
		fmt.Fprintf(&b, "%-10s%c%8d %-20s %s\n", e.ID, status, e.Size, e.Arrival.Format("Mon Jan _2 15:04:05"), e.Sender)
		last := ""
		for _, r := range e.Recipients {
			if r.Reason != "" && r.Reason != last {
				pad := reasonRight - len(r.Reason) - 2
				if pad < 0 {
					pad = 0
				}
				fmt.Fprintf(&b, "%*s(%s)\n", pad, "", r.Reason)
			}
			last = r.Reason
			fmt.Fprintf(&b, "%*s%s\n", rcptIndent, "", r.Address)
		}
		b.WriteString("\n")
	}
	plural := "s"
	if len(entries) == 1 {
		plural = ""
	}
	fmt.Fprintf(&b, "-- %d Kbytes in %d Request%s.\n", total/1024, len(entries), plural)
	_, err := io.WriteString(w, b.String())
	return err
}

// PrintJSON writes postqueue -j's output: one JSON object per message.
func PrintJSON(w io.Writer, q *queue.Queue) error {
	if err := q.Check(); err != nil {
		return err
	}
	entries, err := Scan(q)
	if err != nil {
		return err
	}
	return WriteJSON(w, entries)
}

// WriteJSON formats entries as postqueue -j does, with Postfix's field
// names and order.
func WriteJSON(w io.Writer, entries []Entry) error {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, `{"queue_name": %s, "queue_id": %s, "arrival_time": %d, "message_size": %d, "forced_expire": %t, "sender": %s, "recipients": [`,
			jsonString(e.Queue), jsonString(e.ID), e.Arrival.Unix(), e.Size, e.ForcedExpire, jsonString(e.Sender))
		for i, r := range e.Recipients {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, `{"address": %s`, jsonString(r.Address))
			if r.Reason != "" && r.Reason != reasonUnavailable {
				fmt.Fprintf(&b, `, "delay_reason": %s`, jsonString(r.Reason))
			}
			b.WriteString("}")
		}
		b.WriteString("]}\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// jsonString quotes s for JSON: quote and backslash escaped, control
// characters as \uXXXX, other bytes as they are.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
