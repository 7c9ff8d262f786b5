package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// smtpLogShape are the smtp(8) lines of a maillog, without what differs
// between two runs: time, pid, queue ID, delays, the sink's port.
func smtpLogShape(log, port string) []string {
	strip := regexp.MustCompile(`^.*?(postfix/[\w/]+)\[\d+\]: [0-9A-F]+: (to=.*)$`)
	delays := regexp.MustCompile(`delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+`)
	var out []string
	for _, l := range strings.Split(log, "\n") {
		m := strip.FindStringSubmatch(l)
		if m == nil || !strings.Contains(l, "relay=") || strings.Contains(m[1], "local") {
			continue
		}
		s := m[1] + ": " + delays.ReplaceAllString(m[2], "delay=D, delays=D")
		out = append(out, strings.ReplaceAll(s, ":"+port, ":PORT"))
	}
	return out
}

// sinkShape is a sink's capture without the Received headers and the
// lines that differ between two runs (ids, dates).
func sinkShape(dump string) string {
	var out []string
	lines := strings.Split(dump, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "Received:") {
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "\t") {
				i++
			}
			continue
		}
		if strings.HasPrefix(l, "Message-Id:") || strings.HasPrefix(l, "Date:") || strings.HasPrefix(l, "X-Client-Addr:") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// waitFor polls until cond holds or 20 seconds have passed.
func waitFor(cond func() bool) bool {
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestSMTPRelayhostSideBySide sends the same mail through Postfix and
// through postdove to relayhost = [127.0.0.2]:port, each to an smtp-sink
// of its own: the smtp log lines and the bytes at the sink match.
func TestSMTPRelayhostSideBySide(t *testing.T) {
	const msg = "From: Sender <sender@example.test>\nTo: a@example.org\nSubject: side by side\n\n" +
		"line\n.starts with a dot\n..two dots\n.\nend\n"
	type run struct {
		log  []string
		dump string
	}
	runs := map[string]run{}
	for _, system := range []string{"postfix", "postdove"} {
		sink := oracle.StartSink(t, "127.0.0.2")
		_, port, _ := strings.Cut(sink.Addr, ":")
		opt := oracle.PostfixOptions{MainCF: "relayhost = " + sink.Hop() + "\n"}
		var inst *oracle.Instance
		if system == "postfix" {
			inst = oracle.StartPostfix(t, opt)
		} else {
			inst = oracle.StartPostdove(t, opt)
		}
		res := oracle.RunLimit(inst.Sendmail("-i", "-f", "sender@example.test", "a@example.org", "b@example.org"), msg, 20*time.Second)
		if res.Code != 0 {
			t.Fatalf("%s sendmail: %d %s", system, res.Code, res.Stderr)
		}
		if !waitFor(func() bool { return strings.Count(inst.ReadMaillog(), "status=sent") >= 2 }) {
			t.Fatalf("%s: not sent; maillog:\n%s", system, inst.ReadMaillog())
		}
		runs[system] = run{smtpLogShape(inst.ReadMaillog(), port), sinkShape(sink.Read(t))}
		inst.Stop()
	}
	want, got := runs["postfix"], runs["postdove"]
	if strings.Join(got.log, "\n") != strings.Join(want.log, "\n") {
		t.Errorf("log lines:\npostdove:\n%s\npostfix:\n%s", strings.Join(got.log, "\n"), strings.Join(want.log, "\n"))
	}
	if got.dump != want.dump {
		t.Errorf("at the sink:\npostdove:\n%s\npostfix:\n%s", got.dump, want.dump)
	}
}

// TestSMTPFailuresSideBySide: a refused connection and a 4xx reply
// defer, a 5xx reply bounces, with the same log lines as Postfix's; the
// bounce the sender gets quotes the remote server's reply.
func TestSMTPFailuresSideBySide(t *testing.T) {
	for _, c := range []struct {
		name   string
		opts   []string // smtp-sink options; nil: nothing listens
		status string
	}{
		{"refused", nil, "deferred"},
		{"4xx", []string{"-r", "RCPT"}, "deferred"},
		{"5xx", []string{"-f", "RCPT"}, "bounced"},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := map[string][]string{}
			bounces := map[string]string{}
			for _, system := range []string{"postfix", "postdove"} {
				var hop, port string
				if c.opts == nil {
					port = fmt.Sprint(oracle.FreePort(t, "127.0.0.2"))
					hop = "[127.0.0.2]:" + port
				} else {
					sink := oracle.StartSink(t, "127.0.0.2", c.opts...)
					_, port, _ = strings.Cut(sink.Addr, ":")
					hop = sink.Hop()
				}
				opt := oracle.PostfixOptions{MainCF: "relayhost = " + hop + "\n"}
				var inst *oracle.Instance
				if system == "postfix" {
					inst = oracle.StartPostfix(t, opt)
				} else {
					inst = oracle.StartPostdove(t, opt)
				}
				u := oracle.AddUser(t, inst.HomeDir, "snd")
				res := oracle.RunLimit(inst.Sendmail("-i", "-f", u.Name+"@mail.example.test", "a@example.org"),
					"Subject: failing\n\nbody\n", 20*time.Second)
				if res.Code != 0 {
					t.Fatalf("%s sendmail: %d %s", system, res.Code, res.Stderr)
				}
				spool := filepath.Join(inst.SpoolDir, u.Name)
				if !waitFor(func() bool {
					if c.status == "bounced" {
						b, _ := os.ReadFile(spool)
						return strings.Contains(string(b), "\n\n") && strings.Contains(inst.ReadMaillog(), "postfix/local")
					}
					return strings.Contains(inst.ReadMaillog(), "status="+c.status)
				}) {
					t.Fatalf("%s: no %s; maillog:\n%s", system, c.status, inst.ReadMaillog())
				}
				logs[system] = smtpLogShape(inst.ReadMaillog(), port)
				b, _ := os.ReadFile(spool)
				bounces[system] = string(b)
				inst.Stop()
			}
			if got, want := strings.Join(logs["postdove"], "\n"), strings.Join(logs["postfix"], "\n"); got != want || want == "" {
				t.Errorf("log lines:\npostdove:\n%s\npostfix:\n%s", got, want)
			}
			if c.status == "bounced" {
				// (Postfix's delivery-status part has "Remote-MTA: dns;
				// 127.0.0.2" and "Diagnostic-Code: smtp; 500 ...", which
				// the delivery contract cannot carry yet.)
				const said = "<a@example.org>: host 127.0.0.2[127.0.0.2] said: 500 5.3.0 Error: command\n    failed (in reply to RCPT TO command)\n"
				for system, b := range bounces {
					if !strings.Contains(b, said) {
						t.Errorf("%s's bounce:\n%s", system, b)
					}
				}
			}
		})
	}
}

