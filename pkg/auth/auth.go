package auth

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"postdove/pkg/doveconf"
)

// Kind is the outcome of a failed authentication, as Dovecot's auth
// process tells them apart.
type Kind int

const (
	Failed              Kind = iota // wrong password (or unknown user; clients are not told which)
	UnknownUser                     // no passdb or userdb knows the user
	Disabled                        // the passdb denies the user (deny=yes, nologin)
	Expired                         // the password has expired
	Temporary                       // an internal failure: try again later
	PlaintextDisallowed             // disable_plaintext_auth on an insecure connection
)

// Error is a failed authentication or lookup.
type Error struct {
	Kind   Kind
	Reason string // for the log: "Password mismatch", "unknown user", ...
}

func (e *Error) Error() string { return e.Reason }

func fail(k Kind, reason string) *Error { return &Error{Kind: k, Reason: reason} }

// KindOf returns err's Kind: Temporary for errors that are not *Error.
func KindOf(err error) Kind {
	if e, ok := err.(*Error); ok {
		return e.Kind
	}
	return Temporary
}

// Request is one authentication attempt.
type Request struct {
	Service           string // imap, pop3, smtp, doveadm: PAM's %s and the protocol filter
	User, Password    string
	RemoteIP, LocalIP string
	Secured           bool // TLS, or a connection Dovecot trusts as such
}

// Result is a successful authentication: the user name to use from now
// on and the passdb's extra fields (proxy, host, nopassword, ...).
type Result struct {
	User   string
	Extra  []Field
	Userdb []Field // the passdb's userdb_ fields, prefix removed
	Passdb string  // the driver of the passdb that answered
	// Password is the password the client gave, which a login proxy
	// sends on to the backend when the passdb gives no pass field.
	Password string
}

// Field returns the value of the extra field key and whether it is there.
func (r Result) Field(key string) (string, bool) { return fieldValue(r.Extra, key) }

// Flag reports whether the extra field key is set as a flag ("proxy",
// "proxy=y").
func (r Result) Flag(key string) bool { return truthy(r.Extra, key) }

// User is a userdb lookup's answer.
type User struct {
	Name   string
	UID    int // -1 when the userdb gives none
	GID    int
	Home   string
	Fields []Field // every userdb field in order, uid, gid and home included
}

// Authenticator authenticates and looks up users through the passdb and
// userdb blocks of one configuration.
type Authenticator struct {
	Passdbs          []Passdb
	Userdbs          []Userdb
	FailureDelay     time.Duration // auth_failure_delay
	DisablePlaintext bool          // disable_plaintext_auth
	Mechanisms       []string      // auth_mechanisms, upper-cased
	UsernameFormat   string        // auth_username_format
	// Logf reports problems Dovecot's auth process would log (a passwd-file
	// line it skips, a driver failure); nil to drop them.
	Logf func(format string, args ...any)
}

// Passdb is one passdb block.
type Passdb struct {
	Driver string
	Deny   bool // deny = yes: a user it knows is refused
	db     passdb
}

// Userdb is one userdb block.
type Userdb struct {
	Driver         string
	DefaultFields  []Field
	OverrideFields []Field
	db             userdb
}

type passdb interface {
	// verify checks req's password and returns the user's extra fields,
	// or an *Error (UnknownUser, Failed, Temporary, ...).
	verify(ctx context.Context, req *Request) ([]Field, error)
}

type userdb interface {
	lookup(ctx context.Context, user string) (*User, error)
}

