package local

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"postdove/pkg/syserr"
	"strings"
	"sync"
	"syscall"
	"time"

	"postdove/pkg/addr"
	"postdove/pkg/aliases"
	"postdove/pkg/delivery"
	"postdove/pkg/maps"
	"postdove/pkg/mbox"
	"postdove/pkg/postconf"
)

// The delivery contract's types, under their old names here.
type (
	Recipient = delivery.Recipient
	Delays    = delivery.Delays
	Request   = delivery.Request
	Status    = delivery.Status
	Result    = delivery.Result
)

// The delivery outcomes.
const (
	Sent     = delivery.Sent
	Deferred = delivery.Deferred
	Bounced  = delivery.Bounced
)

// Overall is delivery.Overall.
func Overall(results []Result, idx int) Status { return delivery.Overall(results, idx) }

// Agent delivers messages like local(8). Its zero value with Settings
// filled in works; the hooks have defaults.
type Agent struct {
	Settings Settings
	// Logf receives one line per delivery, without the
	// "postfix/local[pid]: " prefix, e.g. maillog's Logger.Info.
	Logf func(format string, args ...any)
	// Warnf receives local(8)'s warnings ("maildir access problem ..."),
	// without the "warning: " prefix, e.g. maillog's Logger.Warning. When
	// nil they go to Logf with the prefix.
	Warnf func(format string, args ...any)
	// Resubmit queues a new message for addresses that are not local
	// (alias and .forward targets). nil defers such deliveries.
	Resubmit func(sender string, rcpts []string, content io.Reader) (queueID string, err error)
	// Errorf receives Postfix's "error:" lines (a table that cannot be
	// opened), without the prefix, e.g. maillog's Logger.Error. When nil
	// they go to Logf with the prefix.
	Errorf func(format string, args ...any)
	// Pass hands a recipient to another transport (mailbox_transport,
	// fallback_transport), as Postfix's local does over the delivery
	// contract: that agent delivers and logs. nil defers such deliveries.
	Pass func(transport, nexthop string, req Request) ([]Result, error)
	// IsLocal says whether a domain is delivered by this agent; default:
	// it is in Settings.MyDestination.
	IsLocal func(domain string) bool
	// PasswdFile is the user database; default /etc/passwd.
	PasswdFile string
	// Executable is re-executed as the delivery worker; default this
	// process's own binary.
	Executable string

	once sync.Once
	pool *pool
	// tables holds alias_maps and mailbox_command_maps, opened again
	// when their files change (newaliases, postmap).
	tables *maps.Cache
}

// Close stops the agent's idle workers and closes its tables.
func (a *Agent) Close() {
	a.init()
	a.pool.closeAll()
	a.tables.Close()
}

func (a *Agent) init() {
	a.once.Do(func() {
		a.pool = &pool{exe: a.Executable}
		a.tables = maps.NewCache(maps.Options{FoldCase: true, Warn: func(m string) { a.note("warning: " + m) }},
			func(m string) {
				if a.Errorf != nil {
					a.Errorf("%s", m)
				} else {
					a.note("error: " + m)
				}
			})
	})
}

// attempt is the state of one Request.
type attempt struct {
	a       *Agent
	req     Request
	seen    map[string]bool // duplicate filter
	looped  map[string]bool // Delivered-To addresses in the message
	results []Result
	start   time.Time
}

// branch is where one address came from during expansion.
type branch struct {
	rcpt    Recipient
	addr    string // address being delivered
	parent  string // address whose alias/.forward produced addr
	level   int
	sender  string
	owner   string // owner-NAME@origin, when a list has an owner
	expType string // "", "alias", "forward", "include"
	expFrom string // alias or user name being expanded
	privs   *creds // privileges for |command and /file from this branch
}

const maxLevel = 100

