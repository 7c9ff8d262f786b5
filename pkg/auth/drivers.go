package auth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"

	"postdove/pkg/doveconf"
	"postdove/pkg/syserr"
)

// passwdFileDB is the passwd-file driver, as passdb and as userdb:
// args = [scheme=S] [username_format=F] PATH, where PATH may hold %u, %n
// and %d.
type passwdFileDB struct {
	path, scheme, format string
	cache                fileCache
	logf                 func(string, ...any) // where skipped lines are reported
}

func newPasswdFileDB(args string) *passwdFileDB {
	db := &passwdFileDB{scheme: "CRYPT", format: "%u"}
	for _, w := range strings.Fields(args) {
		switch {
		case strings.HasPrefix(w, "scheme="):
			db.scheme = strings.ToUpper(w[len("scheme="):])
		case strings.HasPrefix(w, "username_format="):
			db.format = w[len("username_format="):]
		default:
			db.path = w
		}
	}
	return db
}

func (db *passwdFileDB) entry(user string) (*Entry, error) {
	v := doveconf.Vars{User: user}
	path := v.Expand(db.path)
	pf, err := db.cache.get(path, db.logf)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && path != db.path {
			// A per-domain file that does not exist: no such user.
			return nil, fail(UnknownUser, "unknown user")
		}
		return nil, fail(Temporary, fmt.Sprintf("open(%s) failed: %s", path, syserr.Text(err)))
	}
	e, ok := pf.Users[v.Expand(db.format)]
	if !ok {
		return nil, fail(UnknownUser, "unknown user")
	}
	return e, nil
}

func (db *passwdFileDB) verify(ctx context.Context, req *Request) ([]Field, error) {
	e, err := db.entry(req.User)
	if err != nil {
		return nil, err
	}
	return checkPassword(e.Password, req.Password, db.scheme, e.Extra)
}

// checkPassword checks password against stored and returns the extra
// fields: an empty stored password accepts any password with
// nopassword=y and none without; a stored password is always checked,
// nopassword or not, as Dovecot does.
func checkPassword(stored, password, scheme string, extra []Field) ([]Field, error) {
	if stored == "" && truthy(extra, "nopassword") {
		return extra, nil
	}
	if stored == "" {
		return nil, fail(Failed, "Empty password")
	}
	ok, err := Verify(stored, password, scheme)
	if errors.Is(err, ErrUnknownScheme) {
		s, _ := SplitScheme(stored, scheme)
		return nil, fail(Temporary, "Unknown scheme "+s)
	}
	if err != nil {
		return nil, fail(Temporary, err.Error())
	}
	if !ok {
		return nil, fail(Failed, "Password mismatch")
	}
	return extra, nil
}

func (db *passwdFileDB) lookup(ctx context.Context, name string) (*User, error) {
	e, err := db.entry(name)
	if err != nil {
		return nil, err
	}
	var fields []Field
	if e.UID != "" {
		fields = append(fields, Field{"uid", e.UID})
	}
	if e.GID != "" {
		fields = append(fields, Field{"gid", e.GID})
	}
	if e.Home != "" {
		fields = append(fields, Field{"home", e.Home})
	}
	for _, f := range e.Extra {
		if k, ok := strings.CutPrefix(f.Key, "userdb_"); ok {
			fields = setField(fields, k, f.Value)
		}
	}
	return &User{Name: name, Fields: fields}, nil
}

// staticPassdb is the static passdb: args = password=P or nopassword=y,
// plus any extra fields; it knows every user.
type staticPassdb struct{ fields []Field }

func (db *staticPassdb) verify(ctx context.Context, req *Request) ([]Field, error) {
	var extra []Field
	pw := ""
	for _, f := range db.fields {
		if f.Key == "password" {
			pw = f.Value
			continue
		}
		extra = append(extra, Field{f.Key, doveconf.Vars{User: req.User}.Expand(f.Value)})
	}
	return checkPassword(pw, req.Password, "PLAIN", extra)
}

// staticUserdb is the static userdb: args = uid=U gid=G home=H ... with
// %u, %n and %d expanded, for every user.
type staticUserdb struct{ fields []Field }

func newStaticUserdb(args string) *staticUserdb {
	var fs []Field
	for _, f := range ParseFields(args) {
		if f.Key != "allow_all_users" {
			fs = append(fs, f)
		}
	}
	return &staticUserdb{fields: fs}
}

func (db *staticUserdb) lookup(ctx context.Context, name string) (*User, error) {
	v := doveconf.Vars{User: name}
	out := make([]Field, len(db.fields))
	for i, f := range db.fields {
		out[i] = Field{f.Key, v.Expand(f.Value)}
	}
	return &User{Name: name, Fields: out}, nil
}

// passwdUserdb is the passwd userdb: the system's accounts (getpwnam).
type passwdUserdb struct{}

func (passwdUserdb) lookup(ctx context.Context, name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil, fail(UnknownUser, "unknown user")
		}
		return nil, fail(Temporary, "getpwnam("+name+") failed: "+err.Error())
	}
	return &User{Name: name, Fields: []Field{{"system_groups_user", u.Username}, {"uid", u.Uid}, {"gid", u.Gid}, {"home", u.HomeDir}}}, nil
}

// passwdPassdb is the passwd passdb: the password field of the system's
// passwd entry (rarely set now that passwords live in /etc/shadow).
type passwdPassdb struct{}

func (passwdPassdb) verify(ctx context.Context, req *Request) ([]Field, error) {
	pw, err := lookupColonFile("/etc/passwd", req.User)
	if err != nil {
		return nil, err
	}
	return checkPassword(pw, req.Password, "CRYPT", nil)
}

// shadowDB is the shadow passdb: the password hash in /etc/shadow,
// checked with crypt(3)'s schemes.
type shadowDB struct{ path string }

func (db *shadowDB) verify(ctx context.Context, req *Request) ([]Field, error) {
	pw, err := lookupColonFile(db.path, req.User)
	if err != nil {
		return nil, err
	}
	return checkPassword(pw, req.Password, "CRYPT", nil)
}

// lookupColonFile returns the second field of name's line in a
// passwd-style file.
func lookupColonFile(path, name string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fail(Temporary, fmt.Sprintf("open(%s) failed: %s", path, syserr.Text(err)))
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		user, rest, _ := strings.Cut(sc.Text(), ":")
		if user == name && name != "" {
			pw, _, _ := strings.Cut(rest, ":")
			return pw, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fail(Temporary, fmt.Sprintf("read(%s) failed: %v", path, err))
	}
	return "", fail(UnknownUser, "unknown user")
}

// resolveID turns a uid or gid (a number or a name) into a number.
func resolveID(v string, group bool) (int, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return n, nil
	}
	if group {
		g, err := user.LookupGroup(v)
		if err != nil {
			return 0, fmt.Errorf("Invalid gid: %s", v)
		}
		return strconv.Atoi(g.Gid)
	}
	u, err := user.Lookup(v)
	if err != nil {
		return 0, fmt.Errorf("Invalid uid: %s", v)
	}
	return strconv.Atoi(u.Uid)
}
