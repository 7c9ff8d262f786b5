package postsuper

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"postdove/pkg/syserr"
	"strings"
	"time"

	"postdove/pkg/queue"
)

// Op is one kind of postsuper operation.
type Op int

// Operations, in the order postsuper performs and reports them.
const (
	Requeue       Op = iota // -r
	Delete                  // -d
	Expire                  // -e
	ExpireRelease           // -f
	Hold                    // -h
	Release                 // -H
	numOps
)

// done is the per-message line and summary label of each operation.
var (
	perMessage = [numOps]string{"requeued", "removed", "forcibly expired", "forcibly expired", "placed on hold", "released from hold"}
	summary    = [numOps]string{"Requeued", "Deleted", "Force-expired", "Force-expired", "Placed on hold", "Released from hold"}
)

// sources are the queues each operation takes messages from.
var sources = [numOps][]string{
	Requeue:       {queue.Hold, queue.Incoming, queue.Active, queue.Deferred},
	Delete:        {queue.Hold, queue.Incoming, queue.Active, queue.Deferred, queue.Maildrop},
	Expire:        {queue.Hold, queue.Incoming, queue.Active, queue.Deferred},
	ExpireRelease: {queue.Hold, queue.Incoming, queue.Active, queue.Deferred},
	Hold:          {queue.Incoming, queue.Active, queue.Deferred, queue.Maildrop},
	Release:       {queue.Hold},
}

// Request is one postsuper command line.
type Request struct {
	IDs    [numOps][]string // queue IDs per operation; "ALL" means every message
	Queues []string         // restrict to these queues (the trailing arguments)
	Stdin  io.Reader        // where "-" reads queue IDs from
	Purge  bool             // -p
	Check  bool             // -s
}

// Add records operation op on id (a queue ID, "ALL" or "-").
func (r *Request) Add(op Op, id string) { r.IDs[op] = append(r.IDs[op], id) }

// Fatal is an error reported as "postsuper: fatal: TEXT", exit 1.
type Fatal struct{ Text string }

func (f *Fatal) Error() string { return f.Text }

var queueArgs = map[string]bool{queue.Hold: true, queue.Incoming: true, queue.Active: true, queue.Deferred: true, queue.Maildrop: true}

// Logger receives postsuper's messages. Postfix's postsuper writes each
// to stderr and to the maillog; a *maillog.Logger whose Options.Stderr is
// set does both.
type Logger interface {
	Info(format string, args ...any)
	Warning(format string, args ...any)
}

// WriterLogger returns a Logger that writes "postsuper: text" lines to w
// only (for when the maillog cannot be opened).
func WriterLogger(w io.Writer) Logger { return writerLogger{w} }

type writerLogger struct{ w io.Writer }

func (l writerLogger) Info(format string, args ...any) {
	fmt.Fprintf(l.w, "postsuper: "+format+"\n", args...)
}

func (l writerLogger) Warning(format string, args ...any) {
	fmt.Fprintf(l.w, "postsuper: warning: "+format+"\n", args...)
}

