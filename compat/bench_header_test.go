package compat

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// benchHeaderMessage is a message whose X-Big: header has n continuation
// lines (6 bytes each: 300 KB for 50,000), far beyond header_size_limit.
func benchHeaderMessage(n int) string {
	return "Subject: big header\nX-Big: start\n" + strings.Repeat(" cont\n", n) + "X-After: after\n\nbody\n"
}

// benchHeaderSend submits one message with inst's sendmail and returns
// the time until it is in u's Maildir (want files there by then).
func benchHeaderSend(b *testing.B, inst *oracle.Instance, u oracle.User, msg string, want int) time.Duration {
	t0 := time.Now()
	if res := oracle.Run(inst.Sendmail("-oi", u.Name), msg); res.Code != 0 {
		b.Fatalf("%s sendmail: exit %d: %s", inst.System, res.Code, res.Stderr)
	}
	if got := oracle.WaitFiles(u.Maildir(), want, 5*time.Minute); got < want {
		b.Fatalf("%s: %d of %d messages delivered after 5 minutes", inst.System, got, want)
	}
	return time.Since(t0)
}

// BenchmarkHeaderContinuation submits messages whose header has 50,000,
// 100,000 and 200,000 continuation lines to the real Postfix 3.7 and to
// postdove (sendmail to a local user's Maildir) and reports the time
// from submission to delivery for each, per message: the time should
// grow at most linearly with the header's size.
func BenchmarkHeaderContinuation(b *testing.B) {
	opt := oracle.PostfixOptions{MainCF: runtimeMaildirCF}
	systems := []*oracle.Instance{oracle.StartPostfix(b, opt), oracle.StartPostdove(b, opt)}
	users := make([]oracle.User, len(systems))
	for i, inst := range systems {
		users[i] = oracle.AddUser(b, inst.HomeDir, "bhdr")
	}
	sent := make([]int, len(systems))
	for _, n := range []int{50000, 100000, 200000} {
		msg := benchHeaderMessage(n)
		b.Run(fmt.Sprintf("lines=%d", n), func(b *testing.B) {
			var took [2]time.Duration
			for i := 0; i < b.N; i++ {
				for s, inst := range systems {
					sent[s]++
					took[s] += benchHeaderSend(b, inst, users[s], msg, sent[s])
				}
			}
			b.ReportMetric(took[0].Seconds()/float64(b.N), "s/msg_postfix")
			b.ReportMetric(took[1].Seconds()/float64(b.N), "s/msg_postdove")
		})
	}
}
