package local

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
)

// User is one passwd(5) entry.
type User struct {
	Name, Home, Shell string
	Uid, Gid          int
}

// lookupUser finds name in the passwd file; (nil, nil) when there is no
// such user.
func (a *Agent) lookupUser(name string) (*User, error) {
	path := a.PasswdFile
	if path == "" {
		path = "/etc/passwd"
	}
	return LookupPasswd(path, name)
}

// LookupPasswd finds a user by name in a passwd(5) file; (nil, nil) when
// there is no such user.
func LookupPasswd(path, name string) (*User, error) {
	if name == "" || strings.ContainsAny(name, ":\n") {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 || fields[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(fields[2])
		gid, err2 := strconv.Atoi(fields[3])
		if err1 != nil || err2 != nil {
			return nil, errors.New(path + ": bad entry for " + name)
		}
		return &User{Name: name, Uid: uid, Gid: gid, Home: fields[5], Shell: fields[6]}, nil
	}
	return nil, sc.Err()
}
