package smtp

import (
	"context"
	"net"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// testZone is example.test as the named of startNamed serves it.
const testZone = `$TTL 60
@       SOA ns.example.test. hostmaster.example.test. 1 60 60 60 60
@       NS  ns
ns      A   127.0.0.5
; two MX hosts, listed worst first: the client sorts them
mxtest  MX  20 mx2.example.test.
mxtest  MX  10 mx1.example.test.
mx1     A   127.0.0.6
mx2     A   127.0.0.2
; no MX: the A record
plain   A   127.0.0.2
; the best MX is this machine
self    MX  10 mx0.example.test.
self    MX  20 mx2.example.test.
mx0     A   127.0.0.1
; the real smtpd with STARTTLS (oracle.StartSMTPServer)
mxtls   A   127.0.0.3
`

// startNamed runs BIND's named on 127.0.0.1 serving example.test (and
// broken.test, whose zone file is missing: SERVFAIL), and returns a
// resolver that asks it.
func startNamed(t *testing.T) *net.Resolver {
	return oracle.StartNamed(t, "127.0.0.1", oracle.FreePort(t, "127.0.0.1"),
		oracle.Zone{Name: "example.test", Text: testZone}, oracle.Zone{Name: "broken.test"})
}

func TestDeliverMX(t *testing.T) {
	r := startNamed(t)
	sink := startSink(t, "127.0.0.2")
	_, port, _ := net.SplitHostPort(sink.Addr)
	c, _ := testClient(t, "smtp", nil)
	c.Resolver = r
	c.IsSelf = func(name string, ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) }
	for _, tc := range []struct {
		dest   string
		status Status
		dsn    string
		relay  string
		text   string
	}{
		// mx1 (preference 10, 127.0.0.6) refuses: mx2 takes it.
		{"mxtest.example.test:" + port, Sent, "2.0.0", "mx2.example.test[127.0.0.2]:" + port, "250 2.0.0 Ok"},
		{"plain.example.test:" + port, Sent, "2.0.0", "plain.example.test[127.0.0.2]:" + port, "250 2.0.0 Ok"},
		{"[plain.example.test]:" + port, Sent, "2.0.0", "plain.example.test[127.0.0.2]:" + port, "250 2.0.0 Ok"},
		{"self.example.test:" + port, Bounced, "5.4.6", "none", "mail for self.example.test loops back to myself"},
		{"nosuch.example.test", Bounced, "5.4.4", "none",
			"Host or domain name not found. Name service error for name=nosuch.example.test type=MX: Host not found"},
		{"[nosuch.example.test]", Bounced, "5.4.4", "none",
			"Host or domain name not found. Name service error for name=nosuch.example.test type=A: Host not found"},
		{"x.broken.test", Deferred, "4.4.3", "none",
			"Host or domain name not found. Name service error for name=x.broken.test type=MX: Host not found, try again"},
	} {
		res := c.Deliver(context.Background(), tc.dest, testMessage(testBody, "a@example.org"))[0]
		if res.Status != tc.status || res.DSN != tc.dsn || res.Relay != tc.relay || res.Text != tc.text {
			t.Errorf("%s: got %v %s %s (%s), want %v %s %s (%s)", tc.dest, res.Status, res.DSN, res.Relay, res.Text,
				tc.status, tc.dsn, tc.relay, tc.text)
		}
	}
	// The MX preference order: with mx1 up, mx1 gets the mail.
	s1 := startSink(t, "127.0.0.6:"+port)
	res := c.Deliver(context.Background(), "mxtest.example.test:"+port, testMessage(testBody, "a@example.org"))[0]
	if res.Status != Sent || res.Relay != "mx1.example.test[127.0.0.6]:"+port {
		t.Errorf("with mx1 up: %+v", res)
	}
	if !strings.Contains(s1.Read(t), "X-Rcpt-Args: <a@example.org>") {
		t.Error("mx1's sink got nothing")
	}
}