// Deliver delivers req to each recipient and returns the results, in
// order, after logging them. Each recipient is delivered as Postfix's
// local(8) delivers one request (local_destination_recipient_limit = 1):
// duplicates are eliminated within its own expansion only, so alice and
// alice+ext, or a list and one of its members, each get their delivery
// and their maillog line.
func (a *Agent) Deliver(req Request) []Result {
	a.init()
	d := &attempt{a: a, req: req, start: time.Now()}
	d.looped = d.scanDeliveredTo()
	for _, r := range req.Recipients {
		d.seen = map[string]bool{}
		d.recipient(branch{rcpt: r, addr: r.Address, sender: req.Sender})
	}
	return d.results
}

// scanDeliveredTo collects the Delivered-To: addresses in the headers.
func (d *attempt) scanDeliveredTo() map[string]bool {
	out := map[string]bool{}
	rc, err := d.req.Open()
	if err != nil {
		return out
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	for {
		line, err := br.ReadString('\n')
		t := strings.TrimRight(line, "\r\n")
		if t == "" {
			break
		}
		if k := strings.IndexByte(t, ':'); k > 0 && strings.EqualFold(t[:k], "Delivered-To") {
			out[strings.ToLower(strings.TrimSpace(t[k+1:]))] = true
		}
		if err != nil {
			break
		}
	}
	return out
}

// note logs a line that is not about one recipient: a "warning: " line
// through Warnf when set, anything else through Logf.
func (a *Agent) note(text string) {
	if w, ok := strings.CutPrefix(text, "warning: "); ok && a.Warnf != nil {
		a.Warnf("%s", w)
		return
	}
	if a.Logf != nil {
		a.Logf("%s", text)
	}
}

// finish records and logs one result.
func (d *attempt) finish(b branch, st Status, dsn, text string, began time.Time) {
	r := Result{Recipient: b.rcpt, Final: b.addr, Status: st, DSN: dsn, Text: text, Relay: "local"}
	if b.owner != "" && st != Sent {
		r.NotifySender = b.owner
	}
	d.results = append(d.results, r)
	if d.a.Logf == nil {
		return
	}
	orig := b.rcpt.Orig
	if orig == "" {
		orig = b.rcpt.Address
	}
	origPart := ""
	if !strings.EqualFold(orig, b.addr) {
		origPart = fmt.Sprintf(", orig_to=<%s>", orig)
	}
	dl := d.req.Delays
	total := time.Since(d.req.Arrival)
	if d.req.Arrival.IsZero() {
		total = dl.BeforeQmgr + dl.InQmgr + dl.ConnSetup + time.Since(began)
	}
	d.a.Logf("%s: to=<%s>%s, relay=local, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)",
		d.req.QueueID, b.addr, origPart, FormatDelay(total),
		FormatDelay(dl.BeforeQmgr), FormatDelay(dl.InQmgr), FormatDelay(dl.ConnSetup), FormatDelay(time.Since(began)),
		dsn, d.statusWord(st), text)
}

// statusWord is status= in the log line.
func (d *attempt) statusWord(st Status) string {
	switch {
	case !d.req.Verify:
		return st.String()
	case st == Sent:
		return "deliverable"
	default:
		return "undeliverable"
	}
}

// FormatDelay is delivery.FormatDelay.
func FormatDelay(d time.Duration) string { return delivery.FormatDelay(d) }

// splitAddr splits user@domain at the last @.
func splitAddr(address string) (local, domain string) {
	addr := addr.Unquote(address)
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i], addr[i+1:]
	}
	return addr, ""
}

// localParts splits a local recipient as local(8) does: the local part in
// internal form and lower case, its user part and its extension (after
// the first recipient_delimiter). An extension holding a '/' is illegal:
// it is dropped, local becomes the user part, and illegal is true.
func (a *Agent) localParts(address string) (local, user, ext, domain string, illegal bool) {
	local, domain = splitAddr(address)
	local = strings.ToLower(local)
	user, ext, _ = a.splitExtension(local)
	if strings.Contains(ext, "/") {
		return user, user, "", domain, true
	}
	return local, user, ext, domain, false
}

