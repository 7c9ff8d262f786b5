package smtp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// makeCert writes a self-signed certificate for mx.example.test with
// openssl and returns the certificate and key files.
func makeCert(t testing.TB) (cert, key string) {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
		"-subj", "/CN=mx.example.test", "-keyout", key, "-out", cert).CombinedOutput()
	if err != nil {
		t.Skipf("openssl: %v: %s", err, out)
	}
	os.Chmod(key, 0o644)
	return cert, key
}

// startTLSServer runs Debian's real Postfix smtpd (the oracle) with
// STARTTLS on 127.0.0.3 and returns its address.
func startTLSServer(t *testing.T, cert, key string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.3:%d", oracle.FreePort(t, "127.0.0.3"))
	oracle.StartPostfix(t, oracle.PostfixOptions{
		MainCF: "mynetworks = 127.0.0.0/8\ndefault_transport = discard\n" +
			"smtpd_tls_security_level = may\nsmtpd_tls_cert_file = " + cert + "\nsmtpd_tls_key_file = " + key + "\n",
		MasterCF: addr + " inet n - n - - smtpd\ntlsmgr unix - - n 1000? 1 tlsmgr\n",
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if i > 200 {
			t.Fatalf("smtpd does not listen on %s", addr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestDeliverSTARTTLS(t *testing.T) {
	cert, key := makeCert(t)
	addr := startTLSServer(t, cert, key)
	_, port, _ := net.SplitHostPort(addr)
	established := func(trust string) *regexp.Regexp {
		return regexp.MustCompile(`^` + trust + ` TLS connection established to 127\.0\.0\.3\[127\.0\.0\.3\]:` + port +
			`: TLSv1\.3 with cipher TLS_[A-Z0-9_]+ \(\d+/\d+ bits\) server-signature RSA-PSS \(2048 bits\) server-digest SHA256$`)
	}
	for _, c := range []struct {
		level, caFile, trust string
	}{
		{"may", "", "Untrusted"},
		{"encrypt", "", "Untrusted"},
		{"encrypt", cert, "Trusted"},
	} {
		cl, log := testClient(t, "smtp", func(s *Settings) { s.TLSLevel, s.CAFile = c.level, c.caFile })
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
