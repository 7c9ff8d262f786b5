package dovecot

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"postdove/pkg/lda"
)

// logSink writes Dovecot's log lines through pkg/lda's logger; it can be
// replaced on reload.
type logSink struct {
	mu sync.Mutex
	l  *lda.Logger
}

func (s *logSink) set(l *lda.Logger) {
	s.mu.Lock()
	old := s.l
	s.l = l
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// logf writes one line with prefix ("imap-login: ") at level.
func (s *logSink) logf(prefix, level, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l != nil {
		s.l.Logf(prefix, level, format, args...)
	}
}

// line writes text whose level may lead it ("Error: ..."), as the mail
// process and the registered listeners' servers report it.
func (s *logSink) line(prefix, text string) {
	level := "Info"
	for _, l := range []string{"Error", "Warning", "Fatal", "Panic", "Debug"} {
		if rest, ok := strings.CutPrefix(text, l+": "); ok {
			level, text = l, rest
			break
		}
	}
	s.logf(prefix, level, "%s", text)
}

// sessionID returns a fresh session id as Dovecot's login processes make
// them: 12 bytes in base64, 16 characters.
func sessionID() string {
	var b [12]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// loginFields formats the fields Dovecot's login_log_format_elements
// give: user=<>, method=, rip=, lip=, mpid=, TLS or secured, session=<>;
// the empty ones are left out, but user.
func loginFields(user, method, rip, lip string, mpid int, transport, session string) string {
	f := []string{"user=<" + user + ">"}
	if method != "" {
		f = append(f, "method="+method)
	}
	f = append(f, "rip="+rip, "lip="+lip)
	if mpid > 0 {
		f = append(f, fmt.Sprintf("mpid=%d", mpid))
	}
	if transport != "" {
		f = append(f, transport)
	}
	f = append(f, "session=<"+session+">")
	return strings.Join(f, ", ")
}
