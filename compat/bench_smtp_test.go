package compat

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// The smtp benchmark: sendmail to an smtp-sink on 127.0.0.2 through
// relayhost, end to end.
const (
	benchSMTPMessages = 10000
	benchSMTPTimeout  = 10 * time.Minute
)

// benchSMTPRun starts one system with relayhost = an smtp-sink of its
// own, submits the messages and returns the time from the first
// submission until the sink has received the last one.
func benchSMTPRun(b *testing.B, start func(testing.TB, oracle.PostfixOptions) *oracle.Instance) (time.Duration, error) {
	b.StopTimer()
	sink := oracle.StartSink(b, "127.0.0.2", "-c")
	inst := start(b, oracle.PostfixOptions{MainCF: "relayhost = " + sink.Hop() + "\n"})
	defer inst.Stop()
	const rcpt = "bench@example.org"
	msgs := make([]string, benchSMTPMessages)
	for i := range msgs {
		msgs[i] = benchDeliveryMessage(i, rcpt)
	}
	t0 := time.Now()
	b.StartTimer()
	failures := benchSubmit(inst, msgs, rcpt)
	if len(failures) > 0 {
		return time.Since(t0), fmt.Errorf("%s: %d sendmail failures, first: %s", inst.System, len(failures), failures[0])
	}
	want := fmt.Sprintf("mesg=%d", benchSMTPMessages)
	for end := time.Now().Add(benchSMTPTimeout); !strings.HasSuffix(sink.Counters(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			log := inst.ReadMaillog()
			if len(log) > 4000 {
				log = log[len(log)-4000:]
			}
			return time.Since(t0), fmt.Errorf("%s: sink counted %q after %v; maillog ends:\n%s", inst.System, sink.Counters(), benchSMTPTimeout, log)
		}
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	return elapsed, nil
}

// BenchmarkSMTPDelivery measures sendmail -> pickup -> cleanup -> qmgr ->
// smtp -> smtp-sink on 127.0.0.2 for 10,000 messages of 4 KiB submitted
// by 8 concurrent sendmail callers, with the real Postfix 3.7 and with
// postdove in the same run, and reports messages per second for both and
// their ratio (postdove / Postfix; above 1 is faster than Postfix).
func BenchmarkSMTPDelivery(b *testing.B) {
	benchSideBySide(b, benchSMTPMessages, benchSMTPRun)
}
