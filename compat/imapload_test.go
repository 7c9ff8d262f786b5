package compat

// imapLoad is the IMAP benchmarks' load generator: a raw-protocol client
// that sends tagged commands and reads the answers up to the tagged
// status line, counting untagged responses and skipping literals, with no
// parsing beyond that, so that the client costs the same whichever server
// it talks to.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// imapLoadTimeout bounds each command and the greeting: a server that
// stops answering fails the benchmark instead of hanging it.
const imapLoadTimeout = 2 * time.Minute

type imapLoad struct {
	c   net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	tag int
}

// dialIMAP connects to addr from the local address src ("" for any) and
// reads the greeting.
func dialIMAP(src, addr string) (*imapLoad, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := newIMAPLoad(c)
	c.SetDeadline(time.Now().Add(imapLoadTimeout))
	line, err := l.readLine()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %v", err)
	}
	if !strings.HasPrefix(line, "* OK") {
		c.Close()
		return nil, fmt.Errorf("greeting %q", line)
	}
	return l, nil
}

func newIMAPLoad(rw net.Conn) *imapLoad {
	return &imapLoad{c: rw, r: bufio.NewReaderSize(rw, 64<<10), w: bufio.NewWriter(rw)}
}

func (l *imapLoad) Close() error { return l.c.Close() }

// readLine returns the next response line without its CRLF, with any
// literals it announces read and left out (a literal's text is replaced
// by "{}").
func (l *imapLoad) readLine() (string, error) {
	var sb strings.Builder
	for {
		part, err := l.r.ReadString('\n')
		if err != nil {
			return sb.String() + part, err
		}
		part = strings.TrimRight(part, "\r\n")
		n, ok := literalSize(part)
		if !ok {
			sb.WriteString(part)
			return sb.String(), nil
		}
		sb.WriteString(part[:strings.LastIndexByte(part, '{')])
		sb.WriteString("{}")
		if _, err := io.CopyN(io.Discard, l.r, n); err != nil {
			return sb.String(), err
		}
	}
}

// literalSize is n when line ends with a literal's announcement {n} (or
// {n+}).
func literalSize(line string) (int64, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(line[i+1:len(line)-1], "+"), 10, 64)
	if err != nil || n < 0 || n > 1<<30 {
		return 0, false
	}
	return n, true
}

// errNotOK is a tagged NO or BAD.
var errNotOK = errors.New("not OK")

// cmd sends one command and reads up to its tagged answer; it returns
// the number of untagged responses. A NO or BAD is an error.
func (l *imapLoad) cmd(command string) (int, error) {
	tag := l.send(command)
	return l.finish(tag, command)
}

func (l *imapLoad) send(command string) string {
	l.c.SetDeadline(time.Now().Add(imapLoadTimeout))
	l.tag++
	tag := "a" + strconv.Itoa(l.tag)
	l.w.WriteString(tag + " " + command + "\r\n")
	return tag
}

func (l *imapLoad) finish(tag, command string) (int, error) {
	if err := l.w.Flush(); err != nil {
		return 0, err
	}
	untagged := 0
	for {
		line, err := l.readLine()
		if err != nil {
			return untagged, fmt.Errorf("%s: %v", command, err)
		}
		switch {
		case strings.HasPrefix(line, "* "):
			untagged++
		case strings.HasPrefix(line, tag+" "):
			if !strings.HasPrefix(line[len(tag)+1:], "OK") {
				return untagged, fmt.Errorf("%s: %q: %w", command, line, errNotOK)
			}
			return untagged, nil
		}
	}
}

// continuation sends command, which ends with a literal's announcement,
// waits for the server's "+", then sends rest.
func (l *imapLoad) continuation(command, rest string) error {
	tag := l.send(command)
	if err := l.w.Flush(); err != nil {
		return err
	}
	for {
		line, err := l.readLine()
		if err != nil {
			return fmt.Errorf("%s: %v", command, err)
		}
		if strings.HasPrefix(line, "+") {
			break
		}
		if strings.HasPrefix(line, tag+" ") {
			return fmt.Errorf("%s: %q: %w", command, line, errNotOK)
		}
	}
	l.w.WriteString(rest + "\r\n")
	_, err := l.finish(tag, command)
	return err
}

// login logs in with LOGIN.
func (l *imapLoad) login(user, pass string) error {
	_, err := l.cmd("LOGIN " + user + " " + pass)
	return err
}

// logout sends LOGOUT, reads the BYE and the OK, and closes.
func (l *imapLoad) logout() error {
	_, err := l.cmd("LOGOUT")
	l.Close()
	return err
}

// appendMsg APPENDs msg (with CRLF line ends) to mailbox.
func (l *imapLoad) appendMsg(mailbox, msg string) error {
	return l.continuation(fmt.Sprintf("APPEND %s {%d}", mailbox, len(msg)), msg)
}

// idle starts IDLE and waits for the server's continuation.
func (l *imapLoad) idle() error {
	l.send("IDLE")
	if err := l.w.Flush(); err != nil {
		return err
	}
	line, err := l.readLine()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+") {
		return fmt.Errorf("IDLE: %q", line)
	}
	return nil
}

// FuzzIMAPLoadResponse: whatever a server answers to a command, the load
// generator returns (an error or a count) and does not panic or hang.
func FuzzIMAPLoadResponse(f *testing.F) {
	for _, s := range []string{
		"* 1 FETCH (FLAGS () ENVELOPE (NIL {3}\r\nabc NIL))\r\na1 OK done\r\n",
		"* OK x {99999999999}\r\n",
		"a1 NO [ALERT] no\r\n",
		"* 1 EXISTS\r\n* BYE {2+}\r\nab\r\na1 BAD x\r\n",
		"a1",
		"{5}\r\nabc",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go func() {
			defer server.Close()
			if _, err := bufio.NewReader(server).ReadString('\n'); err != nil {
				return
			}
			server.Write(data)
		}()
		l := newIMAPLoad(client)
		if n, err := l.cmd("NOOP"); err == nil && n < 0 {
			t.Fatalf("count %d", n)
		}
	})
}
