package smtp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

func TestDeliverSTARTTLS(t *testing.T) {
	cert, key := oracle.SelfSignedCert(t, "mx.example.test")
	addr := oracle.StartSMTPServer(t, cert, key)
	_, port, _ := net.SplitHostPort(addr)
	established := func(trust string) *regexp.Regexp {
		return regexp.MustCompile(`^` + trust + ` TLS connection established to 127\.0\.0\.3\[127\.0\.0\.3\]:` + port +
			`: TLSv1\.3 with cipher TLS_[A-Z0-9_]+ \(\d+/\d+ bits\) key-exchange X25519 server-signature RSA-PSS \(2048 bits\) server-digest SHA256$`)
	}
	for _, c := range []struct {
		level, caFile, trust string
	}{
		{"may", "", "Untrusted"},
		{"encrypt", "", "Untrusted"},
		{"encrypt", cert, "Trusted"},
	} {
		cl, log := testClient(t, "smtp", func(s *Settings) { s.TLSLevel, s.CAFile, s.TLSLogLevel = c.level, c.caFile, 1 })
		res := cl.Deliver(context.Background(), hop(addr), testMessage(testBody, "a@example.org"))
		if r := res[0]; r.Status != Sent || !strings.HasPrefix(r.Text, "250 2.0.0 Ok: queued as ") {
			t.Errorf("%s: result %+v", c.level, r)
		}
		l := log.all()
		if len(l) != 2 || !established(c.trust).MatchString(l[0]) {
			t.Errorf("%s %q: log\n%s", c.level, c.caFile, strings.Join(l, "\n"))
		}
	}
}

// Level encrypt with a server that offers no STARTTLS defers with
// Postfix's text; level may sends in plaintext.
func TestDeliverTLSNotOffered(t *testing.T) {
	s := startSink(t, "127.0.0.2")
	cl, _ := testClient(t, "smtp", func(s *Settings) { s.TLSLevel = "encrypt" })
	res := cl.Deliver(context.Background(), hop(s.Addr), testMessage(testBody, "a@example.org"))
	if r := res[0]; r.Status != Deferred || r.DSN != "4.7.4" || r.Text != "TLS is required, but was not offered by host 127.0.0.2[127.0.0.2]" {
		t.Errorf("encrypt: result %+v", r)
	}
	cl, _ = testClient(t, "smtp", func(s *Settings) { s.TLSLevel = "may" })
	if r := cl.Deliver(context.Background(), hop(s.Addr), testMessage(testBody, "a@example.org"))[0]; r.Status != Sent {
		t.Errorf("may: result %+v", r)
	}
	if got := s.Read(t); strings.Count(got, "X-Mail-Args") != 1 {
		t.Errorf("sink:\n%s", got)
	}
}

// A server that offers STARTTLS and then fails the handshake: at level
// may the message goes over a new plaintext connection, as Postfix does;
// at level encrypt it is deferred.
func TestDeliverTLSHandshakeFallback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	got := make(chan string, 10)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				fmt.Fprintf(conn, "220 broken ESMTP\r\n")
				var data strings.Builder
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
					case strings.HasPrefix(cmd, "EHLO"):
						fmt.Fprintf(conn, "250-broken\r\n250 STARTTLS\r\n")
					case cmd == "STARTTLS":
						fmt.Fprintf(conn, "220 go ahead\r\nthis is no TLS\r\n")
						return
					case cmd == "DATA":
						fmt.Fprintf(conn, "354 go\r\n")
						for {
							line, err := r.ReadString('\n')
							if err != nil || line == ".\r\n" {
								break
							}
							data.WriteString(line)
						}
						got <- data.String()
						fmt.Fprintf(conn, "250 2.0.0 Ok: queued as PLAIN\r\n")
					case cmd == "QUIT":
						fmt.Fprintf(conn, "221 bye\r\n")
						return
					default:
						fmt.Fprintf(conn, "250 ok\r\n")
					}
				}
			}()
		}
	}()
	cl, _ := testClient(t, "smtp", func(s *Settings) { s.TLSLevel = "may"; s.HeloTimeout = 5 * time.Second })
	r := cl.Deliver(context.Background(), hop(l.Addr().String()), testMessage(testBody, "a@example.org"))[0]
	if r.Status != Sent || r.Text != "250 2.0.0 Ok: queued as PLAIN" {
		t.Fatalf("may: result %+v", r)
	}
	if body := <-got; !strings.Contains(body, "\r\n..dotted line\r\n") {
		t.Errorf("plaintext body %q", body)
	}
	cl, _ = testClient(t, "smtp", func(s *Settings) { s.TLSLevel = "encrypt"; s.HeloTimeout = 5 * time.Second })
	r = cl.Deliver(context.Background(), hop(l.Addr().String()), testMessage(testBody, "a@example.org"))[0]
	if r.Status != Deferred || r.DSN != "4.7.5" || r.Text != "Cannot start TLS: handshake failure" {
		t.Errorf("encrypt: result %+v", r)
	}
}

// Levels verify and secure: the server's certificate must be trusted
// (smtp_tls_CAfile) and name the server (verify: its host name; secure:
// the next hop), or the mail is deferred with Postfix's texts.
func TestDeliverTLSVerify(t *testing.T) {
	r := startNamed(t)
	cert, key := oracle.SelfSignedCert(t, "mxtls.example.test")
	addr := oracle.StartSMTPServer(t, cert, key)
	_, port, _ := net.SplitHostPort(addr)
	for _, c := range []struct {
		level, caFile, dest string
		status              Status
		text                string
	}{
		{"verify", cert, "[mxtls.example.test]:" + port, Sent, ""},
		{"secure", cert, "[mxtls.example.test]:" + port, Sent, ""},
		{"verify", "", "[mxtls.example.test]:" + port, Deferred, "Server certificate not trusted"},
		{"verify", cert, "[127.0.0.3]:" + port, Deferred, "Server certificate not verified"},
		{"secure", cert, "[127.0.0.3]:" + port, Deferred, "Server certificate not verified"},
		{"fingerprint", cert, "[127.0.0.3]:" + port, Deferred, "TLS security level fingerprint is not supported"},
	} {
		cl, log := testClient(t, "smtp", func(s *Settings) { s.TLSLevel, s.CAFile, s.TLSLogLevel = c.level, c.caFile, 1 })
		cl.Resolver = r
		res := cl.Deliver(context.Background(), c.dest, testMessage(testBody, "a@example.org"))[0]
		if res.Status != c.status || c.text != "" && res.Text != c.text {
			t.Errorf("%s %s %q: result %+v", c.level, c.dest, c.caFile, res)
		}
		if l := log.all(); c.status == Sent && (len(l) != 2 || !strings.HasPrefix(l[0], "Verified TLS connection established to mxtls.example.test[127.0.0.3]:"+port+": ")) {
			t.Errorf("%s: log %q", c.level, l)
		}
	}
}