// Run carries out r on q, reporting to msgs as Postfix's postsuper does.
func Run(q *queue.Queue, r *Request, msgs Logger) error {
	for _, name := range r.Queues {
		if !queueArgs[name] {
			return &Fatal{"invalid directory name: " + name}
		}
	}
	if err := q.Check(); err != nil {
		return &Fatal{err.Error()}
	}
	if r.Purge {
		if err := purge(q); err != nil {
			return &Fatal{err.Error()}
		}
	}
	if r.Check {
		if err := check(q, msgs); err != nil {
			return &Fatal{err.Error()}
		}
	}
	// Deletions go first, so "-d ALL -r ALL" requeues nothing; the other
	// operations follow in turn. The summary lines come in Postfix's
	// order, -e and -f sharing one.
	var count [numOps]int
	for _, op := range []Op{Delete, Expire, ExpireRelease, Hold, Release, Requeue} {
		if r.IDs[op] != nil {
			n, err := run(q, r, op, msgs)
			if err != nil {
				return &Fatal{err.Error()}
			}
			count[op] = n
		}
	}
	for op := Op(0); op < numOps; op++ {
		n, asked := count[op], r.IDs[op] != nil
		if op == Expire {
			continue
		}
		if op == ExpireRelease {
			n += count[Expire]
			asked = asked || r.IDs[Expire] != nil
		}
		if asked {
			msgs.Info("%s: %d message%s", summary[op], n, plural(n))
		}
	}
	if count[Requeue] > 0 {
		// Requeued mail waits in maildrop: wake pickup rather than let it
		// wait for pickup's next scan (a minute).
		_ = queue.Trigger(q.Dir, "pickup", queue.Wakeup)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// run performs op for every ID given for it and returns the number of
// messages it affected.
func run(q *queue.Queue, r *Request, op Op, msgs Logger) (int, error) {
	from := sources[op]
	if len(r.Queues) > 0 {
		var keep []string
		for _, s := range from {
			for _, w := range r.Queues {
				if s == w {
					keep = append(keep, s)
				}
			}
		}
		from = keep
	}
	count := 0
	one := func(name, id string, verbose bool) error {
		ok, err := apply(q, op, name, id)
		if err != nil {
			return err
		}
		if ok {
			count++
			if verbose {
				msgs.Info("%s: %s", id, perMessage[op])
			}
		}
		return nil
	}
	named := func(id string) error {
		if !queue.ValidName(id) {
			msgs.Warning("invalid mail queue id: %s", id)
			return nil
		}
		for _, name := range from {
			if q.Exists(name, id) {
				return one(name, id, true)
			}
		}
		return nil
	}
	for _, id := range r.IDs[op] {
		switch id {
		case "ALL":
			for _, name := range from {
				ids, err := q.List(name)
				if err != nil {
					return count, err
				}
				for _, id := range ids {
					if err := one(name, id, false); err != nil {
						return count, err
					}
				}
			}
		case "-":
			if r.Stdin == nil {
				continue
			}
			sc := bufio.NewScanner(r.Stdin)
			sc.Buffer(make([]byte, 4096), 1<<20)
			for sc.Scan() {
				if err := named(strings.TrimSpace(sc.Text())); err != nil {
					return count, err
				}
			}
		default:
			if err := named(id); err != nil {
				return count, err
			}
		}
	}
	return count, nil
}

// apply performs op on message id in queue name; false when there was
// nothing to do.
func apply(q *queue.Queue, op Op, name, id string) (bool, error) {
	switch op {
	case Delete:
		return true, q.Remove(name, id)
	case Hold:
		return true, q.Move(id, name, queue.Hold)
	case Release:
		return true, q.Move(id, queue.Hold, queue.Deferred)
	case Requeue:
		if err := q.Move(id, name, queue.Maildrop); err != nil {
			return false, err
		}
		return true, q.RemoveLogs(id)
	case Expire, ExpireRelease:
		if err := q.SetForcedExpire(name, id, true); err != nil {
			return false, err
		}
		if name == queue.Hold && op == ExpireRelease {
			return true, q.Move(id, queue.Hold, queue.Deferred)
		}
		return true, nil
	}
	return false, nil
}

// tempAge is how old a temporary file must be before -p removes it, so a
// message being written right now is left alone.
const tempAge = 6 * time.Hour

// purge removes temporary files that a crashed writer left behind (-p).
func purge(q *queue.Queue) error {
	for _, name := range append([]string{queue.Incoming, queue.Maildrop, queue.Deferred, queue.Hold, queue.Active}, queue.LogQueues...) {
		paths, err := q.Temporary(name)
		if err != nil {
			return err
		}
		for _, p := range paths {
			fi, err := os.Lstat(p)
			if err != nil || time.Since(fi.ModTime()) < tempAge {
				continue
			}
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("remove %s: %s", p, syserr.Text(err))
			}
		}
	}
	return nil
}

// check moves messages that sit in the wrong hashed subdirectory (after
// a hash_queue_depth change) to where they belong (-s), and moves
// unreadable queue files to the corrupt queue.
func check(q *queue.Queue, msgs Logger) error {
	for _, name := range append(append([]string{}, queue.MessageQueues...), queue.LogQueues...) {
		corrupt, err := q.Fix(name)
		if err != nil {
			return err
		}
		for _, id := range corrupt {
			msgs.Warning("%s/%s: moved to corrupt queue", name, id)
		}
	}
	return nil
}