// splitExtension splits local at the first recipient_delimiter character.
func (a *Agent) splitExtension(local string) (user, ext, delim string) {
	if a.Settings.RecipientDelimiter == "" {
		return local, "", ""
	}
	if i := strings.IndexAny(local, a.Settings.RecipientDelimiter); i > 0 {
		return local[:i], local[i+1:], local[i : i+1]
	}
	return local, "", ""
}

func (a *Agent) isLocal(domain string) bool {
	if a.IsLocal != nil {
		return a.IsLocal(domain)
	}
	if domain == "" {
		return true
	}
	for _, d := range a.Settings.MyDestination {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

// recipient delivers one address: alias, .forward, mailbox, unknown.
func (d *attempt) recipient(b branch) {
	began := time.Now()
	if d.looped[strings.ToLower(b.addr)] {
		d.finish(b, Bounced, "5.4.6", "mail forwarding loop for "+b.addr, began)
		return
	}
	if b.level > maxLevel {
		d.finish(b, Bounced, "5.4.6", "mail forwarding loop for "+b.addr, began)
		return
	}
	local, user, ext, domain, illegal := d.a.localParts(b.addr)
	if illegal {
		full, _ := splitAddr(b.addr)
		d.a.note(fmt.Sprintf("warning: %s: address with illegal extension: %s", d.req.QueueID, strings.ToLower(full)))
	}
	if d.alias(b, local, user) {
		return
	}
	if d.forward(b, local, user, ext) {
		return
	}
	d.mailbox(b, local, user, ext, domain, began)
}

// lookupAlias searches alias_maps for name. A table that cannot be
// consulted is an error (the delivery is deferred), never "not found".
func (d *attempt) lookupAlias(name string) (value, table string, found bool, err error) {
	for _, spec := range d.a.Settings.AliasMaps {
		v, ok, err := d.a.tables.Lookup(spec, name)
		if err != nil {
			d.a.tableProblem(spec, "postalias", err)
			d.a.note(fmt.Sprintf("warning: %s: lookup of '%s' failed", spec, name))
			return "", spec, false, err
		}
		if ok {
			return v, spec, true, nil
		}
	}
	return "", "", false, nil
}

// tableProblem logs why a table could not be consulted, as Postfix does,
// and the command that rebuilds it when that is the fix.
func (a *Agent) tableProblem(spec, tool string, err error) {
	var ue *maps.UnavailableError
	if errors.As(err, &ue) {
		a.note("warning: " + ue.Error())
	}
	if adv := maps.RebuildAdvice(spec, tool, err); adv != "" {
		a.note("warning: " + adv)
	}
}

// alias expands local (or, failing that, user) through alias_maps.
func (d *attempt) alias(b branch, local, user string) bool {
	began := time.Now()
	name := local
	value, spec, found, err := d.lookupAlias(name)
	if err == nil && !found && user != local {
		name = user
		value, spec, found, err = d.lookupAlias(name)
	}
	if err != nil {
		d.finish(b, Deferred, "4.3.0", "alias database unavailable", began)
		return true
	}
	if !found || (b.expType == "alias" && b.expFrom == name) {
		return false
	}
	if d.seen["alias:"+name] {
		return true // this alias was expanded already for this message
	}
	d.seen["alias:"+name] = true
	nb := b
	nb.expType, nb.expFrom, nb.parent = "alias", name, b.addr
	nb.level = b.level + 1
	nb.privs = d.a.ownerPrivs(maps.TableFile(spec))
	if d.a.Settings.OwnerRequestSpecial {
		if _, _, ok, _ := d.lookupAlias("owner-" + name); ok {
			nb.owner = "owner-" + name + "@" + d.a.Settings.MyOrigin
			nb.sender = nb.owner
		}
	}
	d.targets(nb, aliasTargets(value))
	return true
}

// ownerPrivs are the privileges for commands and files coming from a file
// owned by someone: that owner, or default_privs when it is root.
func (a *Agent) ownerPrivs(path string) *creds {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err == nil && st.Uid != 0 {
		return &creds{int(st.Uid), int(st.Gid)}
	}
	return a.defaultPrivs()
}

// defaultPrivs are default_privs' uid and gid, which SettingsFrom
// resolved; never root's, even for Settings made by hand.
func (a *Agent) defaultPrivs() *creds {
	if s := a.Settings; s.DefaultUID > 0 && s.DefaultGID > 0 {
		return &creds{s.DefaultUID, s.DefaultGID}
	}
	if u, err := a.lookupUser(a.Settings.DefaultPrivs); err == nil && u != nil && u.Uid > 0 && u.Gid > 0 {
		return &creds{u.Uid, u.Gid}
	}
	return &creds{65534, 65534}
}

// targets delivers each target of an alias, .forward or :include:.
func (d *attempt) targets(b branch, ts []aliases.Target) {
	for _, t := range ts {
		began := time.Now()
		switch t.Kind {
		case aliases.Address:
			nb := b
			addr := t.Value
			if !strings.Contains(addr, "@") {
				addr += "@" + d.a.Settings.MyOrigin
			}
			nb.addr = addr
			_, dom := splitAddr(addr)
			if d.a.isLocal(dom) {
				d.recipient(nb)
			} else {
				d.forwardRemote(nb, began)
			}
		case aliases.Include:
			d.include(b, t.Value, began)
		case aliases.Command:
			if !allowed(d.a.Settings.AllowMailToCommands, b.expType) {
				d.finish(b, Bounced, "5.7.1", "mail to command is restricted", began)
				continue
			}
			d.command(b, t.Value, *b.privs, began)
		case aliases.File:
			if !allowed(d.a.Settings.AllowMailToFiles, b.expType) {
				d.finish(b, Bounced, "5.7.1", "mail to file is restricted", began)
				continue
			}
			d.file(b, t.Value, began)
		}
	}
}

func allowed(list []string, expType string) bool {
	for _, x := range list {
		if strings.EqualFold(x, expType) {
			return true
		}
	}
	return false
}

// include expands a :include: file, read with the branch's privileges.
func (d *attempt) include(b branch, path string, began time.Time) {
	if !filepath.IsAbs(path) {
		d.finish(b, Bounced, "5.3.5", fmt.Sprintf(":include:%s uses a relative path", path), began)
		return
	}
	if d.seen["include:"+path] {
		return
	}
	d.seen["include:"+path] = true
	rep, err := d.a.pool.do(*b.privs, job{Kind: jobRead, Path: path}, nil)
	if err != nil {
		d.finish(b, Deferred, "4.3.0", err.Error(), began)
		return
	}
	if rep.Code == statusBounce {
		d.finish(b, Deferred, "4.3.0", fmt.Sprintf("cannot open include file %s: %s", path, rep.Text), began)
		return
	}
	if rep.Code != statusSent {
		d.finish(b, Deferred, rep.DSN, rep.Text, began)
		return
	}
	nb := b
	nb.expType, nb.level = "include", b.level+1
	nb.privs = d.a.ownerPrivs(path)
	d.targets(nb, fileTargets(string(rep.Data)))
}

// forwardRemote resubmits the message to an address that is not local.
func (d *attempt) forwardRemote(b branch, began time.Time) {
	key := "fwd:" + strings.ToLower(b.addr) + " " + b.sender
	if d.seen[key] {
		return
	}
	d.seen[key] = true
	if d.req.Verify {
		d.finish(b, Sent, "2.0.0", "forwards to "+b.addr, began)
		return
	}
	if d.a.Resubmit == nil {
		d.finish(b, Deferred, "4.3.0", "mail forwarding is not available", began)
		return
	}
	rc, err := d.req.Open()
	if err != nil {
		d.finish(b, Deferred, "4.3.0", "error reading message: "+err.Error(), began)
		return
	}
	defer rc.Close()
	var content io.Reader = rc
	if allowed(d.a.Settings.DeliveredHeader, "forward") && b.parent != "" {
		content = io.MultiReader(strings.NewReader("Delivered-To: "+b.parent+"\n"), rc)
	}
	id, err := d.a.Resubmit(b.sender, []string{b.addr}, content)
	if err != nil {
		d.finish(b, Deferred, "4.3.0", "cannot forward message: "+err.Error(), began)
		return
	}
	d.finish(b, Sent, "2.0.0", "forwarded as "+id, began)
}

// forward looks for the user's ~/.forward files.
func (d *attempt) forward(b branch, local, user, ext string) bool {
	if b.expType == "forward" && b.expFrom == user {
		return false
	}
	began := time.Now()
	u, err := d.a.lookupUser(user)
	if err != nil || u == nil {
		return false
	}
	c := creds{u.Uid, u.Gid}
	for _, p := range d.a.Settings.ForwardPath {
		path, ok := d.a.expandRecipient(p, b.addr, local, user, ext, u, d.a.Settings.ForwardFilter)
		if !ok || path == "" || !filepath.IsAbs(path) {
			continue
		}
		rep, err := d.a.pool.do(c, job{Kind: jobRead, Path: path}, nil)
		if err != nil {
			d.finish(b, Deferred, "4.3.0", err.Error(), began)
			return true
		}
		if rep.Code == statusBounce {
			continue // no such file
		}
		if rep.Code != statusSent {
			d.finish(b, Deferred, rep.DSN, rep.Text, began)
			return true
		}
		ts := fileTargets(string(rep.Data))
		if len(ts) == 0 {
			continue
		}
		if d.seen["forward:"+path] {
			return true
		}
		d.seen["forward:"+path] = true
		nb := b
		nb.expType, nb.expFrom, nb.parent = "forward", user, b.addr
		nb.level = b.level + 1
		nb.privs = &c
		if u.Uid == 0 {
			nb.privs = d.a.defaultPrivs()
		}
		d.targets(nb, ts)
		return true
	}
	return false
}

// attrs are local(8)'s attributes of one recipient for $name expansion
// in forward_path, luser_relay and command_execution_directory: $user,
// $home, $shell, $recipient, $extension, $domain, $local, $mailbox and
// $recipient_delimiter (the delimiter found in the address). A name
// without a value (no extension, no account) is unknown.
func (a *Agent) attrs(address, local, user, ext string, u *User) func(string) (string, bool) {
	_, domain := splitAddr(address)
	vals := map[string]string{"user": user, "recipient": addr.Unquote(address), "domain": domain, "local": local, "mailbox": local}
	if _, e, delim := a.splitExtension(local); e != "" && e == ext {
		vals["extension"], vals["recipient_delimiter"] = ext, delim
	}
	if u != nil {
		vals["home"], vals["shell"] = u.Home, u.Shell
	}
	return func(name string) (string, bool) {
		v, ok := vals[name]
		return v, ok
	}
}

// expandRecipient expands v with the recipient's attributes (see attrs),
// each value censored by filter as Postfix's *_expansion_filter does; ok
// is false when v names an unknown attribute ($extension of an address
// without one) or is malformed: Postfix then skips the value.
func (a *Agent) expandRecipient(v, addr, local, user, ext string, u *User, filter string) (string, bool) {
	out, undef, err := postconf.ExpandAttrs(v, a.attrs(addr, local, user, ext, u), filter)
	if err != nil {
		a.note(fmt.Sprintf("warning: %s: %v", v, err))
		return "", false
	}
	return out, !undef
}

// deliveryHeaders are the headers prepended for one delivery.
func (d *attempt) deliveryHeaders(b branch, delivered bool) []byte {
	var h bytes.Buffer
	fmt.Fprintf(&h, "Return-Path: <%s>\n", b.sender)
	orig := b.rcpt.Orig
	if orig == "" {
		orig = b.rcpt.Address
	}
	fmt.Fprintf(&h, "X-Original-To: %s\n", orig)
	if delivered {
		fmt.Fprintf(&h, "Delivered-To: %s\n", b.addr)
	}
	return h.Bytes()
}

// fromLine is the mbox envelope line, for commands.
func fromLine(sender string, t time.Time) string {
	return mbox.FromLine(sender, t) + "\n"
}

// run streams the message to a worker running as c.
func (d *attempt) run(c creds, j job) reply {
	if d.req.Verify {
		return reply{Code: statusSent}
	}
	rc, err := d.req.Open()
	if err != nil {
		return reply{Code: statusDefer, DSN: "4.3.0", Text: "error reading message: " + err.Error()}
	}
	defer rc.Close()
	rep, err := d.a.pool.do(c, j, rc)
	if err != nil {
		return reply{Code: statusDefer, DSN: "4.3.0", Text: err.Error()}
	}
	return rep
}

func (d *attempt) report(b branch, rep reply, ok string, began time.Time) {
	for _, note := range rep.Notes {
		d.a.note(note)
	}
	switch rep.Code {
	case statusSent:
		if d.req.Verify {
			ok = strings.Replace(ok, "delivered to", "delivers to", 1)
		}
		d.finish(b, Sent, "2.0.0", ok, began)
	case statusBounce:
		d.finish(b, Bounced, rep.DSN, rep.Text, began)
	default:
		d.finish(b, Deferred, rep.DSN, rep.Text, began)
	}
}

// command pipes the message into a command.
func (d *attempt) command(b branch, command string, c creds, began time.Time) {
	key := fmt.Sprintf("command:%d:%s", c.uid, command)
	if d.seen[key] {
		return
	}
	d.seen[key] = true
	local, user, ext, domain, _ := d.a.localParts(b.addr)
	u, _ := d.a.lookupUser(user)
	j, ok := d.commandJob(b, command, local, user, ext, domain, u, allowed(d.a.Settings.DeliveredHeader, "command"), began)
	if ok {
		d.report(b, d.run(c, j), "delivered to command: "+command, began)
	}
}

// commandJob is the job that pipes the message into command for the
// recipient of b; false (the delivery deferred) when
// command_execution_directory cannot be expanded.
func (d *attempt) commandJob(b branch, command, local, user, ext, domain string, u *User, delivered bool, began time.Time) (job, bool) {
	s := d.a.Settings
	j := job{Kind: jobCommand, Command: command, Timeout: s.CommandTimeLimit,
		FromLine: fromLine(b.sender, time.Now()), Prefix: d.deliveryHeaders(b, delivered),
		Env: d.commandEnv(b, local, user, ext, domain, u)}
	j.Dir = s.QueueDirectory // where Postfix's local(8) runs, and its commands with it
	if s.CommandDirectory != "" {
		dir, _, err := postconf.ExpandAttrs(s.CommandDirectory, d.a.attrs(b.addr, local, user, ext, u), s.ExecDirFilter)
		if err != nil {
			d.a.note(fmt.Sprintf("warning: bad command_execution_directory value: %s: %v", s.CommandDirectory, err))
			d.finish(b, Deferred, "4.3.5", "mail system configuration error", began)
			return j, false
		}
		j.Dir = dir
	}
	if sh := s.LocalCommandShell; sh != "" {
		j.Shell = append(strings.Fields(sh), "-c")
	}
	return j, true
}

// commandEnv is the environment of a delivery command, as local(8) sets
// it: every value that comes from the message or the account is censored
// by command_expansion_filter (characters outside it become '_'), so a
// command that uses $SENDER or $EXTENSION unquoted in a shell never runs
// what an address holds.
func (d *attempt) commandEnv(b branch, local, user, ext, domain string, u *User) []string {
	env := []string{"PATH=/usr/bin:/bin"}
	for _, name := range []string{"TZ", "LANG", "MAIL_CONFIG"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	var attrs []string
	if u != nil {
		attrs = append(attrs, "HOME", u.Home, "LOGNAME", u.Name, "USER", u.Name, "SHELL", u.Shell)
	} else {
		attrs = append(attrs, "LOGNAME", user, "USER", user)
	}
	orig := b.rcpt.Orig
	if orig == "" {
		orig = b.rcpt.Address
	}
	// Addresses in their internal form, as Postfix passes them: "a b"@c
	// is a b@c.
	attrs = append(attrs, "SENDER", addr.Unquote(b.sender), "RECIPIENT", addr.Unquote(b.addr), "LOCAL", local,
		"DOMAIN", domain, "ORIGINAL_RECIPIENT", addr.Unquote(orig))
	if ext != "" {
		attrs = append(attrs, "EXTENSION", ext)
	}
	for i := 0; i < len(attrs); i += 2 {
		env = append(env, attrs[i]+"="+postconf.FilterChars(attrs[i+1], d.a.Settings.CommandFilter))
	}
	return env
}

// file appends the message to a /file target.
func (d *attempt) file(b branch, path string, began time.Time) {
	key := "file:" + path
	if d.seen[key] {
		return
	}
	d.seen[key] = true
	j := job{Kind: jobFile, Path: path, Owner: -1, Sender: b.sender, Time: time.Now(),
		Prefix: d.deliveryHeaders(b, allowed(d.a.Settings.DeliveredHeader, "file"))}
	d.report(b, d.run(*b.privs, j), "delivered to file: "+path, began)
}

// mailbox delivers to the user's mailbox, or bounces an unknown user.
// With mailbox_transport, the mailbox is that transport's, user account
// or not.
func (d *attempt) mailbox(b branch, local, user, ext, domain string, began time.Time) {
	if t := d.a.Settings.MailboxTransport; t != "" {
		if !d.seen["mailbox:"+user] {
			d.seen["mailbox:"+user] = true
			d.pass(b, t, began)
		}
		return
	}
	u, err := d.a.lookupUser(user)
	if err != nil {
		d.finish(b, Deferred, "4.3.0", "user lookup error: "+err.Error(), began)
		return
	}
	if u == nil {
		d.unknown(b, local, user, ext, began)
		return
	}
	if d.seen["mailbox:"+user] {
		return
	}
	d.seen["mailbox:"+user] = true
	c := creds{u.Uid, u.Gid}
	s := d.a.Settings
	command := s.MailboxCommand
	for _, spec := range s.MailboxCommandMaps {
		if v, ok, err := d.a.tables.Lookup(spec, user); err != nil {
			d.a.tableProblem(spec, "postmap", err)
			d.a.note(fmt.Sprintf("warning: %s lookup error for \"%s\"", spec, user))
			d.finish(b, Deferred, "4.3.0", "table lookup failure", began)
			return
		} else if ok {
			command = v
			break
		}
	}
	if command != "" {
		if u.Uid == 0 {
			c = *d.a.defaultPrivs()
		}
		if j, ok := d.commandJob(b, command, local, user, ext, domain, u, true, began); ok {
			d.report(b, d.run(c, j), "delivered to command: "+command, began)
		}
		return
	}
	var path string
	spool := false
	if s.HomeMailbox != "" {
		path = filepath.Join(u.Home, s.HomeMailbox)
		if strings.HasSuffix(s.HomeMailbox, "/") {
			path += "/"
		}
	} else {
		path = filepath.Join(s.MailSpoolDirectory, user)
		if strings.HasSuffix(s.MailSpoolDirectory, "/") {
			path += "/"
		}
		spool = true
	}
	if strings.HasSuffix(path, "/") {
		j := job{Kind: jobMaildir, Path: filepath.Clean(path), Hostname: s.MyHostname,
			Prefix: d.deliveryHeaders(b, true)}
		d.report(b, d.run(c, j), "delivered to maildir", began)
		return
	}
	j := job{Kind: jobMbox, Path: path, Owner: -1, Sender: b.sender, Time: time.Now(),
		Prefix: d.deliveryHeaders(b, true)}
	if s.StrictOwnership {
		j.Owner = u.Uid
	}
	if spool && !d.req.Verify {
		// The spool folder is root's: create the mailbox and the dot lock
		// as root, write as the user.
		unlock, err := prepareSpool(path, u)
		if err != nil {
			d.finish(b, Deferred, "4.2.0", fmt.Sprintf("cannot update mailbox %s for user %s. %s", path, user, err), began)
			return
		}
		defer unlock()
		j.NoLock = true
	}
	rep := d.run(c, j)
	if rep.Code != statusSent && strings.HasPrefix(rep.Text, "cannot update mailbox "+path+". ") {
		rep.Text = fmt.Sprintf("cannot update mailbox %s for user %s. %s", path, user, strings.TrimPrefix(rep.Text, "cannot update mailbox "+path+". "))
	}
	d.report(b, rep, "delivered to mailbox", began)
}

// prepareSpool takes the dot lock and then creates a missing spool
// mailbox (mode 0600, owned by the user) without following links. The
// lock comes first, as in Postfix, so that a second delivery never sees
// the new mailbox before its owner is set.
func prepareSpool(path string, u *User) (func(), error) {
	unlock, err := mbox.DotLock(path, mbox.LockTimeouts{})
	if err != nil {
		return nil, fmt.Errorf("unable to create lock file %s.lock: %s", path, syserr.Text(errors.Unwrap(err)))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0600)
	if err == nil {
		err = f.Chown(u.Uid, u.Gid)
		f.Close()
		if err != nil {
			os.Remove(path)
			unlock()
			return nil, fmt.Errorf("cannot set owner: %s", syserr.Text(err))
		}
	} else if !errors.Is(err, os.ErrExist) {
		unlock()
		return nil, fmt.Errorf("cannot create file: %s", syserr.Text(err))
	}
	return func() { unlock() }, nil
}

// unknown handles a recipient without alias, .forward or account.
func (d *attempt) unknown(b branch, local, user, ext string, began time.Time) {
	if t := d.a.Settings.FallbackTransport; t != "" {
		d.pass(b, t, began)
		return
	}
	if relay := d.a.Settings.LuserRelay; relay != "" && b.expType != "luser" {
		addr, _ := d.a.expandRecipient(relay, b.addr, local, user, ext, nil, "")
		if addr != "" && !strings.EqualFold(addr, b.addr) {
			nb := b
			nb.parent, nb.level, nb.expType = b.addr, b.level+1, "luser"
			d.targets(nb, []aliases.Target{{Kind: aliases.Address, Value: addr}})
			return
		}
	}
	d.finish(b, Bounced, "5.1.1", fmt.Sprintf("unknown user: %q", local), began)
}

// pass hands the recipient of branch b to transport ("transport:nexthop",
// the request's next hop when it has none): the results are that
// agent's, which logged them.
func (d *attempt) pass(b branch, transport string, began time.Time) {
	tr, hop, _ := strings.Cut(transport, ":")
	if hop == "" {
		hop = d.req.Nexthop
	}
	if d.a.Pass == nil {
		d.finish(b, Deferred, "4.3.0", "mail transport unavailable", began)
		return
	}
	orig := b.rcpt.Orig
	if orig == "" {
		orig = b.rcpt.Address
	}
	rc := Recipient{Address: b.addr, Orig: orig, Index: b.rcpt.Index, Notify: b.rcpt.Notify, ORCPT: b.rcpt.ORCPT}
	if d.a.Logf != nil {
		d.a.Logf("%s: passing <%s> to transport=%s", d.req.QueueID, b.addr, tr)
	}
	req := d.req
	req.Recipients = []Recipient{rc}
	req.Transport, req.Nexthop = tr, hop
	res, err := d.a.Pass(tr, hop, req)
	if err != nil {
		d.a.note("warning: " + err.Error())
		d.finish(b, Deferred, "4.3.0", "mail transport unavailable", began)
		return
	}
	for _, r := range res {
		r.Recipient = b.rcpt
		if b.owner != "" && r.Status != Sent {
			r.NotifySender = b.owner
		}
		d.results = append(d.results, r)
	}
}