// New builds an Authenticator from a configuration's settings (for the
// protocol the caller serves: cfg.For(doveconf.Match{Protocol: "imap"})).
func New(s *doveconf.Settings) (*Authenticator, error) {
	a := &Authenticator{
		FailureDelay:     s.Duration("auth_failure_delay"),
		DisablePlaintext: s.Bool("disable_plaintext_auth"),
		UsernameFormat:   s.Get("auth_username_format"),
	}
	for _, m := range s.List("auth_mechanisms") {
		a.Mechanisms = append(a.Mechanisms, strings.ToUpper(m))
	}
	for _, d := range s.Passdbs() {
		db, err := newPassdb(d.Driver, d.Args)
		if err != nil {
			return nil, err
		}
		if pf, ok := db.(*passwdFileDB); ok {
			pf.logf = a.logf
		}
		deny, _ := parseYes(d.Fields["deny"])
		a.Passdbs = append(a.Passdbs, Passdb{Driver: d.Driver, Deny: deny, db: db})
	}
	for _, d := range s.Userdbs() {
		db, err := newUserdb(d.Driver, d.Args)
		if err != nil {
			return nil, err
		}
		if pf, ok := db.(*passwdFileDB); ok {
			pf.logf = a.logf
		}
		a.Userdbs = append(a.Userdbs, Userdb{Driver: d.Driver, DefaultFields: ParseFields(d.Fields["default_fields"]),
			OverrideFields: ParseFields(d.Fields["override_fields"]), db: db})
	}
	return a, nil
}

func parseYes(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "yes", "y", "1", "true":
		return true, true
	case "no", "n", "0", "false", "":
		return false, true
	}
	return false, false
}

func newPassdb(driver, args string) (passdb, error) {
	switch driver {
	case "pam":
		return newPAM(args), nil
	case "shadow":
		return &shadowDB{path: "/etc/shadow"}, nil
	case "passwd-file":
		return newPasswdFileDB(args), nil
	case "static":
		return &staticPassdb{fields: ParseFields(args)}, nil
	case "passwd":
		return &passwdPassdb{}, nil
	}
	return nil, fmt.Errorf("Unknown passdb driver '%s'", driver)
}

func newUserdb(driver, args string) (userdb, error) {
	switch driver {
	case "passwd":
		return passwdUserdb{}, nil
	case "passwd-file":
		return newPasswdFileDB(args), nil
	case "static":
		return newStaticUserdb(args), nil
	}
	return nil, fmt.Errorf("Unknown userdb driver '%s'", driver)
}

// Username applies auth_username_format ("%Lu": lower-cased) to name.
func (a *Authenticator) Username(name string) string {
	if a.UsernameFormat == "" {
		return name
	}
	return doveconf.Vars{User: name}.Expand(a.UsernameFormat)
}

// PlaintextAllowed reports whether a plaintext mechanism may be used on a
// connection: disable_plaintext_auth = no, TLS, or a client on the
// server's own address, which Dovecot counts as secured. Loopback as such
// is not: Dovecot refuses a plaintext login from 127.0.0.2 to 127.0.0.1.
func (a *Authenticator) PlaintextAllowed(req *Request) bool {
	if !a.DisablePlaintext || req.Secured {
		return true
	}
	r, err := netip.ParseAddr(req.RemoteIP)
	if err != nil {
		return req.RemoteIP == ""
	}
	l, err := netip.ParseAddr(req.LocalIP)
	return err == nil && l.Unmap() == r.Unmap()
}

