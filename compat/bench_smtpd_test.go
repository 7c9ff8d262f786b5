package compat

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// The smtpd benchmarks: Postfix's smtp-source as the load on each
// system's smtpd, the real Postfix on 127.0.0.3 and postdove on
// 127.0.0.4, in the same run.
const (
	benchSMTPDSessions = 20
	benchSMTPDSize     = 4096
	benchSMTPDIdle     = 1000
	benchSMTPDTimeout  = 10 * time.Minute
)

// benchSMTPDMessages is how many messages the throughput benchmark
// sends: 10,000, or $POSTDOVE_BENCH_MESSAGES for a shorter run.
var benchSMTPDMessages = func() int {
	if n, err := strconv.Atoi(os.Getenv("POSTDOVE_BENCH_MESSAGES")); err == nil && n > 0 {
		return n
	}
	return 10000
}()

// benchSMTPDSystem starts one system with an smtpd service of maxproc
// processes on a free port of ip, mynetworks = 127.0.0.0/8 and
// home_mailbox = Maildir/, and returns it and the service's address.
func benchSMTPDSystem(b testing.TB, start func(testing.TB, oracle.PostfixOptions) *oracle.Instance, ip string, maxproc int) (*oracle.Instance, string) {
	b.Helper()
	addr := net.JoinHostPort(ip, strconv.Itoa(oracle.FreePort(b, ip)))
	inst := start(b, oracle.PostfixOptions{
		MainCF:   "mynetworks = 127.0.0.0/8\nhome_mailbox = Maildir/\n",
		MasterCF: fmt.Sprintf("%s inet n - n - %d smtpd\n", addr, maxproc),
	})
	oracle.WaitListening(b, addr)
	return inst, addr
}

// benchSMTPDRun sends the messages with smtp-source to a user of one
// system and returns the time until smtp-source ends (accepted) and until
// every message is in the user's Maildir/new (delivered).
func benchSMTPDRun(b *testing.B, start func(testing.TB, oracle.PostfixOptions) *oracle.Instance, ip string) (accepted, delivered time.Duration, err error) {
	b.StopTimer()
	inst, addr := benchSMTPDSystem(b, start, ip, 100)
	defer inst.Stop()
	u := oracle.AddUser(b, inst.HomeDir, "bench")
	cmd := oracle.Get(b).Command("smtp-source", "-s", strconv.Itoa(benchSMTPDSessions),
		"-m", strconv.Itoa(benchSMTPDMessages), "-l", strconv.Itoa(benchSMTPDSize),
		"-M", "client.example.test", "-f", "bench@client.example.test", "-t", u.Name+"@mail.example.test", addr)
	t0 := time.Now()
	b.StartTimer()
	res := oracle.RunLimit(cmd, "", benchSMTPDTimeout)
	accepted = time.Since(t0)
	if res.Code != 0 {
		b.StopTimer()
		return accepted, 0, fmt.Errorf("%s: smtp-source: exit %d: %s", inst.System, res.Code, res.Stderr)
	}
	got := oracle.WaitFiles(u.Maildir(), benchSMTPDMessages, benchSMTPDTimeout)
	delivered = time.Since(t0)
	b.StopTimer()
	if got < benchSMTPDMessages {
		log := inst.ReadMaillog()
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		return accepted, delivered, fmt.Errorf("%s: %d of %d messages in %s; maillog ends:\n%s", inst.System, got, benchSMTPDMessages, u.Maildir(), log)
	}
	return accepted, delivered, nil
}

// BenchmarkSMTPDThroughput: smtp-source with 20 parallel sessions sends
// 10,000 messages of 4 KiB (a new connection for each, smtp-source's
// default) to a Maildir user. It reports messages accepted per second
// (until smtp-source ends) and delivered per second (until all are in
// Maildir/new) for both systems, and the ratios postdove / Postfix (above
// 1 is faster than Postfix).
func BenchmarkSMTPDThroughput(b *testing.B) {
	var pfAcc, pfDel, pdAcc, pdDel time.Duration
	var pdErr error
	for i := 0; i < b.N; i++ {
		acc, del, err := benchSMTPDRun(b, oracle.StartPostfix, "127.0.0.3")
		if err != nil {
			b.Fatal(err)
		}
		pfAcc, pfDel = pfAcc+acc, pfDel+del
		if pdErr != nil {
			continue
		}
		acc, del, pdErr = benchSMTPDRun(b, oracle.StartPostdove, "127.0.0.4")
		pdAcc, pdDel = pdAcc+acc, pdDel+del
	}
	n := float64(benchSMTPDMessages * b.N)
	b.ReportMetric(n/pfAcc.Seconds(), "accepted/s_postfix")
	b.ReportMetric(n/pfDel.Seconds(), "delivered/s_postfix")
	if pdErr != nil {
		b.Error(pdErr)
		return
	}
	b.ReportMetric(n/pdAcc.Seconds(), "accepted/s_postdove")
	b.ReportMetric(n/pdDel.Seconds(), "delivered/s_postdove")
	b.ReportMetric(pfAcc.Seconds()/pdAcc.Seconds(), "accepted_ratio")
	b.ReportMetric(pfDel.Seconds()/pdDel.Seconds(), "delivered_ratio")
}

