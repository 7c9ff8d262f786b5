package oracle

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// SelfSignedCert writes a self-signed RSA 2048 certificate for cn (its
// subject CN and DNS subjectAltName) with
// openssl and returns the certificate and key files (readable by all, for
// Postfix's smtpd).
func SelfSignedCert(t testing.TB, cn string) (cert, key string) {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
		"-subj", "/CN="+cn, "-addext", "subjectAltName=DNS:"+cn, "-keyout", key, "-out", cert).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v: %s", err, out)
	}
	os.Chmod(key, 0o644)
	return cert, key
}

// StartSMTPServer runs the real Postfix's smtpd on a free port of
// 127.0.0.3 with STARTTLS (smtpd_tls_security_level = may, cert and key)
// and returns its address. It accepts mail from 127.0.0.0/8 for any
// domain and discards it.
func StartSMTPServer(t testing.TB, cert, key string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.3:%d", FreePort(t, "127.0.0.3"))
	StartPostfix(t, PostfixOptions{
		Hostname: "mx.example.test",
		MainCF: "mynetworks = 127.0.0.0/8\ndefault_transport = discard\n" +
			"smtpd_tls_security_level = may\nsmtpd_tls_cert_file = " + cert + "\nsmtpd_tls_key_file = " + key + "\n",
		MasterCF: addr + " inet n - n - - smtpd\ntlsmgr unix - - n 1000? 1 tlsmgr\n",
	})
	WaitListening(t, addr)
	return addr
}

// WaitListening waits up to 5 seconds until something accepts
// connections on addr.
func WaitListening(t testing.TB, addr string) {
	t.Helper()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if i > 200 {
			t.Fatalf("nothing listens on %s", addr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
