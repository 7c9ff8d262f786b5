package compat

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// idleConns is how many idle connections the memory benchmarks hold.
const idleConns = 1000

// BenchmarkDovecotIdleMemory measures what an idle IMAP connection costs
// the server: the sum of the resident memory (VmRSS, and Pss, which
// shares the shared pages out) of the master and every process below it,
// with idleConns connections open, less the same sum before, divided by
// idleConns. Pre-login: each connection has read the greeting. Logged
// in: each has logged in (Dovecot's imap processes; postdove's mail
// process needs pkg/imap, which is not in this build, so postdove has no
// logged-in figure yet). Dovecot runs as configured by the stock tree
// (one imap-login process per connection), and in its high-performance
// login mode (service_count = 0), with the limits raised for idleConns
// clients. Run with -benchtime 1x.
func BenchmarkDovecotIdleMemory(b *testing.B) {
	limits := fmt.Sprintf("default_process_limit = %[1]d\ndefault_client_limit = %[1]d\nmail_max_userip_connections = %[1]d\nssl = no\n", 2*idleConns+100)
	perf := "service imap-login {\n  service_count = 0\n  process_min_avail = 2\n}\n"
	for _, c := range []struct {
		name, edits string
		login       bool
	}{
		{"prelogin", limits, false},
		{"prelogin/login-service_count=0", limits + perf, false},
		{"loggedin", limits, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			for _, d := range startDovecots(b, c.edits) {
				if c.login && d.name == "postdove" {
					continue
				}
				b.Run(d.name, func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						rss, pss := d.idleCost(b, c.login)
						b.ReportMetric(rss, "KiB-RSS/conn")
						b.ReportMetric(pss, "KiB-PSS/conn")
					}
				})
			}
		})
	}
}

// idleCost opens idleConns connections to d, logged in or not, and
// returns the memory they added per connection, in KiB.
func (d *dovecotServer) idleCost(b *testing.B, login bool) (rss, pss float64) {
	b.Helper()
	master := d.masterPID(b)
	rss0, pss0, _ := treeMemory(master)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", d.ports["imap"])
	for i := 0; i < idleConns; i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			b.Fatalf("%s: connection %d: %v", d.name, i, err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(c)
		if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK ") {
			b.Fatalf("%s: connection %d: greeting %q %v", d.name, i, l, err)
		}
		if login {
			fmt.Fprintf(c, "a LOGIN %s %s\r\n", dovecotUser, dovecotPass)
			for {
				l, err := r.ReadString('\n')
				if err != nil || strings.HasPrefix(l, "a NO") || strings.HasPrefix(l, "a BAD") || strings.HasPrefix(l, "* BYE") {
					log, _ := os.ReadFile(d.log)
					b.Fatalf("%s: connection %d: login: %q %v\n%s", d.name, i, l, err, log)
				}
				if strings.HasPrefix(l, "a OK") {
					break
				}
			}
		}
	}
	// Let the processes settle.
	time.Sleep(2 * time.Second)
	rss1, pss1, procs := treeMemory(master)
	b.Logf("%s: %d processes; RSS %d -> %d KiB, PSS %d -> %d KiB", d.name, procs, rss0, rss1, pss0, pss1)
	return float64(rss1-rss0) / idleConns, float64(pss1-pss0) / idleConns
}

func (d *dovecotServer) masterPID(b testing.TB) int {
	b.Helper()
	s, err := os.ReadFile(filepath.Join(d.dir, "run", "master.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(s)))
	if err != nil {
		b.Fatal(err)
	}
	return pid
}
