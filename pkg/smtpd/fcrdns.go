package smtpd

import (
	"context"
	"errors"
	"net"
	"sync"
)

// Go's resolver reports a name that does not exist (NXDOMAIN) and a name
// without addresses (NOERROR, no answer) alike, where getaddrinfo, and so
// Postfix's warning, tells them apart. forwardLookup watches the response
// code of the first DNS answer to tell.

// forwardLookup is LookupHost through r, and for a name not found
// whether its first DNS answer said NXDOMAIN.
func forwardLookup(ctx context.Context, r *net.Resolver, name string) (addrs []string, nxdomain bool, err error) {
	var w rcodeWatch
	dial := r.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	watched := &net.Resolver{PreferGo: true, StrictErrors: r.StrictErrors,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			c, err := dial(ctx, network, address)
			if err != nil {
				return nil, err
			}
			// The resolver frames messages by whether the connection
			// is a PacketConn.
			if pc, ok := c.(net.PacketConn); ok {
				return &rcodePacketConn{rcodeConn{Conn: c, w: &w, packet: true}, pc}, nil
			}
			return &rcodeConn{Conn: c, w: &w}, nil
		}}
	addrs, err = watched.LookupHost(ctx, name)
	return addrs, w.code() == rcodeNXDomain, err
}

const rcodeNXDomain = 3

// rcodeWatch keeps the response code of the first DNS message seen.
type rcodeWatch struct {
	mu   sync.Mutex
	set  bool
	rcod byte
}

func (w *rcodeWatch) note(rcode byte) {
	w.mu.Lock()
	if !w.set {
		w.set, w.rcod = true, rcode
	}
	w.mu.Unlock()
}

func (w *rcodeWatch) code() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.set {
		return -1
	}
	return int(w.rcod)
}

// rcodeConn passes a resolver's connection through, noting the RCODE
// (the low bits of the fourth header byte) of the first message read:
// each read of a datagram is one message, a stream has each message
// after a two-byte length.
type rcodeConn struct {
	net.Conn
	w      *rcodeWatch
	packet bool
	head   []byte // a stream's first bytes
}

func (c *rcodeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.packet {
		if rc, ok := messageRcode(p[:n]); ok {
			c.w.note(rc)
		}
		return n, err
	}
	if len(c.head) < 6 {
		c.head = append(c.head, p[:min(n, 6-len(c.head))]...)
		if rc, ok := messageRcode(c.head[min(len(c.head), 2):]); ok {
			c.w.note(rc)
		}
	}
	return n, err
}

// rcodePacketConn is rcodeConn for a datagram connection.
type rcodePacketConn struct {
	rcodeConn
	pc net.PacketConn
}

func (c *rcodePacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, a, err := c.pc.ReadFrom(p)
	if rc, ok := messageRcode(p[:n]); ok {
		c.w.note(rc)
	}
	return n, a, err
}

func (c *rcodePacketConn) WriteTo(p []byte, a net.Addr) (int, error) { return c.pc.WriteTo(p, a) }

// messageRcode is the RCODE of DNS message msg, if its header's first
// four bytes are there.
func messageRcode(msg []byte) (byte, bool) {
	if len(msg) < 4 {
		return 0, false
	}
	return msg[3] & 0x0f, true
}

// forwardError is a failed forward lookup as getaddrinfo's gai_strerror
// words it in Postfix's warnings.
func forwardError(err error, nxdomain bool) string {
	var de *net.DNSError
	switch {
	case !errors.As(err, &de) || !de.IsNotFound:
		return "Temporary failure in name resolution"
	case nxdomain:
		return "Name or service not known"
	}
	return "No address associated with hostname"
}
