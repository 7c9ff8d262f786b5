package compat

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"postdove/compat/oracle"
	"postdove/pkg/handoff"
	"postdove/pkg/pop3"
)

// pop3Mail is the Maildir both sides start from: mail in new/ and cur/,
// a dot-started line, a last line without its newline.
var pop3Mail = map[string]string{
	"new/1000.M1P1.vm,S=37":  "Subject: a\nMessage-ID: <x1@y>\n\nhello\n",
	"new/1001.M1P2.vm":       "Subject: b\n\nbody two\nline\n",
	"cur/1002.M1P3.vm:2,S":   "Subject: c\n\n.dot\nx",
	"cur/1003.M1P4.vm:2,FS":  "Subject: d\nTo: x@y\n\nl1\nl2\nl3\n",
	"new/1004.M1P5.vm,S=12":  "Subject: e\n\n",
	"cur/1005.M1P6.vm:2,Tab": "Subject: f\n\nkeywords\n",
}

// oraclePOP3 runs the oracle's pop3 program on home's Maildir (as
// nobody, as the standalone "preauthenticated" session Dovecot's pop3
// runs from a shell) with the commands on its standard input; it returns
// what the server wrote and its log line.
func oraclePOP3(t *testing.T, o *oracle.Oracle, conf, home, input string) (string, string) {
	t.Helper()
	cmd := o.Doveconf("-c", conf, "-e", filepath.Join(o.Root, "usr/lib/dovecot/pop3"))
	cmd.Env = append(cmd.Env, "USER=alice", "HOME="+home)
	res := oracle.Run(cmd, input)
	if res.Code != 0 {
		t.Fatalf("oracle pop3: %+v", res)
	}
	_, log, _ := strings.Cut(strings.TrimSpace(res.Stderr), "Info: ")
	return res.Stdout, log
}

// postdovePOP3 runs pkg/pop3's session on home's Maildir with the same
// input; the "+OK Logged in." that the login side's handoff adds (and
// Dovecot's standalone pop3 does not write) is taken off.
func postdovePOP3(t *testing.T, home, input string) (string, string) {
	t.Helper()
	// A TCP connection, so that the client can end its side (CloseWrite)
	// and still read.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		pop3.NewServer().Serve(server, &handoff.Info{Protocol: "pop3", User: "alice", UID: 65534, GID: 65534, Home: home, Mail: "maildir:~/Maildir"},
			func(format string, args ...any) { log = append(log, fmt.Sprintf(format, args...)) })
	}()
	go func() {
		io.WriteString(client, input)
		client.(*net.TCPConn).CloseWrite()
	}()
	out, _ := io.ReadAll(client)
	client.Close()
	<-done
	return strings.TrimPrefix(string(out), "+OK Logged in.\r\n"), strings.Join(log, "\n")
}

// maildirFiles names the files in new/ and cur/.
func maildirFiles(root string) string {
	var out []string
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(root, sub))
		for _, e := range ents {
			out = append(out, sub+"/"+e.Name())
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestPOP3Dovecot: Dovecot's pop3 reads a Maildir first (it assigns the
// UIDs); the Maildir is copied, and the same POP3 session runs on
// Dovecot's copy and on postdove's. The replies byte for byte (UIDLs
// included: kept across the move), the logout line and the files left
// (new/ → cur/, \Seen after RETR, the DELEted gone) are the same.
func TestPOP3Dovecot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (the oracle's pop3 switches to nobody)")
	}
	o := oracle.Get(t)
	dir := publicTempDir(t)
	conf := writeConf(t, dir, "mail_location = maildir:~/Maildir\nlog_path = /dev/stderr\nssl = no\n"+
		"default_login_user = nobody\ndefault_internal_user = nobody\nmail_uid = 65534\nmail_gid = 65534\n")
	theirs, ours := filepath.Join(dir, "dovecot"), filepath.Join(dir, "postdove")
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(theirs, "Maildir", sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range pop3Mail {
		if err := os.WriteFile(filepath.Join(theirs, "Maildir", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Dovecot's keyword letters a and b.
	os.WriteFile(filepath.Join(theirs, "Maildir", "dovecot-keywords"), []byte("0 $Forwarded\n1 Junk\n"), 0o600)
	if out, err := exec.Command("chown", "-R", "65534:65534", theirs).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	// Dovecot's first session gives the UIDs; nothing else changes.
	oraclePOP3(t, o, conf, theirs, "UIDL\r\n")
	if out, err := exec.Command("cp", "-a", theirs, ours).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	input := strings.Join([]string{"CAPA", "STAT", "LIST", "UIDL", "RETR 1", "TOP 2 1", "TOP 3 0", "TOP 4 2", "RETR 5", "DELE 1",
		"RETR 1", "LIST 1", "LIST x", "LIST 1 2", "LIST 0", "LIST 7", "TOP 1", "TOP 2 x", "TOP 2 -1", "RETR 4294967297", "RETR 01",
		"RETR 1x", "RETR", "UIDL 3", "NOOP", "", "FOO", "USER x", "stat", "RSET", "RETR 3", "DELE 2", "DELE 6", "STAT", "LIST",
		"UIDL", "QUIT"}, "\r\n") + "\r\n"
	theirOut, theirLog := oraclePOP3(t, o, conf, theirs, input)
	ourOut, ourLog := postdovePOP3(t, ours, input)
	if ourOut != theirOut {
		t.Errorf("replies:\npostdove:\n%s\nDovecot:\n%s", ourOut, theirOut)
	}
	if ourLog != theirLog || ourLog == "" {
		t.Errorf("log:\npostdove: %s\nDovecot:  %s", ourLog, theirLog)
	}
	if got, want := maildirFiles(filepath.Join(ours, "Maildir")), maildirFiles(filepath.Join(theirs, "Maildir")); got != want {
		t.Errorf("files:\npostdove: %s\nDovecot:  %s", got, want)
	}
	// A session that ends without QUIT changes nothing, on both.
	input = "RETR 1\r\nDELE 2\r\n"
	theirOut, theirLog = oraclePOP3(t, o, conf, theirs, input)
	ourOut, ourLog = postdovePOP3(t, ours, input)
	if ourOut != theirOut || ourLog != theirLog {
		t.Errorf("without QUIT:\npostdove:\n%s%s\nDovecot:\n%s%s", ourOut, ourLog, theirOut, theirLog)
	}
	if got, want := maildirFiles(filepath.Join(ours, "Maildir")), maildirFiles(filepath.Join(theirs, "Maildir")); got != want {
		t.Errorf("files without QUIT:\npostdove: %s\nDovecot:  %s", got, want)
	}
}
