package compat

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// smtpLogShape are the smtp(8) lines of a maillog, without what differs
// between two runs: time, pid, queue ID, delays, the sink's port.
func smtpLogShape(log, port string) []string {
	strip := regexp.MustCompile(`^.*?(postfix/\w+)\[\d+\]: [0-9A-F]+: (to=.*)$`)
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
