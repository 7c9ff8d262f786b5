package lmtp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/emersion/go-smtp"

	"postdove/pkg/doveconf"
	"postdove/pkg/lda"
)

// childEnv marks a process that this package started to save one copy as
// one user: the program that calls Serve, started again (the init below
// takes over before its main).
const childEnv = "POSTDOVE_LMTP_DELIVER"

func init() {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain(os.Stdin, os.Stdout))
	}
}

// request is what the child reads first, on one line.
type request struct {
	User, Home, Sender, Rcpt string
	Settings                 map[string]string
}

// report is one line the child writes: a log line, or the outcome.
type report struct {
	Level  string `json:",omitempty"`
	Text   string `json:",omitempty"`
	Done   bool   `json:",omitempty"`
	Code   int
	Reason string `json:",omitempty"`
}

// childMain saves the message on in (after the request line) with
// pkg/lda's Deliver, as the user the process runs as.
func childMain(in io.Reader, out io.Writer) int {
	os.NewFile(3, "").Close() // the executable, passed to start this process
	enc := json.NewEncoder(out)
	br := bufio.NewReader(in)
	req, set, err := readRequest(br)
	if err != nil {
		enc.Encode(report{Level: "Error", Text: "lmtp delivery: " + err.Error()})
		enc.Encode(report{Done: true, Code: lda.ExitTempFail})
		return 0
	}
	if req.Home != "" {
		os.Chdir(req.Home)
	}
	code, reason := lda.Deliver(req.User, req.Home, lda.Options{Sender: req.Sender, Final: req.Rcpt}, set, br,
		func(level, text string) { enc.Encode(report{Level: level, Text: text}) })
	enc.Encode(report{Done: true, Code: code, Reason: reason})
	return 0
}

// readRequest reads the request line and makes its settings.
func readRequest(br *bufio.Reader) (request, *doveconf.Settings, error) {
	var req request
	line, err := br.ReadBytes('\n')
	if err != nil {
		return req, nil, err
	}
	if err := json.Unmarshal(line, &req); err != nil {
		return req, nil, err
	}
	set, err := settingsOf(req.Settings)
	return req, set, err
}

// settingsOf makes Settings of name = value pairs.
func settingsOf(m map[string]string) (*doveconf.Settings, error) {
	var b strings.Builder
	for k, v := range m {
		if strings.ContainsAny(k+v, "\n\r") {
			return nil, fmt.Errorf("setting %s: line break in the value", k)
		}
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	cfg, err := doveconf.Parse("lmtp", []byte(b.String()))
	if err != nil {
		return nil, err
	}
	return cfg.For(doveconf.Match{Protocol: "lmtp"}), nil
}

// ids resolves the user's uid and gid: the userdb's, else mail_uid and
// mail_gid; a uid outside first_valid_uid..last_valid_uid is refused as
// Dovecot refuses it.
func (b *backend) ids(rc *rcpt) (uid, gid int, err error) {
	uid, gid = rc.user.UID, rc.user.GID
	resolve := func(v string, group bool) int {
		if v == "" {
			return -1
		}
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		if group {
			if g, err := user.LookupGroup(v); err == nil {
				n, _ := strconv.Atoi(g.Gid)
				return n
			}
		} else if u, err := user.Lookup(v); err == nil {
			n, _ := strconv.Atoi(u.Uid)
			return n
		}
		return -1
	}
	if uid < 0 {
		uid = resolve(b.set.Get("mail_uid"), false)
	}
	if gid < 0 {
		gid = resolve(b.set.Get("mail_gid"), true)
	}
	if uid < 0 {
		return 0, 0, fmt.Errorf("User is missing UID (see mail_uid setting)")
	}
	if gid < 0 {
		return 0, 0, fmt.Errorf("User is missing GID (see mail_gid setting)")
	}
	first, _ := strconv.Atoi(b.set.Get("first_valid_uid"))
	last, _ := strconv.Atoi(b.set.Get("last_valid_uid"))
	if uid < first || (last != 0 && uid > last) || uid == 0 {
		return 0, 0, fmt.Errorf("Mail access for users with UID %d not permitted (see first_valid_uid in config file, uid from userdb lookup).", uid)
	}
	return uid, gid, nil
}

// deliver saves one recipient's copy (hdr, then the spooled message) in
// a child process running as the user, and returns the reply for it.
func (b *backend) deliver(rc *rcpt, from, hdr string, spool *os.File) error {
	prefix := fmt.Sprintf("lmtp(%s)<%d><%s>: ", rc.user.Name, b.pid, rc.id)
	fail := func(reason string) error {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: reason}
	}
	internal := func(err error) error {
		b.logf(prefix+"Error: %v", err)
		return fail("Temporary internal error")
	}
	uid, gid, err := b.ids(rc)
	if err != nil {
		return internal(err)
	}
	settings := map[string]string{}
	for _, n := range lda.SettingNames {
		settings[n] = b.set.Get(n)
	}
	for _, f := range rc.user.Fields {
		if f.Key == "mail" {
			settings["mail_location"] = f.Value
		} else if slices.Contains(lda.SettingNames, f.Key) {
			settings[f.Key] = f.Value
		}
	}
	req, err := json.Marshal(request{User: rc.user.Name, Home: rc.user.Home, Sender: from, Rcpt: rc.addr, Settings: settings})
	if err != nil {
		return internal(err)
	}
	size, err := spool.Seek(0, io.SeekEnd)
	if err != nil {
		return internal(err)
	}
	// The executable is passed open, so that a user who may not search
	// the folder it lies in can still run it.
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return internal(err)
	}
	defer exe.Close()
	cmd := exec.Command("/proc/self/fd/3")
	cmd.Args[0] = "lmtp"
	cmd.ExtraFiles = []*os.File{exe}
	cmd.Env = []string{childEnv + "=1", "PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	cmd.Stdin = io.MultiReader(strings.NewReader(string(req)+"\n"+hdr), io.NewSectionReader(spool, 0, size))
	cmd.Stderr = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		return internal(err)
	}
	if err := cmd.Start(); err != nil {
		return internal(err)
	}
	var result *report
	dec := json.NewDecoder(out)
	for {
		var r report
		if dec.Decode(&r) != nil {
			break
		}
		if r.Done {
			result = &r
			continue
		}
		if r.Level == "Info" {
			b.logf(prefix+"%s", r.Text)
		} else {
			b.logf(prefix+"%s: %s", r.Level, r.Text)
		}
	}
	io.Copy(io.Discard, out)
	werr := cmd.Wait()
	switch {
	case result == nil:
		return internal(fmt.Errorf("delivery process failed: %v", werr))
	case result.Code == lda.ExitOK:
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: rc.id + " Saved"}
	case result.Reason != "":
		return fail(result.Reason)
	}
	return fail("Temporary internal error")
}