// benchIdleSessions opens n SMTP sessions to addr, each having read the
// banner and the reply to EHLO, and returns them open.
func benchIdleSessions(b *testing.B, addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan bool, 50)
	for i := range conns {
		wg.Add(1)
		sem <- true
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			c, err := net.DialTimeout("tcp", addr, time.Minute)
			if err != nil {
				errs[i] = err
				return
			}
			conns[i] = c
			c.SetDeadline(time.Now().Add(time.Minute))
			r := bufio.NewReader(c)
			if _, err := r.ReadString('\n'); err != nil {
				errs[i] = fmt.Errorf("banner: %v", err)
				return
			}
			fmt.Fprintf(c, "EHLO client.example.test\r\n")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					errs[i] = fmt.Errorf("EHLO: %v", err)
					return
				}
				if !strings.HasPrefix(l, "250") {
					errs[i] = fmt.Errorf("EHLO: %q", l)
					return
				}
				if len(l) > 3 && l[3] == ' ' {
					break
				}
			}
			c.SetDeadline(time.Time{})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return conns, fmt.Errorf("session %d: %v", i, err)
		}
	}
	return conns, nil
}

// systemMemory sums the resident memory (Rss) of a process and all its
// descendants, and their proportional share (Pss), in bytes.
func systemMemory(root int) (rss, pss int64, procs int) {
	r, p, n := treeMemory(root)
	return int64(r) * 1024, int64(p) * 1024, n
}

// benchIdleRun starts one system with maxproc 1000, holds 1,000 idle
// sessions open on it and returns its memory then.
func benchIdleRun(b *testing.B, start func(testing.TB, oracle.PostfixOptions) *oracle.Instance, ip string) (rss, pss int64, procs int, err error) {
	inst, addr := benchSMTPDSystem(b, start, ip, benchSMTPDIdle)
	defer inst.Stop()
	conns, err := benchIdleSessions(b, addr, benchSMTPDIdle)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %v", inst.System, err)
	}
	time.Sleep(time.Second)
	rss, pss, procs = systemMemory(inst.MasterPID())
	return rss, pss, procs, nil
}

// BenchmarkSMTPDIdleMemory: 1,000 SMTP sessions open at once, each idle
// after EHLO, on each system (smtpd maxproc 1000 on both): the resident
// memory of the whole mail system (the master and every process under
// it), the sum of their RSS in MiB, their proportional set size (Pss,
// shared pages counted once), the process count, and the ratio postdove
// / Postfix of the RSS sums (below 1 is smaller).
func BenchmarkSMTPDIdleMemory(b *testing.B) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 4*benchSMTPDIdle {
		lim.Cur = max(lim.Max, 4*benchSMTPDIdle)
		lim.Max = lim.Cur
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			b.Fatalf("RLIMIT_NOFILE: %v", err)
		}
	}
	const mib = 1 << 20
	for i := 0; i < b.N; i++ {
		pfRSS, pfPSS, pfProcs, err := benchIdleRun(b, oracle.StartPostfix, "127.0.0.3")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(pfRSS)/mib, "MiB_rss_postfix")
		b.ReportMetric(float64(pfPSS)/mib, "MiB_pss_postfix")
		b.ReportMetric(float64(pfProcs), "procs_postfix")
		pdRSS, pdPSS, pdProcs, err := benchIdleRun(b, oracle.StartPostdove, "127.0.0.4")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(pdRSS)/mib, "MiB_rss_postdove")
		b.ReportMetric(float64(pdPSS)/mib, "MiB_pss_postdove")
		b.ReportMetric(float64(pdProcs), "procs_postdove")
		b.ReportMetric(float64(pdRSS)/float64(pfRSS), "rss_ratio")
	}
}