// TestSMTPTLSSideBySide: Postfix and postdove send with
// smtp_tls_security_level = may to the real smtpd with STARTTLS; with
// smtp_tls_loglevel = 1 (at 0, the default, neither logs TLS) both log
// the same "TLS connection established" line (but the TLS 1.3 cipher,
// which the client's library prefers: OpenSSL AES-256, Go AES-128) and the
// same delivery line.
func TestSMTPTLSSideBySide(t *testing.T) {
	cert, key := oracle.SelfSignedCert(t, "mx.example.test")
	addr := oracle.StartSMTPServer(t, cert, key)
	_, port, _ := strings.Cut(addr, ":")
	norm := strings.NewReplacer(":"+port, ":PORT", "TLS_AES_256_GCM_SHA384 (256/256 bits)", "CIPHER",
		"TLS_AES_128_GCM_SHA256 (128/128 bits)", "CIPHER")
	queued := regexp.MustCompile(`queued as [0-9A-F]+`)
	tlsLine := regexp.MustCompile(`(postfix/smtp)\[\d+\]: (\w+ TLS connection established to .*)$`)
	shapes := map[string][]string{}
	for _, system := range []string{"postfix", "postdove"} {
		opt := oracle.PostfixOptions{MainCF: "relayhost = [" + strings.Replace(addr, ":", "]:", 1) + "\nsmtp_tls_security_level = may\nsmtp_tls_loglevel = 1\n",
			MasterCF: "tlsmgr unix - - n 1000? 1 tlsmgr\n"}
		var inst *oracle.Instance
		if system == "postfix" {
			inst = oracle.StartPostfix(t, opt)
		} else {
			inst = oracle.StartPostdove(t, opt)
		}
		res := oracle.RunLimit(inst.Sendmail("-i", "-f", "sender@example.test", "a@example.org"), "Subject: tls\n\nbody\n", 20*time.Second)
		if res.Code != 0 {
			t.Fatalf("%s sendmail: %d %s", system, res.Code, res.Stderr)
		}
		if !waitFor(func() bool { return strings.Contains(inst.ReadMaillog(), "status=sent") }) {
			t.Fatalf("%s: not sent; maillog:\n%s", system, inst.ReadMaillog())
		}
		log := inst.ReadMaillog()
		var shape []string
		for _, l := range strings.Split(log, "\n") {
			if m := tlsLine.FindStringSubmatch(l); m != nil {
				shape = append(shape, m[1]+": "+norm.Replace(m[2]))
			}
		}
		for _, l := range smtpLogShape(log, port) {
			shape = append(shape, queued.ReplaceAllString(l, "queued as ID"))
		}
		shapes[system] = shape
		inst.Stop()
	}
	got, want := strings.Join(shapes["postdove"], "\n"), strings.Join(shapes["postfix"], "\n")
	if got != want || !strings.Contains(want, "TLS connection established") {
		t.Errorf("postdove:\n%s\npostfix:\n%s", got, want)
	}
}

