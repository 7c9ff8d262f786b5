package labnet

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// sinkDir is where a Sink keeps its messages on its host.
const sinkDir = "/var/spool/smtp-sink"

// Sink is Postfix's smtp-sink (the oracle's) listening on port 25 of a
// host, as an outside mail server that keeps every message it accepts.
type Sink struct {
	h *Host
}

// StartSink starts an smtp-sink on the host's port 25, answering as its
// FQDN, and waits until it listens. It ends with t.
func (h *Host) StartSink(t testing.TB) *Sink {
	t.Helper()
	o := oracle.Get(t)
	bin := filepath.Join(o.Root, "usr/sbin/smtp-sink")
	if _, err := h.ReadFile(bin); err != nil {
		t.Fatalf("the oracle's smtp-sink is not visible on %s (keep POSTDOVE_ORACLE out of /tmp, /home, /root, /run): %v", h.Name, err)
	}
	h.Must(t, "install -d -o nobody "+sinkDir)
	var out SafeBuffer
	h.Start(t, fmt.Sprintf("LD_LIBRARY_PATH=%s exec %s -u nobody -h %s -d '%s/%%H%%M%%S.' 0.0.0.0:25 64", o.LibDir(), bin, h.FQDN, sinkDir), &out)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.Run("ss -Hltn sport = :25").Stdout, ":25") {
		if time.Now().After(deadline) {
			t.Fatalf("%s: smtp-sink does not listen on port 25: %s", h.Name, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &Sink{h: h}
}

// Messages are the transactions the sink has kept, each in smtp-sink's
// dump format: X-Client-Addr, X-Client-Proto, X-Helo-Args,
// X-Mail-Args, X-Rcpt-Args headers, then the message.
func (s *Sink) Messages() []string {
	r := s.h.Run("for f in " + sinkDir + "/*.*; do [ -f \"$f\" ] && cat \"$f\" && printf '\\0'; done; true")
	var msgs []string
	for _, m := range strings.Split(r.Stdout, "\x00") {
		if m != "" {
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// Wait waits up to 20 s for a message that contains every one of words,
// and returns it; it fails t if none comes.
func (s *Sink) Wait(t testing.TB, words ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msgs := s.Messages()
		for _, m := range msgs {
			ok := true
			for _, w := range words {
				ok = ok && strings.Contains(m, w)
			}
			if ok {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's smtp-sink: no message with %q in 20 s; it has:\n%s", s.h.Name, words, strings.Join(msgs, "\n----\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
