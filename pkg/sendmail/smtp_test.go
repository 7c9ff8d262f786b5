package sendmail

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"postdove/pkg/queue"
)

// sendmail -bs speaks smtpd's SMTP on stdin/stdout as Postfix's does
// (compat: TestSmtpdSendmailBs against the oracle): the banner, EHLO
// keywords and replies of smtpd, no relay restriction for the local
// user, and the message in the maildrop queue under the ID its reply
// and smtpd's Received: header name.
func TestStandAloneSMTP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("root writes the maildrop queue directly")
	}
	dir := t.TempDir()
	qdir := filepath.Join(dir, "queue")
	if err := queue.Setup(qdir, "root", "root"); err != nil {
		t.Fatal(err)
	}
	main := "queue_directory = " + qdir + "\nmyhostname = mail.example.test\nmynetworks = 10.0.0.0/8\n" +
		"maillog_file = " + filepath.Join(dir, "maillog") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	in := "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@elsewhere.example>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n" +
		"MAIL FROM:<a@b.example>\r\nRCPT TO:<root>\r\nRSET\r\nQUIT\r\n"
	var out, errb strings.Builder
	if code := Main([]string{"sendmail", "-C", dir, "-bs"}, strings.NewReader(in), &out, &errb); code != 0 || errb.Len() > 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "220 mail.example.test ESMTP Postfix\r\n250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n" +
		"250-ETRN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n250 2.1.0 Ok\r\n" +
		"250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as ID\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" +
		"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"
	id := regexp.MustCompile(`queued as ([0-9A-F]+)`).FindStringSubmatch(out.String())
	if id == nil || strings.Replace(out.String(), id[1], "ID", 1) != want {
		t.Fatalf("replies:\n%s", out.String())
	}
	q := queue.New(qdir)
	ids, err := q.List(queue.Maildrop)
	if err != nil || len(ids) != 1 || ids[0] != id[1] {
		t.Fatalf("maildrop %v %v, want %s alone (the RSET transaction's file removed)", ids, err, id[1])
	}
	f, err := q.Open(queue.Maildrop, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f.Content())
	if !strings.HasPrefix(string(b), "Received: from c.example (localhost [127.0.0.1])\n\tby mail.example.test (Postfix) with ESMTP id "+id[1]+"\n\tfor <x@elsewhere.example>; ") {
		t.Errorf("maildrop file:\n%s", b)
	}
}
