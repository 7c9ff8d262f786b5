package dovecot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"postdove/pkg/auth"
	"postdove/pkg/doveconf"
	"postdove/pkg/handoff"
)

// mailArg is the hidden argument that makes the dovecot binary a user's
// mail process.
const mailArg = "--postdove-mail-process"

// executable is the binary the mail processes run: this one.
var executable = os.Executable

// ctlFD is the mail process's end of its control socket: handed-off
// connections come in on it, its log lines and "session done" go out.
const ctlFD = 3

// Messages from the mail process to the master.
const (
	msgDone = 'd' // a session ended
	msgLog  = 'L' // "L" prefix "\n" text: a log line
)

// relayBuf is the buffer size of each direction of a TLS relay.
const relayBuf = 4096

// mailProcs are the users' mail processes, one per user.
type mailProcs struct {
	m      *master
	mu     sync.Mutex
	byUser map[string]*mailProc
}

type mailProc struct {
	key    string
	pid    int
	ctl    *net.UnixConn
	idle   time.Duration
	active int
	gen    int
	closed bool
}

// userOf looks the user up in the userdb, with the passdb's userdb_
// fields over it, and checks that a mail process may run as it.
func (c *client) userOf(res auth.Result, info *handoff.Info) error {
	u, err := c.a.Lookup(context.Background(), res.User)
	if err != nil {
		c.m.log.logf("auth: ", "Error", "userdb(%s): %v", res.User, err)
		return errInternal
	}
	fields := map[string]string{}
	for _, f := range append(u.Fields, res.Userdb...) {
		fields[f.Key] = f.Value
	}
	uid, gid := u.UID, u.GID
	if v, ok := fields["uid"]; ok {
		uid = atoiOr(v, uid)
	}
	if v, ok := fields["gid"]; ok {
		gid = atoiOr(v, gid)
	}
	home := fields["home"]
	prefix := fmt.Sprintf("%s(%s)<%s>: ", c.proto, res.User, c.session)
	bad := func(what string, id int, setting string) error {
		c.m.log.logf(prefix, "Error", "user %s: Mail access for users with %s %d not permitted (see %s in config file, %s from userdb lookup).",
			res.User, what, id, setting, map[string]string{"UID": "uid", "GID": "gid"}[what])
		return errInternal
	}
	switch {
	case uid < 0:
		c.m.log.logf(prefix, "Error", "user %s: Couldn't drop privileges: User is missing UID (see mail_uid setting)", res.User)
		return errInternal
	case uid == 0 || uint64(uid) < c.s.Uint("first_valid_uid"):
		return bad("UID", uid, "first_valid_uid")
	case c.s.Uint("last_valid_uid") != 0 && uint64(uid) > c.s.Uint("last_valid_uid"):
		return bad("UID", uid, "last_valid_uid")
	case gid < 0:
		c.m.log.logf(prefix, "Error", "user %s: Couldn't drop privileges: User is missing GID (see mail_gid setting)", res.User)
		return errInternal
	case gid == 0 || uint64(gid) < c.s.Uint("first_valid_gid"):
		return bad("GID", gid, "first_valid_gid")
	}
	mail := fields["mail"]
	if mail == "" {
		mail = c.s.Get("mail_location")
	}
	info.User, info.UID, info.GID, info.Home = res.User, uid, gid, home
	info.Mail = doveconf.Vars{User: res.User, Home: home}.Expand(mail)
	info.UserdbFields = fields
	return nil
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

// handoff passes c to its user's mail process, started if need be, and
// returns that process's pid.
func (p *mailProcs) handoff(c *client, res auth.Result, info *handoff.Info) (int, error) {
	if err := c.userOf(res, info); err != nil {
		return 0, err
	}
	var fd *os.File
	var err error
	if c.tls == nil {
		fd, err = c.conn.(*net.TCPConn).File()
	} else {
		fd, err = c.tlsPair()
	}
	if err != nil {
		c.m.log.logf(c.proto+"-login: ", "Error", "%v", err)
		return 0, errInternal
	}
	defer fd.Close()
	data, err := json.Marshal(info)
	if err != nil {
		return 0, errInternal
	}
	for try := 0; try < 2; try++ {
		mp, err := p.get(c, info)
		if err != nil {
			c.m.log.logf(c.proto+"-login: ", "Error", "%v", err)
			return 0, errInternal
		}
		if _, _, err = mp.ctl.WriteMsgUnix(data, syscall.UnixRights(int(fd.Fd())), nil); err == nil {
			return mp.pid, nil
		}
		// The process went away meanwhile: a fresh one takes it.
		p.retire(mp)
	}
	c.relay = nil
	return 0, errInternal
}

// tlsPair makes the socketpair a TLS session is relayed over and returns
// the mail process's end; c.relay runs the relay.
func (c *client) tlsPair() (*os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	mine := os.NewFile(uintptr(fds[0]), "relay")
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		syscall.Close(fds[1])
		return nil, err
	}
	c.relay = func() {
		defer conn.Close()
		done := make(chan struct{})
		go func() {
			copyBuf(c.tls, conn)
			c.tls.CloseWrite()
			close(done)
		}()
		// What the login dialogue read ahead is in Info.Input already.
		copyBuf(conn, c.tls)
		conn.(*net.UnixConn).CloseWrite()
		<-done
	}
	return os.NewFile(uintptr(fds[1]), "relay"), nil
}