// Authenticate checks a user's password through the passdbs in order. A
// failure other than a temporary one is returned only after
// auth_failure_delay, or when ctx ends.
func (a *Authenticator) Authenticate(ctx context.Context, req Request) (Result, error) {
	if !a.PlaintextAllowed(&req) {
		return Result{}, fail(PlaintextDisallowed, "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
	}
	req.User = a.Username(req.User)
	res, err := a.authenticate(ctx, &req)
	if err != nil && KindOf(err) != Temporary {
		a.delay(ctx)
	}
	return res, err
}

func (a *Authenticator) authenticate(ctx context.Context, req *Request) (Result, error) {
	if len(a.Passdbs) == 0 {
		return Result{}, fail(Temporary, "No passdbs configured")
	}
	var last error = fail(UnknownUser, "unknown user")
	for _, p := range a.Passdbs {
		fields, err := p.db.verify(ctx, req)
		if p.Deny {
			// A deny passdb only says whether the user is listed.
			if err == nil || KindOf(err) == Failed {
				return Result{}, fail(Disabled, "User is disabled")
			}
			continue
		}
		if err != nil {
			if KindOf(err) == Temporary {
				a.logf("passdb %s(%s): %v", p.Driver, req.User, err)
			}
			// A mismatch is the answer to report even if a later passdb
			// does not know the user.
			if KindOf(last) == UnknownUser || KindOf(err) != UnknownUser {
				last = err
			}
			continue
		}
		user := req.User
		if u, ok := fieldValue(fields, "user"); ok && u != "" {
			user = u
		}
		if truthy(fields, "nologin") && !truthy(fields, "proxy") {
			return Result{}, fail(Disabled, "nologin")
		}
		res := Result{User: user, Extra: []Field{{"user", user}}, Passdb: p.Driver, Password: req.Password}
		for _, f := range fields {
			if k, ok := strings.CutPrefix(f.Key, "userdb_"); ok {
				res.Userdb = append(res.Userdb, Field{k, f.Value})
			} else if f.Key == "nopassword" {
				// Used up by the password check, as in Dovecot.
			} else if f.Key != "user" {
				if (f.Key == "proxy" || f.Key == "proxy_maybe") && truthy([]Field{f}, f.Key) {
					f.Value = "" // a flag, as Dovecot's auth keeps it
				}
				res.Extra = append(res.Extra, f)
			}
		}
		return res, nil
	}
	return Result{}, last
}

// delay waits auth_failure_delay, as Dovecot does before it answers a
// failed attempt.
func (a *Authenticator) delay(ctx context.Context) {
	if a.FailureDelay <= 0 {
		return
	}
	t := time.NewTimer(a.FailureDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Lookup asks the userdbs in order for user's uid, gid, home and other
// fields; the first that knows the user answers.
func (a *Authenticator) Lookup(ctx context.Context, user string) (*User, error) {
	user = a.Username(user)
	if len(a.Userdbs) == 0 {
		return nil, fail(Temporary, "No userdbs configured")
	}
	var last error = fail(UnknownUser, "user "+user+" doesn't exist")
	for _, u := range a.Userdbs {
		got, err := u.db.lookup(ctx, user)
		if err != nil {
			if KindOf(err) == Temporary {
				a.logf("userdb %s(%s): %v", u.Driver, user, err)
				last = err
			}
			continue
		}
		fields := got.Fields
		for _, f := range u.DefaultFields {
			if _, ok := fieldValue(fields, f.Key); !ok {
				fields = append(fields, Field{f.Key, expandField(f.Value, got)})
			}
		}
		for _, f := range u.OverrideFields {
			fields = setField(fields, f.Key, expandField(f.Value, got))
		}
		return userFromFields(got.Name, fields)
	}
	return nil, last
}

func expandField(v string, u *User) string {
	return doveconf.Vars{User: u.Name, Home: u.Home}.Expand(v)
}

// userFromFields fills User's uid, gid and home from its fields; uid and
// gid may be names (static userdb: uid=vmail).
func userFromFields(name string, fields []Field) (*User, error) {
	u := &User{Name: name, UID: -1, GID: -1, Fields: fields}
	for i, f := range fields {
		switch f.Key {
		case "uid":
			n, err := resolveID(f.Value, false)
			if err != nil {
				return nil, fail(Temporary, err.Error())
			}
			u.UID, fields[i].Value = n, fmt.Sprint(n)
		case "gid":
			n, err := resolveID(f.Value, true)
			if err != nil {
				return nil, fail(Temporary, err.Error())
			}
			u.GID, fields[i].Value = n, fmt.Sprint(n)
		case "home":
			u.Home = f.Value
		}
	}
	return u, nil
}

func (a *Authenticator) logf(format string, args ...any) {
	if a.Logf != nil {
		a.Logf(format, args...)
	}
}

// fileCache keeps a parsed file until its size or modification time
// changes, as Dovecot re-reads a passwd-file that changed.
type fileCache struct {
	mu    sync.Mutex
	files map[string]*cachedFile
}

type cachedFile struct {
	mod  time.Time
	size int64
	pf   *PasswdFile
}

func (c *fileCache) get(path string, logf func(string, ...any)) (*PasswdFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.files[path]; ok && f.mod.Equal(st.ModTime()) && f.size == st.Size() {
		return f.pf, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pf := ParsePasswdFile(path, data)
	for _, p := range pf.Problems {
		if logf != nil {
			logf("%s", p)
		}
	}
	if c.files == nil {
		c.files = map[string]*cachedFile{}
	}
	c.files[path] = &cachedFile{mod: st.ModTime(), size: st.Size(), pf: pf}
	return pf, nil
}
