package lda

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// msg4k is a 4 KiB message.
var msg4k = "From: a@example.org\nTo: b@example.org\nSubject: benchmark\nMessage-ID: <bench@example.org>\n\n" +
	strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 62)

// BenchmarkDeliver1000 execs 1,000 deliveries of 4 KiB into one Maildir,
// as Postfix's mailbox_command runs an LDA once per message, with ours
// and with Debian's dovecot-lda (through doveconf -e, as an installed one
// re-executes itself), both as nobody in the same run. Compare their
// deliveries/s.
func BenchmarkDeliver1000(b *testing.B) {
	for _, which := range []string{"ours", "dovecot"} {
		b.Run(which, func(b *testing.B) {
			e := newEnv(b, "")
			// The message comes from a file and the output goes to
			// /dev/null, so the benchmark starts no copying goroutines
			// and measures the deliverers.
			msgFile := filepath.Join(e.dir, "msg")
			if err := os.WriteFile(msgFile, []byte(msg4k), 0o644); err != nil {
				b.Fatal(err)
			}
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				home := e.home(which + string(rune('a'+n%26)) + strings.Repeat("x", n/26))
				b.StartTimer()
				for i := 0; i < 1000; i++ {
					f, err := os.Open(msgFile)
					if err != nil {
						b.Fatal(err)
					}
					cmd := e.command(which, home)
					cmd.Stdin = f
					err = cmd.Run()
					f.Close()
					if err != nil {
						b.Fatalf("%s: %v; log:\n%s", which, err, readFile(b, e.log))
					}
				}
				b.StopTimer()
				if got := oracle.CountFiles(filepath.Join(home, "Maildir", "new")); got != 1000 {
					b.Fatalf("%d messages delivered, want 1000", got)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
