package postqueue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"postdove/pkg/syserr"
	"strings"
	"sync"
	"syscall"
	"time"

	"postdove/pkg/queue"
)

// The services postqueue talks to, as sockets in queue_directory/public.
// The public directory is mail_owner:setgid_group 0710, so only the
// set-gid postdrop programs reach them, however open the sockets are.
const (
	ShowqService = "showq" // the queue listing (-p, -j)
	FlushService = "flush" // flush requests (-i, -s)
)

// Requests: one line, "VERB" or "VERB ARG". The showq service answers
// "ok" and the listing, or "error TEXT"; the flush service answers "ok",
// "deny" (site not in fast_flush_domains) or "error TEXT".
const (
	showqList = "list"
	showqJSON = "json"
	flushAll  = "all"
	flushID   = "id"
	flushSite = "site"

	replyOK    = "ok"
	replyDeny  = "deny"
	replyError = "error"
	replyBad   = replyError + " bad request"
)

const (
	maxRequest     = 1024             // longest request line
	requestTimeout = 30 * time.Second // for the client to send it
	replyTimeout   = 5 * time.Minute  // for the client to take the answer
	stopGrace      = 10 * time.Second // for requests under way when the service stops
)

// ListenService creates the socket public/NAME below queueDir, mode 0666,
// replacing a stale one. The socket is made under a temporary name and
// renamed, so a client never finds one that is not yet open to it.
func ListenService(queueDir, name string) (net.Listener, error) {
	sock := filepath.Join(queueDir, queue.Public, name)
	tmp := sock + ".new"
	os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0666); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, sock); err != nil {
		ln.Close()
		return nil, err
	}
	// The listener must not remove the socket under its old name when
	// closed; the next daemon replaces it.
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	return ln, nil
}

// ServeShowq answers queue listing requests on ln (the showq service,
// running as mail_owner) until ln is closed, which returns nil. warn
// receives complaints about bad requests; nil discards them.
func ServeShowq(ln net.Listener, q *queue.Queue, warn func(format string, args ...any)) error {
	return serve(ln, warn, func(verb, arg string) (string, io.WriterTo) {
		if arg != "" || verb != showqList && verb != showqJSON {
			return replyBad, nil
		}
		if err := q.Check(); err != nil {
			return replyError + " " + err.Error(), nil
		}
		entries, err := Scan(q)
		if err != nil {
			return replyError + " " + err.Error(), nil
		}
		return replyOK, listing{entries, verb == showqJSON}
	})
}

type listing struct {
	entries []Entry
	json    bool
}

func (l listing) WriteTo(w io.Writer) (int64, error) {
	if l.json {
		return 0, WriteJSON(w, l.entries)
	}
	return 0, WriteListing(w, l.entries)
}

// ServeFlush answers flush requests on ln (the flush service, running as
// mail_owner) until ln is closed, which returns nil: it makes the
// deferred mail asked for due now and wakes the queue manager. A site
// must be in flushDomains (fast_flush_domains). warn receives complaints
// about bad requests; nil discards them.
func ServeFlush(ln net.Listener, q *queue.Queue, flushDomains []string, warn func(format string, args ...any)) error {
	return serve(ln, warn, func(verb, arg string) (string, io.WriterTo) {
		var err error
		switch {
		case verb == flushAll && arg == "":
			err = Flush(q)
		case verb == flushID && arg != "":
			err = touchID(q, arg)
		case verb == flushSite && arg != "":
			if !siteListed(arg, flushDomains) {
				return replyDeny, nil
			}
			err = touchSite(q, arg)
		default:
			return replyBad, nil
		}
		if err != nil {
			return replyError + " " + err.Error(), nil
		}
		return replyOK, nil
	})
}

// serve accepts connections on ln and answers one request on each. When
// ln is closed (postfix stop or reload) it lets the requests under way
// finish, for up to stopGrace, so that a client that was already
// accepted is answered rather than cut off.
func serve(ln net.Listener, warn func(string, ...any), handle func(verb, arg string) (string, io.WriterTo)) error {
	if warn == nil {
		warn = func(string, ...any) {}
	}
	var busy sync.WaitGroup
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				waitTimeout(&busy, stopGrace)
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		busy.Add(1)
		go func() {
			defer busy.Done()
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(requestTimeout))
			verb, arg, err := readRequest(conn)
			if err != nil {
				warn("%s: %v", conn.LocalAddr(), err)
				return
			}
			status, body := handle(verb, arg)
			if status == replyBad {
				warn("%s: bad request: %q", conn.LocalAddr(), verb+" "+arg)
			}
			conn.SetDeadline(time.Now().Add(replyTimeout))
			bw := bufio.NewWriter(conn)
			bw.WriteString(status + "\n")
			if body != nil {
				body.WriteTo(bw)
			}
			bw.Flush()
		}()
	}
}

