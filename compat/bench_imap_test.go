package compat

// The IMAP benchmarks (go test ./compat -run '^$' -bench IMAP -benchtime
// 1x): Debian's Dovecot 2.3 (the oracle) on 127.0.0.6 and postdove's
// dovecot on 127.0.0.5 in the same run, each with its own base_dir and a
// copy of the same Maildirs for the same passwd-file users, driven by the
// raw-protocol client of imapload_test.go. Each sub-benchmark measures
// Dovecot first, then postdove, and reports both figures and
// postdove/dovecot: above 1 is better for rates, below 1 for times,
// latencies and memory.
//
// Each measurement is made once, whatever b.N (each takes over a second,
// so b.N is 1).

import (
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
)

const (
	benchBigMessages   = 100000 // the INBOX opened cold and warm
	benchSmallMessages = 1000   // each bench user's INBOX
	benchIdleMessages  = 100    // each idle user's INBOX
	benchUsers         = 8      // bench0..7 and idle0..7
	benchPassword      = "benchpw"
	benchLogins        = 2000
	benchLoginClients  = 16
	benchAppends       = 2000 // by benchUsers clients, one per user
	benchMixClients    = 100
	benchMixRounds     = 20
	benchIdleDefault   = 10000 // POSTDOVE_BENCH_IDLE overrides
)

// benchIdleConns is how many IDLE connections the memory benchmark opens.
func benchIdleConns() int {
	if n, err := strconv.Atoi(os.Getenv("POSTDOVE_BENCH_IDLE")); err == nil && n > 0 {
		return n
	}
	return benchIdleDefault
}

// imapServer is one of the two systems under test.
type imapServer struct {
	name string // "dovecot" or "postdove"
	addr string // host:port of its imap listener
	run  string // its base_dir
	log  string
}