func copyBuf(dst io.Writer, src io.Reader) {
	buf := make([]byte, relayBuf)
	io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}

// get returns the user's mail process, starting it when there is none.
func (p *mailProcs) get(c *client, info *handoff.Info) (*mailProc, error) {
	key := info.User + "/" + strconv.Itoa(info.UID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if mp := p.byUser[key]; mp != nil {
		mp.active++
		mp.gen++
		return mp, nil
	}
	mp, err := p.start(c, info, key)
	if err != nil {
		return nil, err
	}
	mp.active = 1
	p.byUser[key] = mp
	return mp, nil
}

// groups returns the user's supplementary groups: the system's when the
// user is a system user with that uid, else the primary group only.
func groups(name string, uid, gid int) []uint32 {
	out := []uint32{uint32(gid)}
	u, err := user.Lookup(name)
	if err != nil || u.Uid != strconv.Itoa(uid) {
		return out
	}
	ids, _ := u.GroupIds()
	for _, id := range ids {
		if n, err := strconv.Atoi(id); err == nil && n != gid && n != 0 {
			out = append(out, uint32(n))
		}
	}
	return out
}

func (p *mailProcs) start(c *client, info *handoff.Info, key string) (*mailProc, error) {
	exe, err := executable()
	if err != nil {
		return nil, err
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "ctl")
	defer mine.Close()
	defer theirs.Close()
	cmd := &exec.Cmd{Path: exe, Args: []string{"dovecot", mailArg, info.User}, Dir: "/",
		Env:        []string{"USER=" + info.User, "HOME=" + info.Home, "PATH=/usr/bin:/bin"},
		ExtraFiles: []*os.File{theirs},
		SysProcAttr: &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(info.UID), Gid: uint32(info.GID),
			Groups: groups(info.User, info.UID, info.GID)}}}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("fork(mail process for %s) failed: %v", info.User, err)
	}
	conn, err := net.FileConn(mine)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	svc, _ := c.s.Service(c.proto)
	idle := doveconf.FromMap(map[string]string{"t": svc.Settings["idle_kill"]}).Duration("t")
	if idle <= 0 {
		idle = c.s.Duration("default_idle_kill")
	}
	mp := &mailProc{key: key, pid: cmd.Process.Pid, ctl: conn.(*net.UnixConn), idle: idle}
	go p.read(mp, cmd)
	return mp, nil
}

// read takes the mail process's messages until it exits.
func (p *mailProcs) read(mp *mailProc, cmd *exec.Cmd) {
	buf := make([]byte, 16384)
	for {
		n, _, _, _, err := mp.ctl.ReadMsgUnix(buf, nil)
		if err != nil || n == 0 {
			break
		}
		switch buf[0] {
		case msgDone:
			p.done(mp)
		case msgLog:
			prefix, text, _ := cutByte(buf[1:n], '\n')
			p.m.log.line(string(prefix), string(text))
		}
	}
	p.retire(mp)
	mp.ctl.Close()
	cmd.Wait()
}