// waitTimeout waits for wg, or for d at most.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// readRequest reads one request line: at most maxRequest bytes, printable.
func readRequest(r io.Reader) (verb, arg string, err error) {
	line, err := bufio.NewReaderSize(io.LimitReader(r, maxRequest+1), maxRequest+1).ReadString('\n')
	if err != nil {
		if len(line) > maxRequest {
			return "", "", errors.New("request too long")
		}
		return "", "", fmt.Errorf("read request: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	for i := 0; i < len(line); i++ {
		if line[i] < ' ' || line[i] == 0x7f {
			return "", "", errors.New("malformed request")
		}
	}
	verb, arg, _ = strings.Cut(line, " ")
	return verb, arg, nil
}

// call sends request to service and returns the status line and a reader
// for what follows; the caller closes conn.
func call(q *queue.Queue, service, request string) (conn net.Conn, status string, body io.Reader, err error) {
	conn, err = net.Dial("unix", filepath.Join(q.Dir, queue.Public, service))
	if err != nil {
		return nil, "", nil, err
	}
	if _, err := io.WriteString(conn, request+"\n"); err != nil {
		conn.Close()
		return nil, "", nil, &Fatal{Text: fmt.Sprintf("write to public/%s: %s", service, syserr.Text(err))}
	}
	br := bufio.NewReader(conn)
	status, err = br.ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, "", nil, &Fatal{Text: fmt.Sprintf("read from public/%s: %s", service, readErrText(err))}
	}
	return conn, strings.TrimSuffix(status, "\n"), br, nil
}

func readErrText(err error) string {
	if errors.Is(err, io.EOF) {
		return "unexpected end of input"
	}
	return syserr.Text(err)
}

// flushRequest sends one request to the flush service.
func flushRequest(q *queue.Queue, request string) error {
	if err := q.Check(); err != nil {
		return err
	}
	conn, status, _, err := call(q, FlushService, request)
	if err != nil {
		var f *Fatal
		if errors.As(err, &f) {
			return f
		}
		return &Fatal{Warning: "connect to public/" + FlushService + ": " + syserr.Text(err), Text: textFlushDown}
	}
	conn.Close()
	switch {
	case status == replyOK:
		return nil
	case status == replyDeny:
		_, site, _ := strings.Cut(request, " ")
		return notConfigured(site)
	case strings.HasPrefix(status, replyError+" "):
		return &Fatal{Text: strings.TrimPrefix(status, replyError+" ")}
	}
	return &Fatal{Text: fmt.Sprintf("public/%s: unexpected reply %q", FlushService, status)}
}

// Lister prints the queue listing the way postqueue -p and -j do: from
// the showq service, or, when the mail system is down and the user is
// root, from the queue directly.
type Lister struct {
	Q        *queue.Queue
	MailName string            // mail_name, "Postfix", for messages
	Warn     func(text string) // prints "postqueue: warning: TEXT"; nil discards
}

// List writes the listing (JSON lines when json is set) to w. Like
// Postfix's postqueue it asks the showq service first; when nobody
// answers, root reads the queue itself after a warning, and anybody else
// gets "Queue report unavailable - mail system is down". A refused
// connection other than by a missing service is a fatal error for all.
func (l *Lister) List(w io.Writer, json bool) error {
	if err := l.Q.Check(); err != nil {
		return err
	}
	req := showqList
	if json {
		req = showqJSON
	}
	conn, status, body, err := call(l.Q, ShowqService, req)
	if err == nil {
		defer conn.Close()
		if status != replyOK {
			return &Fatal{Text: fmt.Sprintf("public/%s: %s", ShowqService, strings.TrimPrefix(status, replyError+" "))}
		}
		if _, err := io.Copy(w, body); err != nil {
			return &Fatal{Text: fmt.Sprintf("read from public/%s: %s", ShowqService, syserr.Text(err))}
		}
		return nil
	}
	var f *Fatal
	if errors.As(err, &f) {
		return f
	}
	why := fmt.Sprintf("Connect to the %s %s service: %s", l.MailName, ShowqService, syserr.Text(err))
	switch {
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return &Fatal{Text: why}
	case os.Geteuid() != 0:
		return &Fatal{Text: "Queue report unavailable - mail system is down (" + why + ")"}
	}
	if l.Warn != nil {
		l.Warn("Mail system is down -- accessing queue directly (" + why + ")")
	}
	if json {
		return PrintJSON(w, l.Q)
	}
	return PrintQueue(w, l.Q)
}
