package compat

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// The delivery benchmark: sendmail to local Maildir delivery, end to end.
const (
	benchDeliveryMessages   = 1000
	benchDeliverySize       = 4096
	benchDeliverySubmitters = 8
	benchDeliveryTimeout    = 5 * time.Minute
)

// benchDeliveryMessage is message i: headers and a body of printable
// lines, exactly benchDeliverySize bytes.
func benchDeliveryMessage(i int, to string) string {
	head := fmt.Sprintf("From: root\nTo: %s\nSubject: benchmark message %d\n\n", to, i)
	var body strings.Builder
	line := strings.Repeat("0123456789abcdef", 4) + "\n" // 65 bytes
	for body.Len()+len(head)+len(line) <= benchDeliverySize {
		body.WriteString(line)
	}
	pad := benchDeliverySize - len(head) - body.Len()
	if pad > 0 {
		body.WriteString(strings.Repeat("x", pad-1) + "\n")
	}
	return head + body.String()
}

// benchDeliveryRun starts one system, submits the messages with a pool of
// concurrent sendmail invocations and returns the time from the first
// submission until the last message is in ~user/Maildir/new. Only that
// span is timed.
func benchDeliveryRun(b *testing.B, start func(testing.TB, oracle.PostfixOptions) *oracle.Instance) (time.Duration, error) {
	b.StopTimer()
	inst := start(b, oracle.PostfixOptions{MainCF: "home_mailbox = Maildir/\n"})
	defer inst.Stop()
	u := oracle.AddUser(b, inst.HomeDir, "bench")
	msgs := make([]string, benchDeliveryMessages)
	for i := range msgs {
		msgs[i] = benchDeliveryMessage(i, u.Name)
	}
	t0 := time.Now()
	b.StartTimer()
	failures := benchSubmit(inst, msgs, u.Name)
	n := benchDeliveryMessages
	if len(failures) > 0 {
		n -= len(failures)
	}
	got := oracle.WaitFiles(u.Maildir(), n, benchDeliveryTimeout)
	elapsed := time.Since(t0)
	b.StopTimer()
	if len(failures) > 0 {
		return elapsed, fmt.Errorf("%s: %d sendmail failures, first: %s", inst.System, len(failures), failures[0])
	}
	if got < n {
		log := inst.ReadMaillog()
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		return elapsed, fmt.Errorf("%s: %d of %d messages in %s after %v; maillog ends:\n%s", inst.System, got, n, u.Maildir(), benchDeliveryTimeout, log)
	}
	return elapsed, nil
}

// benchSubmit submits msgs to rcpt with benchDeliverySubmitters
// concurrent sendmail callers and returns the failures.
func benchSubmit(inst *oracle.Instance, msgs []string, rcpt string) []string {
	work := make(chan int)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for w := 0; w < benchDeliverySubmitters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				res := oracle.Run(inst.Sendmail("-oi", rcpt), msgs[i])
				if res.Code != 0 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("message %d: exit %d: %s", i, res.Code, strings.TrimSpace(res.Stderr)))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range msgs {
		work <- i
	}
	close(work)
	wg.Wait()
	return failures
}

// BenchmarkDelivery measures sendmail -> pickup -> cleanup -> qmgr ->
// local -> ~/Maildir/new for 1,000 messages of 4 KiB submitted by 8
// concurrent sendmail callers, with the real Postfix 3.7 and with
// postdove in the same run, and reports messages per second for both and
// their ratio (postdove / Postfix; above 1 is faster than Postfix).
func BenchmarkDelivery(b *testing.B) {
	benchSideBySide(b, benchDeliveryMessages, benchDeliveryRun)
}

// benchSideBySide runs one measured run with the real Postfix and one with
// postdove per iteration, each delivering msgs messages, and reports both
// rates and their ratio (postdove / Postfix; above 1 is faster).
func benchSideBySide(b *testing.B, msgs int, run func(*testing.B, func(testing.TB, oracle.PostfixOptions) *oracle.Instance) (time.Duration, error)) {
	var theirs, ours time.Duration
	var oursErr error
	for i := 0; i < b.N; i++ {
		d, err := run(b, oracle.StartPostfix)
		if err != nil {
			b.Fatal(err)
		}
		theirs += d
		if oursErr != nil {
			continue
		}
		d, err = run(b, oracle.StartPostdove)
		if err != nil {
			oursErr = err
			continue
		}
		ours += d
	}
	total := float64(msgs * b.N)
	b.ReportMetric(total/theirs.Seconds(), "msgs/s_postfix")
	if oursErr != nil {
		b.Error(oursErr)
		return
	}
	b.ReportMetric(total/ours.Seconds(), "msgs/s_postdove")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ratio")
}
