package queue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LogEntry is one recipient's record in a bounce, defer or trace
// logfile.
type LogEntry struct {
	Recipient string // the recipient address
	Orig      string // the original recipient ("orig_rcpt"), "" if unknown
	Status    string // enhanced status code, e.g. "4.4.1"
	Action    string // "delayed", "failed", "delivered", ...
	Reason    string // the text mailq shows, e.g. "connect to ...: Connection timed out"
	// NotifySender, when set, is who is told about this recipient
	// instead of the envelope sender (owner-NAME of a mailing list).
	NotifySender string
}

// maxLogValue is where AppendLog cuts a value, so that every line stays
// readable by ReadLog.
const maxLogValue = 64 << 10

// cleanLogValue is v as a logfile keeps it: on one line, cut at
// maxLogValue bytes.
func cleanLogValue(v string) string {
	if len(v) > maxLogValue {
		v = v[:maxLogValue]
	}
	return strings.NewReplacer("\n", " ", "\r", " ", "\x00", " ").Replace(v)
}

// formatLog is e as a logfile block: name=value lines and an empty line.
func formatLog(e LogEntry) string {
	clean := cleanLogValue
	var b strings.Builder
	fmt.Fprintf(&b, "recipient=%s\n", clean(e.Recipient))
	if e.Orig != "" {
		fmt.Fprintf(&b, "orig_rcpt=%s\n", clean(e.Orig))
	}
	if e.NotifySender != "" {
		fmt.Fprintf(&b, "notify_sender=%s\n", clean(e.NotifySender))
	}
	fmt.Fprintf(&b, "status=%s\naction=%s\nreason=%s\n\n", clean(e.Status), clean(e.Action), clean(e.Reason))
	return b.String()
}

// AppendLog appends e to logfile log (Bounce, Defer or Trace) of message
// id, creating it when needed, and fsyncs it.
func (q *Queue) AppendLog(log, id string, e LogEntry) error {
	if err := q.mkSubdir(log, id); err != nil {
		return err
	}
	p := q.Path(log, id)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0600)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, unwrapPath(err))
	}
	if _, err := f.WriteString(formatLog(e)); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", p, unwrapPath(err))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", p, unwrapPath(err))
	}
	return f.Close()
}

// ReadLog returns the entries of logfile log of message id; none when
// there is no logfile. Unknown names are ignored; lines without '=' are
// skipped.
func (q *Queue) ReadLog(log, id string) ([]LogEntry, error) {
	p, err := q.locate(log, id)
	if err != nil {
		return nil, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, unwrapPath(err))
	}
	defer f.Close()
	out, err := parseLog(f)
	if err != nil {
		return out, fmt.Errorf("read %s: %w", p, err)
	}
	return out, nil
}

// parseLog reads logfile entries from r; on an error it returns the
// entries read so far.
func parseLog(r io.Reader) ([]LogEntry, error) {
	var out []LogEntry
	var cur LogEntry
	have := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEnvLine)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			if have {
				out = append(out, cur)
			}
			cur, have = LogEntry{}, false
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		have = true
		switch name {
		case "recipient":
			cur.Recipient = value
		case "orig_rcpt":
			cur.Orig = value
		case "notify_sender":
			cur.NotifySender = value
		case "status":
			cur.Status = value
		case "action":
			cur.Action = value
		case "reason":
			cur.Reason = value
		}
	}
	if have {
		out = append(out, cur)
	}
	return out, sc.Err()
}

// RemoveLog deletes logfile log of message id; a missing one is fine.
func (q *Queue) RemoveLog(log, id string) error {
	p, err := q.locate(log, id)
	if err != nil {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, unwrapPath(err))
	}
	return syncDir(filepath.Dir(p))
}
