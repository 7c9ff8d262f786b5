package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"postdove/pkg/queue"
	"postdove/pkg/syserr"
)

// The protocol between the queue manager and a delivery agent on its
// private/<service> socket: one connection per request; the queue manager
// writes the Request as one JSON object (without the message, which the
// agent reads from the active queue), the agent answers with the JSON
// array of its Results and closes the connection.

// maxRequest bounds a request on the wire.
const maxRequest = 16 << 20

// Client is the queue manager's side of one transport's socket.
type Client struct {
	// Socket is the path of the agent's socket (private/<service>).
	Socket string
	// Service names it in messages ("private/smtp").
	Service string
	// DialTimeout bounds the wait for an agent that is still coming up
	// (no socket yet, or not yet listening); default 10s.
	DialTimeout time.Duration
}

// NewClient is the client of service name below queue directory dir.
func NewClient(dir, name string) *Client {
	svc := queue.Private + "/" + name
	return &Client{Socket: dir + "/" + svc, Service: svc}
}

// dial connects to the socket. The master starts the agents and qmgr
// together, and Postfix's master owns the sockets before any service
// runs: while an agent is still coming up (no socket yet, or not yet
// listening, or its socket not yet given to mail_owner) the dial is
// retried until timeout instead of deferring mail.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	timeout := c.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	var d net.Dialer
	for {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		conn, err := d.DialContext(dctx, "unix", c.Socket)
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil ||
			!(errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) ||
				errors.Is(err, syscall.EACCES)) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Deliver sends req to the agent and returns its results. When ctx ends
// first the connection is closed (the agent sees the queue manager give
// up) and the error says so.
func (c *Client) Deliver(ctx context.Context, req Request) ([]Result, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to transport %s: %v", c.Service, syserr.Text(err))
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	wrap := func(what string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%s transport %s: %v", what, c.Service, ctx.Err())
		}
		return fmt.Errorf("%s transport %s: %v", what, c.Service, syserr.Text(err))
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, wrap("write to", err)
	}
	var res []Result
	if err := json.NewDecoder(io.LimitReader(conn, maxRequest)).Decode(&res); err != nil {
		return nil, wrap("read from", err)
	}
	return res, nil
}

// Handler delivers one request. Its ctx is cancelled when the queue
// manager has gone away (it closed the connection): the results will not
// be read.
type Handler func(ctx context.Context, req Request) []Result

// Server is an agent's side of its socket.
type Server struct {
	// Queue is where the agent reads the message from (the active queue).
	Queue *queue.Queue
	// Service names the socket in warnings ("private/local").
	Service string
	// Relay is the relay= of the deferral when the queue file cannot be
	// read ("local"); default the request's transport.
	Relay   string
	Handler Handler
	// Warnf logs a bad request, without "warning: ".
	Warnf func(format string, args ...any)
}

// Serve serves requests on ln, each connection in its own goroutine,
// until ctx ends. Stopping, or the master gone: the deliveries under way
// finish and are reported to the queue manager before Serve returns, so
// that none is made twice.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var busy sync.WaitGroup
	defer busy.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
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
			s.serve(conn)
		}()
	}
}

func (s *Server) warn(format string, args ...any) {
	if s.Warnf != nil {
		s.Warnf(format, args...)
	}
}

func (s *Server) serve(conn net.Conn) {
	defer conn.Close()
	var req Request
	dec := json.NewDecoder(io.LimitReader(conn, maxRequest))
	if err := dec.Decode(&req); err != nil {
		s.warn("%s: bad request: %v", s.Service, err)
		return
	}
	res := s.Handle(conn, req)
	json.NewEncoder(conn).Encode(res)
}

// Handle completes req from the queue file in the active queue (the
// message and its message-level fields) and runs the handler; a queue
// file that cannot be read defers every recipient. conn, when not nil,
// is watched for the queue manager going away.
func (s *Server) Handle(conn net.Conn, req Request) []Result {
	if !queue.ValidID(req.QueueID) {
		s.warn("%s: bad queue ID %q", s.Service, req.QueueID)
		return nil
	}
	f, err := s.Queue.Open(queue.Active, req.QueueID)
	if err != nil {
		relay := s.Relay
		if relay == "" {
			relay = req.Transport
		}
		var res []Result
		for _, r := range req.Recipients {
			res = append(res, Result{Recipient: r, Final: r.Address, Status: Deferred, DSN: "4.3.0", Relay: relay,
				Text: fmt.Sprintf("cannot open queue file: %v", err)})
		}
		return res
	}
	f.Close()
	full := FromMessage(&f.Message, f.Path)
	full.Recipients, full.Delays = req.Recipients, req.Delays
	full.Transport, full.Nexthop = req.Transport, req.Nexthop
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if conn != nil {
		// The queue manager sends nothing more: a read that ends means
		// it closed the connection.
		go func() {
			var b [1]byte
			conn.Read(b[:])
			cancel()
		}()
	}
	return s.Handler(ctx, full)
}

// FromMessage is the request for message m, stored at path: everything
// but the recipients, the delays and the route.
func FromMessage(m *queue.Message, path string) Request {
	off, size := m.Offset, m.Size
	smtputf8, _ := strconv.ParseBool(m.Attrs[queue.AttrSMTPUTF8])
	return Request{
		QueueID: m.ID, Sender: m.Sender, Arrival: m.Arrival, Size: size, Verify: m.Verify(),
		Open:  func() (io.ReadCloser, error) { return OpenContent(path, off, size) },
		ENVID: m.Attrs[queue.AttrENVID], RET: m.Attrs[queue.AttrRET], SMTPUTF8: smtputf8, Body: m.Attrs[queue.AttrBody],
		ClientName: m.Attrs[queue.AttrClientName], ClientAddr: m.Attrs[queue.AttrClientAddr],
		HELO: m.Attrs[queue.AttrHELO], Protocol: m.Attrs[queue.AttrProtocol], SASLUser: m.Attrs[queue.AttrSASLUser],
	}
}

// Recipients are the delivery recipients of m's recipients idx.
func Recipients(m *queue.Message, idx ...int) []Recipient {
	out := make([]Recipient, 0, len(idx))
	for _, i := range idx {
		r := m.Recipients[i]
		out = append(out, Recipient{Address: r.Address, Orig: r.Orig, Index: i, Notify: r.Notify, ORCPT: r.ORCPT})
	}
	return out
}
