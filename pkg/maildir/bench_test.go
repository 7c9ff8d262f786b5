package maildir

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// msg4k is a 4 KiB message.
var msg4k = "From: a@example.org\nTo: b@example.org\nSubject: benchmark\n\n" +
	strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 63)

const deliveries = 1000

// BenchmarkDeliver1000 delivers 1,000 messages of 4 KiB into one Maildir:
// through the store in this process, through a program using the store
// exec'd per message (as mailbox_command runs an LDA), and through
// Debian's dovecot-lda exec'd per message (through doveconf -e, as an
// installed dovecot-lda re-executes itself through doveconf). The exec'd
// programs run as nobody. Compare the deliveries/s figures.
func BenchmarkDeliver1000(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		for n := 0; n < b.N; n++ {
			mb := inbox(b, testStore(b))
			for i := 0; i < deliveries; i++ {
				if _, _, err := mb.Deliver(strings.NewReader(msg4k), DeliverOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*deliveries)/b.Elapsed().Seconds(), "deliveries/s")
	})
	if os.Geteuid() != 0 {
		b.Skip("the exec'd deliverers run as nobody: needs root")
	}
	b.Run("store-exec", func(b *testing.B) {
		d := newDovecot(b)
		bin := filepath.Join(d.home, "deliver")
		if out, err := exec.Command("go", "build", "-o", bin, "./testdata/deliver").CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			dir := filepath.Join(d.home, fmt.Sprintf("Maildir%d", n))
			for i := 0; i < deliveries; i++ {
				runAsNobody(b, exec.Command(bin, dir))
			}
		}
		b.ReportMetric(float64(b.N*deliveries)/b.Elapsed().Seconds(), "deliveries/s")
	})
	b.Run("dovecot-lda-exec", func(b *testing.B) {
		d := newDovecot(b)
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			os.RemoveAll(filepath.Join(d.home, "Maildir"))
			for i := 0; i < deliveries; i++ {
				runAsNobody(b, d.ldaCmd())
			}
		}
		b.ReportMetric(float64(b.N*deliveries)/b.Elapsed().Seconds(), "deliveries/s")
	})
}

func runAsNobody(b *testing.B, cmd *exec.Cmd) {
	cmd.Stdin = strings.NewReader(msg4k)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", cmd.Path, err, out)
	}
}

// BenchmarkOpen100k opens (Syncs) a folder of 100,000 messages: cold,
// with no postdove.index (list new/ and cur/, read dovecot-uidlist, stat
// every file), warm, through the index, and after one new message.
func BenchmarkOpen100k(b *testing.B) {
	const count = 100000
	s := testStore(b)
	mb := inbox(b, s)
	t0 := time.Unix(1795757429, 0)
	for i := 0; i < count; i++ {
		sub, name := "new", fmt.Sprintf("%d.M%dP%d.vm,S=4096,W=4159", t0.Unix()+int64(i/1000), i%1000000, 4242)
		if i < count-100 { // read mail in cur/, the last 100 new
			sub, name = "cur", name+":2,S"
		}
		f, err := os.Create(filepath.Join(mb.Dir, sub, name))
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	st, err := mb.Sync()
	if err != nil || len(st.Messages) != count {
		b.Fatalf("%v", err)
	}
	age(b, mb.Dir)
	b.Run("cold", func(b *testing.B) {
		for n := 0; n < b.N; n++ {
			os.Remove(filepath.Join(mb.Dir, IndexName))
			if st, err := mb.Sync(); err != nil || len(st.Messages) != count {
				b.Fatal(err)
			}
		}
	})
	if x, err := readIndexFile(mb.Dir); err != nil || !x.fresh(mb.Dir) {
		b.Fatalf("no fresh index after the cold runs: %v", err)
	}
	b.Run("warm", func(b *testing.B) {
		for n := 0; n < b.N; n++ {
			if st, err := mb.Sync(); err != nil || len(st.Messages) != count {
				b.Fatal(err)
			}
		}
	})
	// One new message since the last Sync: the index is stale, the
	// files' sizes and dates come from it, the folders are listed again.
	have := count
	b.Run("new-mail", func(b *testing.B) {
		for n := 0; n < b.N; n++ {
			have++
			b.StopTimer()
			if _, _, err := mb.Deliver(strings.NewReader(msg4k), DeliverOptions{}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if st, err := mb.Sync(); err != nil || len(st.Messages) != have {
				b.Fatal(err)
			}
		}
	})
}