func cutByte(b []byte, c byte) ([]byte, []byte, bool) {
	for i, x := range b {
		if x == c {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// done counts a finished session; the process is told to exit once it
// has been idle for its idle_kill.
func (p *mailProcs) done(mp *mailProc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if mp.active--; mp.active > 0 {
		return
	}
	mp.gen++
	gen := mp.gen
	time.AfterFunc(mp.idle, func() {
		p.mu.Lock()
		idle := mp.active == 0 && mp.gen == gen && !mp.closed
		p.mu.Unlock()
		if idle {
			p.retire(mp)
		}
	})
}

// retire takes mp out of use: no more sessions go to it, and it exits
// when its sessions end.
func (p *mailProcs) retire(mp *mailProc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if mp.closed {
		return
	}
	mp.closed = true
	if p.byUser[mp.key] == mp {
		delete(p.byUser, mp.key)
	}
	mp.ctl.CloseWrite()
}

// stopAll ends every mail process (dovecot stop: shutdown_clients).
func (p *mailProcs) stopAll() {
	p.mu.Lock()
	var all []*mailProc
	for _, mp := range p.byUser {
		all = append(all, mp)
	}
	p.mu.Unlock()
	for _, mp := range all {
		p.retire(mp)
		syscall.Kill(mp.pid, syscall.SIGTERM)
	}
}

// runMail is a user's mail process: it serves the connections the master
// hands it until the master closes the control socket, then waits for
// its sessions to end.
func runMail() int {
	if os.Getuid() == 0 || os.Geteuid() == 0 {
		fmt.Fprintln(os.Stderr, "Fatal: a mail process must not run as root")
		return doveconf.ExitFatal
	}
	f := os.NewFile(ctlFD, "ctl")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return doveconf.ExitFatal
	}
	ctl := conn.(*net.UnixConn)
	var wg sync.WaitGroup
	buf := make([]byte, 1<<20)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := ctl.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			break
		}
		conn, info, err := received(buf[:n], oob[:oobn])
		if err != nil {
			sendLog(ctl, "dovecot: ", "Error: "+err.Error())
			ctl.Write([]byte{msgDone})
			continue
		}
		if info.Home != "" {
			os.Chdir(info.Home)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ctl.Write([]byte{msgDone})
			prefix := fmt.Sprintf("%s(%s)<%d><%s>: ", info.Protocol, info.User, os.Getpid(), info.Session)
			logf := func(format string, args ...any) { sendLog(ctl, prefix, fmt.Sprintf(format, args...)) }
			srv := mailServers[info.Protocol]
			if srv == nil {
				logf("Error: No %s server in this build", info.Protocol)
				if info.Protocol == "imap" {
					io.WriteString(conn, "* BYE "+errInternal.Error()+"\r\n")
				} else {
					io.WriteString(conn, "-ERR [SYS/TEMP] "+errInternal.Error()+"\r\n")
				}
				conn.Close()
				return
			}
			srv.Serve(conn, info, logf)
		}()
	}
	wg.Wait()
	return 0
}

func sendLog(ctl *net.UnixConn, prefix, text string) {
	ctl.Write([]byte(string(msgLog) + prefix + "\n" + text))
}

// received decodes one handed-off connection.
func received(data, oob []byte) (net.Conn, *handoff.Info, error) {
	var fds []int
	if msgs, err := syscall.ParseSocketControlMessage(oob); err == nil {
		for _, m := range msgs {
			if got, err := syscall.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, nil, errors.New("handoff without exactly one connection")
	}
	f := os.NewFile(uintptr(fds[0]), "client")
	defer f.Close()
	info := &handoff.Info{}
	if err := json.Unmarshal(data, info); err != nil {
		return nil, nil, err
	}
	conn, err := net.FileConn(f)
	return conn, info, err
}