// masterPID is the server's master process, from base_dir/master.pid.
func (s *imapServer) masterPID() int {
	b, _ := os.ReadFile(filepath.Join(s.run, "master.pid"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// benchUser is a passwd-file user: name, uid and how many messages its
// INBOX starts with.
type benchUser struct {
	name string
	uid  int
	msgs int
}

func benchUserList() []benchUser {
	users := []benchUser{{"big", 61000, benchBigMessages}}
	for i := 0; i < benchUsers; i++ {
		users = append(users, benchUser{fmt.Sprintf("bench%d", i), 61001 + i, benchSmallMessages},
			benchUser{fmt.Sprintf("idle%d", i), 61101 + i, benchIdleMessages})
	}
	return users
}

// benchMailMessage is message i of a Maildir: small, with the headers
// an ENVELOPE is made of.
func benchMailMessage(i int, nl string) string {
	return strings.Join([]string{
		"Return-Path: <sender" + strconv.Itoa(i%50) + "@example.org>",
		"From: Sender " + strconv.Itoa(i%50) + " <sender" + strconv.Itoa(i%50) + "@example.org>",
		"To: Bench User <user@example.com>",
		"Cc: other@example.net",
		"Subject: message number " + strconv.Itoa(i),
		"Date: Mon, 2 Jan 2006 15:04:05 +0000",
		"Message-ID: <" + strconv.Itoa(i) + ".bench@example.org>",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=us-ascii",
		"",
		"Hello, this is message " + strconv.Itoa(i) + " of the benchmark.",
		"It is short.",
		"",
	}, nl)
}

// writeBenchMaildir writes a Maildir of n messages under home, owned by
// uid: the files go to cur/ with their sizes in the names (S= and W=)
// and every third one seen, as a mailbox moved from another server has
// them, with no index of either server.
func writeBenchMaildir(home string, uid, n int) error {
	md := filepath.Join(home, "Maildir")
	for _, d := range []string{home, md, md + "/cur", md + "/new", md + "/tmp"} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
		if err := os.Chown(d, uid, uid); err != nil {
			return err
		}
	}
	for i := 0; i < n; i++ {
		msg := benchMailMessage(i, "\n")
		flags := ""
		if i%3 == 0 {
			flags = "S"
		}
		name := fmt.Sprintf("%d.M%dP%d.bench,S=%d,W=%d:2,%s", 1136214245+i, i, 4242, len(msg), len(msg)+strings.Count(msg, "\n"), flags)
		p := filepath.Join(md, "cur", name)
		if err := os.WriteFile(p, []byte(msg), 0o600); err != nil {
			return err
		}
		if err := os.Chown(p, uid, uid); err != nil {
			return err
		}
	}
	return nil
}

// writeBenchHomes writes every user's home under dir/home and the
// passwd-file dir/users, and returns its path.
func writeBenchHomes(dir string) (string, error) {
	if err := os.Mkdir(filepath.Join(dir, "home"), 0o755); err != nil {
		return "", err
	}
	var pw strings.Builder
	for _, u := range benchUserList() {
		home := filepath.Join(dir, "home", u.name)
		if err := writeBenchMaildir(home, u.uid, u.msgs); err != nil {
			return "", err
		}
		fmt.Fprintf(&pw, "%s:{PLAIN}%s:%d:%d::%s\n", u.name, benchPassword, u.uid, u.uid, home)
	}
	users := filepath.Join(dir, "users")
	return users, os.WriteFile(users, []byte(pw.String()), 0o644)
}

// benchIMAPConf is what both servers' dovecot.conf hold: IMAP on ip:port
// with plaintext LOGIN, the users of users, and the limits raised for
// the connections the benchmarks open. Dovecot's imap service keeps its
// stock client_limit = 1 (a process per connection) and imap-login its
// high-security service_count = 1; only the process and client limits
// are raised.
func benchIMAPConf(ip string, port int, users string) string {
	procs := benchIdleConns() + 500
	return fmt.Sprintf(`protocols = imap
listen = %[1]s
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
mail_max_userip_connections = %[4]d
default_process_limit = %[4]d
default_client_limit = %[5]d
passdb {
  driver = passwd-file
  args = %[3]s
}
userdb {
  driver = passwd-file
  args = %[3]s
}
service imap-login {
  inet_listener imap {
    port = %[2]d
  }
  inet_listener imaps {
    port = 0
  }
}
service imap {
  process_limit = %[4]d
}
`, ip, port, users, procs, 2*procs+1000)
}

// startBenchDovecot starts the oracle's Dovecot on 127.0.0.6 in dir,
// whose users file and homes writeBenchHomes wrote.
func startBenchDovecot(b *testing.B, o *oracle.Oracle, dir, users string) *imapServer {
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		b.Fatal(err)
	}
	port := oracle.FreePort(b, "127.0.0.6")
	conf := writeConf(b, dir, authServerConf(o, dir, benchIMAPConf("127.0.0.6", port, users)))
	// imap-login opens /usr/lib/dovecot/modules: the oracle's, overlaid.
	oracleDovecotMaster(b, o, conf, run, true)
	s := &imapServer{name: "dovecot", addr: net.JoinHostPort("127.0.0.6", strconv.Itoa(port)), run: run, log: filepath.Join(dir, "dovecot.log")}
	waitIMAP(b, s)
	return s
}

// startBenchPostdove starts bin/dovecot -F on 127.0.0.5 likewise.
func startBenchPostdove(b *testing.B, dir, users string) *imapServer {
	bin := oracle.Postdove(b, "dovecot")
	port := oracle.FreePort(b, "127.0.0.5")
	s := &imapServer{name: "postdove", addr: net.JoinHostPort("127.0.0.5", strconv.Itoa(port)),
		run: filepath.Join(dir, "run"), log: filepath.Join(dir, "dovecot.log")}
	conf := writeConf(b, dir, fmt.Sprintf("ssl = no\nbase_dir = %s\nlog_path = %s\n", s.run, s.log)+
		benchIMAPConf("127.0.0.5", port, users))
	cmd := exec.Command(bin, "-c", conf, "-F")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	waitIMAP(b, s)
	return s
}

// waitIMAP waits until s greets.
func waitIMAP(b *testing.B, s *imapServer) {
	for i := 0; ; i++ {
		l, err := dialIMAP("", s.addr)
		if err == nil {
			l.Close()
			return
		}
		if i == 100 {
			log, _ := os.ReadFile(s.log)
			b.Fatalf("%s did not start on %s: %v\n%s", s.name, s.addr, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// workers runs f(0) ... f(n-1) at once and returns the first error.
func workers(n int, f func(w int) error) error {
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if err := f(w); err != nil {
				errs <- err
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// loginAs connects to s from src and logs in as user.
func loginAs(s *imapServer, src, user string) (*imapLoad, error) {
	l, err := dialIMAP(src, s.addr)
	if err != nil {
		return nil, err
	}
	if err := l.login(user, benchPassword); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// report reports a figure of both systems and postdove/dovecot.
func report(b *testing.B, unit string, dovecot, postdove float64) {
	b.ReportMetric(dovecot, "dovecot_"+unit)
	b.ReportMetric(postdove, "postdove_"+unit)
	b.ReportMetric(postdove/dovecot, "postdove/dovecot")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIMAP starts both servers once and runs the five measurements
// of issue 10 against them.
func BenchmarkIMAP(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (both masters, users' uids)")
	}
	// This client and the servers' processes hold a descriptor per
	// connection: the soft limit goes up to the hard one (which only
	// CAP_SYS_RESOURCE could raise), for the servers too (setting it
	// here stops Go from restoring the original soft limit in children).
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	o := oracle.Get(b)
	// The same users and Maildirs for each, written at once.
	var dirs, users [2]string
	var errs [2]error
	var setup sync.WaitGroup
	for i := range dirs {
		dirs[i] = publicTempDir(b)
		setup.Add(1)
		go func(i int) { defer setup.Done(); users[i], errs[i] = writeBenchHomes(dirs[i]) }(i)
	}
	setup.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	servers := [2]*imapServer{startBenchDovecot(b, o, dirs[0], users[0]), startBenchPostdove(b, dirs[1], users[1])}
	both := func(b *testing.B, unit string, measure func(*imapServer) (float64, error)) {
		var v [2]float64
		for i, s := range servers {
			var err error
			if v[i], err = measure(s); err != nil {
				b.Fatalf("%s: %v", s.name, err)
			}
		}
		report(b, unit, v[0], v[1])
	}
	b.Run("Logins", func(b *testing.B) { both(b, "logins/s", benchLoginRate) })
	b.Run("OpenCold", func(b *testing.B) {
		both(b, "s", func(s *imapServer) (float64, error) { return benchOpenBig(b, s, "cold") })
	})
	b.Run("OpenWarm", func(b *testing.B) {
		both(b, "s", func(s *imapServer) (float64, error) { return benchOpenBig(b, s, "warm") })
	})
	b.Run("Append", func(b *testing.B) { both(b, "appends/s", benchAppendRate) })
	b.Run("MixP99", func(b *testing.B) {
		both(b, "p99_ms", func(s *imapServer) (float64, error) { return benchMixP99(b, s) })
	})
	b.Run("IdleMemory", func(b *testing.B) {
		both(b, "RSS_KiB/conn", func(s *imapServer) (float64, error) { return benchIdleMemory(b, s) })
	})
}

// benchLoginRate: benchLoginClients clients each connect, LOGIN and
// LOGOUT in turn until benchLogins logins are done; logins per second.
func benchLoginRate(s *imapServer) (float64, error) {
	per := benchLogins / benchLoginClients
	t0 := time.Now()
	err := workers(benchLoginClients, func(w int) error {
		for i := 0; i < per; i++ {
			l, err := loginAs(s, "", fmt.Sprintf("bench%d", (w+i)%benchUsers))
			if err != nil {
				return err
			}
			if err := l.logout(); err != nil {
				return err
			}
		}
		return nil
	})
	return float64(per*benchLoginClients) / time.Since(t0).Seconds(), err
}

// benchOpenBig logs in as big, SELECTs INBOX and FETCHes 1:* (FLAGS
// ENVELOPE), and returns the seconds from SELECT to the FETCH's OK. The
// first call on a server is cold (no index yet), the second warm.
func benchOpenBig(b *testing.B, s *imapServer, what string) (float64, error) {
	l, err := loginAs(s, "", "big")
	if err != nil {
		return 0, err
	}
	defer l.logout()
	t0 := time.Now()
	if _, err := l.cmd("SELECT INBOX"); err != nil {
		return 0, err
	}
	t1 := time.Now()
	n, err := l.cmd("FETCH 1:* (FLAGS ENVELOPE)")
	if err != nil {
		return 0, err
	}
	t2 := time.Now()
	if n < benchBigMessages {
		return 0, fmt.Errorf("FETCH 1:* gave %d responses, want %d", n, benchBigMessages)
	}
	b.Logf("%s %s: SELECT %.3fs, FETCH %.3fs", s.name, what, t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds())
	return t2.Sub(t0).Seconds(), nil
}

// benchAppendRate: one client per bench user APPENDs to its INBOX;
// APPENDs per second over benchAppends.
func benchAppendRate(s *imapServer) (float64, error) {
	per := benchAppends / benchUsers
	conns := make([]*imapLoad, benchUsers)
	for i := range conns {
		var err error
		if conns[i], err = loginAs(s, "", fmt.Sprintf("bench%d", i)); err != nil {
			return 0, err
		}
		defer conns[i].logout()
	}
	t0 := time.Now()
	err := workers(benchUsers, func(w int) error {
		for i := 0; i < per; i++ {
			if err := conns[w].appendMsg("INBOX", benchMailMessage(benchSmallMessages+w*per+i, "\r\n")); err != nil {
				return err
			}
		}
		return nil
	})
	return float64(per*benchUsers) / time.Since(t0).Seconds(), err
}

// benchMixP99: benchMixClients clients, logged in over the bench users,
// each run benchMixRounds of SELECT INBOX, FETCH of 10 messages (FLAGS
// ENVELOPE) and NOOP at once; the 99th percentile of the commands'
// latencies, in milliseconds.
func benchMixP99(b *testing.B, s *imapServer) (float64, error) {
	conns := make([]*imapLoad, benchMixClients)
	err := workers(benchMixClients, func(w int) error {
		var err error
		conns[w], err = loginAs(s, "", fmt.Sprintf("bench%d", w%benchUsers))
		return err
	})
	defer func() {
		for _, l := range conns {
			if l != nil {
				l.logout()
			}
		}
	}()
	if err != nil {
		return 0, err
	}
	lat := make([][]time.Duration, benchMixClients)
	err = workers(benchMixClients, func(w int) error {
		rnd := rand.New(rand.NewSource(int64(w)))
		for i := 0; i < benchMixRounds; i++ {
			first := 1 + rnd.Intn(benchSmallMessages-10)
			for _, c := range []string{"SELECT INBOX", fmt.Sprintf("FETCH %d:%d (FLAGS ENVELOPE)", first, first+9), "NOOP"} {
				t0 := time.Now()
				if _, err := conns[w].cmd(c); err != nil {
					return err
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}
		return nil
	})
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) == 0 {
		return 0, err
	}
	pct := func(p float64) float64 { return all[int(p*float64(len(all)-1))].Seconds() * 1000 }
	b.Logf("%s: %d commands, p50 %.2fms, p90 %.2fms, p99 %.2fms, max %.2fms", s.name, len(all), pct(.5), pct(.9), pct(.99), pct(1))
	return pct(.99), err
}

// memoryGrowth is what the processes of after hold beyond what the same
// processes held before (a process that started since counts in full;
// one that ended, as a lingering mail process may, does not count).
func memoryGrowth(before, after map[int]procMem) (rss, pss int) {
	for pid, m := range after {
		rss += m.rss - before[pid].rss
		pss += m.pss - before[pid].pss
	}
	return
}

// benchIdleMemory opens benchIdleConns() connections over the idle
// users (whose INBOXes no earlier benchmark opened), from 127.0.0.10 to
// 127.0.0.13, each logged in with INBOX selected and in IDLE, and
// returns the growth of the resident memory of the server's processes
// per connection in KiB.
func benchIdleMemory(b *testing.B, s *imapServer) (float64, error) {
	n := benchIdleConns()
	master := s.masterPID()
	if master == 0 {
		return 0, fmt.Errorf("no master.pid in %s", s.run)
	}
	before := serverMemory(master)
	conns := make([]*imapLoad, n)
	defer func() {
		for _, l := range conns {
			if l != nil {
				l.Close()
			}
		}
	}()
	const dialers = 32
	t0 := time.Now()
	err := workers(dialers, func(w int) error {
		for i := w; i < n; i += dialers {
			l, err := loginAs(s, fmt.Sprintf("127.0.0.%d", 10+i%4), fmt.Sprintf("idle%d", i%benchUsers))
			if err != nil {
				return fmt.Errorf("connection %d: %v", i, err)
			}
			conns[i] = l
			if _, err := l.cmd("SELECT INBOX"); err != nil {
				return err
			}
			if err := l.idle(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	opened := time.Since(t0)
	time.Sleep(3 * time.Second)
	after := serverMemory(master)
	rss, pss := memoryGrowth(before, after)
	b.Logf("%s: %d IDLE connections opened in %.1fs; %d processes (were %d); RSS +%d KiB (%.1f KiB/conn), PSS +%d KiB (%.1f KiB/conn)",
		s.name, n, opened.Seconds(), len(after), len(before), rss, float64(rss)/float64(n), pss, float64(pss)/float64(n))
	b.ReportMetric(float64(pss)/float64(n), s.name+"_PSS_KiB/conn")
	return float64(rss) / float64(n), nil
}