// TestLMTPTransportMapsSideBySide: transport_maps sends one domain to an
// LMTP server on a unix socket, one to LMTP over TCP, one to SMTP on
// another port, and one to the relay transport (smtp(8) too: it logs as
// postfix/smtp), all smtp-sinks; Postfix and postdove log the same lines.
func TestLMTPTransportMapsSideBySide(t *testing.T) {
	logs := map[string][]string{}
	for _, system := range []string{"postfix", "postdove"} {
		unix := oracle.StartSink(t, "unix:", "-L")
		os.Chmod(unix.Addr, 0o666) // the agent runs as mail_owner
		inet := oracle.StartSink(t, "127.0.0.1", "-L")
		smtp := oracle.StartSink(t, "127.0.0.2")
		relay := oracle.StartSink(t, "127.0.0.2")
		named := oracle.StartSink(t, "127.0.0.2")
		dir, err := os.MkdirTemp("/var/tmp", "pdtlmtp-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		os.Chmod(dir, 0o755)
		table := filepath.Join(dir, "transport")
		os.WriteFile(table, []byte("unix.example lmtp:unix:"+unix.Addr+"\ninet.example lmtp:inet:"+inet.Addr+
			"\nport.example smtp:"+smtp.Hop()+"\nrelay.example relay:"+relay.Hop()+
			"\nnamed.example named:"+named.Hop()+"\n"), 0o644)
		opt := oracle.PostfixOptions{MainCF: "transport_maps = texthash:" + table + "\n",
			MasterCF: "named unix - - n - - smtp -o syslog_name=postfix/$service_name\n"}
		var inst *oracle.Instance
		if system == "postfix" {
			inst = oracle.StartPostfix(t, opt)
		} else {
			inst = oracle.StartPostdove(t, opt)
		}
		res := oracle.RunLimit(inst.Sendmail("-i", "-f", "sender@example.test", "a@unix.example", "b@inet.example", "c@port.example",
			"d@relay.example", "e@named.example"),
			"Subject: lmtp\n\nbody\n", 20*time.Second)
		if res.Code != 0 {
			t.Fatalf("%s sendmail: %d %s", system, res.Code, res.Stderr)
		}
		if !waitFor(func() bool { return strings.Count(inst.ReadMaillog(), "status=sent") >= 5 }) {
			t.Fatalf("%s: not sent; maillog:\n%s", system, inst.ReadMaillog())
		}
		norm := strings.NewReplacer(unix.Addr, "UNIX")
		var shape []string
		port := regexp.MustCompile(`\]:\d+`)
		for _, l := range smtpLogShape(inst.ReadMaillog(), "-") {
			shape = append(shape, port.ReplaceAllString(norm.Replace(l), "]:PORT"))
		}
		sort.Strings(shape)
		logs[system] = shape
		for _, s := range []*oracle.Sink{unix, inet, smtp, relay, named} {
			if got := s.Read(t); strings.Count(got, "X-Rcpt-Args") != 1 {
				t.Errorf("%s: sink %s:\n%s", system, s.Addr, got)
			}
		}
		inst.Stop()
	}
	if got, want := strings.Join(logs["postdove"], "\n"), strings.Join(logs["postfix"], "\n"); got != want {
		t.Errorf("log lines:\npostdove:\n%s\npostfix:\n%s", got, want)
	}
}
