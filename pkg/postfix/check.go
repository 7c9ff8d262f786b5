package postfix

import (
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"postdove/pkg/local"
	"postdove/pkg/postconf"
	"postdove/pkg/syserr"
)

func init() { Register("check", runCheck) }

func runCheck(env *Env, _ []string) error {
	// postfix-script ignores words after "check"; so do we.
	return Check(env)
}

// Check is "postfix check": it validates main.cf, master.cf, the
// ownership of the mail system's directories and the lookup tables main.cf
// and master.cf name. Problems are printed as warnings on env.Stderr; the
// error (a *Fatal) is returned only for what stops Postfix from running.
func Check(env *Env) error {
	dir := postconf.ConfigDir(env.ConfigDir)
	cfg, err := postconf.Load(dir)
	if err != nil {
		return fatalf(progPostfix, "%v", err)
	}
	for _, w := range cfg.Warnings() {
		env.warnf(progPostfix, "%s", w)
	}
	if !isRegular(filepath.Join(dir, "master.cf")) {
		return fatalf(progScript, "no %s file found", filepath.Join(dir, "master.cf"))
	}
	if err := cfg.MasterError(); err != nil {
		return fatalf(progPostfix, "%v", err)
	}
	c := &checker{env: env, cfg: cfg, dir: dir}
	c.unusedParameters()
	owner, group, err := c.accounts()
	if err != nil {
		return err
	}
	if err := c.dataDirectory(owner); err != nil {
		return err
	}
	c.ownership(owner, group)
	c.tables()
	return nil
}

// dataDirectory creates a missing data_directory as Postfix's
// post-install create-missing does: owned by mail_owner, mode 0700.
func (c *checker) dataDirectory(owner account) error {
	data := c.cfg.Get("data_directory")
	if data == "" || isDir(data) {
		return nil
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fatalf(progScript, "unable to create missing data directory %s: %s", data, syserr.Text(err))
	}
	if err := os.Chmod(data, 0o700); err != nil {
		return fatalf(progScript, "chmod %s: %s", data, syserr.Text(err))
	}
	if err := os.Lchown(data, owner.id, -1); err != nil {
		return fatalf(progScript, "chown %s: %s", data, syserr.Text(err))
	}
	return nil
}

// checker carries one run of Check.
type checker struct {
	env *Env
	cfg *postconf.Config
	dir string
}

func (c *checker) warnf(format string, a ...any) { c.env.warnf(progPostfix, format, a...) }

// scriptWarn is a warning in postfix-script's wording and prefix.
func (c *checker) scriptWarn(format string, a ...any) { c.env.warnf(progScript, format, a...) }

// unusedParameters reports main.cf names nothing uses, as postconf does,
// and suggests the known name a misspelt one was probably meant to be.
func (c *checker) unusedParameters() {
	known := postconf.KnownNames()
	for _, name := range c.cfg.Unused() {
		raw, _ := c.cfg.Raw(name)
		c.warnf("%s: unused parameter: %s=%s", c.cfg.Path(), name, raw)
		if s := Suggest(name, known); s != "" {
			c.warnf("%s, line %d: unknown parameter %q: did you mean %q?", c.cfg.Path(), c.cfg.Line(name), name, s)
		}
	}
}

// account is a resolved mail_owner or setgid_group.
type account struct {
	name string
	id   int
}

// accounts resolves mail_owner and setgid_group, and checks
// default_privs; an unknown or privileged one is fatal, as it is for
// Postfix.
func (c *checker) accounts() (owner, group account, err error) {
	owner.name = c.cfg.Get("mail_owner")
	u, lerr := user.Lookup(owner.name)
	if lerr != nil {
		return owner, group, fatalf(progPostfix, "file %s: parameter mail_owner: unknown user name value: %s", c.cfg.Path(), owner.name)
	}
	owner.id, _ = strconv.Atoi(u.Uid)
	if owner.id == 0 {
		return owner, group, fatalf(progPostfix, "file %s: parameter mail_owner: user %s has privileged user ID", c.cfg.Path(), owner.name)
	}
	group.name = c.cfg.Get("setgid_group")
	g, lerr := user.LookupGroup(group.name)
	if lerr != nil {
		return owner, group, fatalf(progPostfix, "file %s: parameter setgid_group: unknown group name: %s", c.cfg.Path(), group.name)
	}
	group.id, _ = strconv.Atoi(g.Gid)
	if group.id == 0 {
		return owner, group, fatalf(progPostfix, "file %s: parameter setgid_group: group %s has privileged group ID", c.cfg.Path(), group.name)
	}
	if _, _, err := local.DefaultPrivs(c.cfg.Get); err != nil {
		return owner, group, fatalf(progPostfix, "%v", err)
	}
	return owner, group, nil
}

// ownership is postfix-script's check-warn: who owns the queue, the
// configuration and the set-gid commands, in its wording.
func (c *checker) ownership(owner, group account) {
	queue := c.cfg.Get("queue_directory")
	if !isDir(queue) {
		c.scriptWarn("missing queue directory: %s", queue)
	} else {
		for _, p := range []string{queue + "/.", filepath.Join(queue, "pid")} {
			c.rootOwned(p)
		}
		for _, d := range []string{"saved", "incoming", "active", "defer", "deferred", "bounce", "hold", "trace", "corrupt", "public", "private", "flush"} {
			c.walkOwner(filepath.Join(queue, d), owner)
		}
		c.notOwner(filepath.Join(queue, "maildrop"), owner)
		for _, d := range []string{"public", "maildrop"} {
			c.notGroup(filepath.Join(queue, d), group)
		}
		if entries, err := os.ReadDir(filepath.Join(queue, "corrupt")); err == nil {
			for _, e := range entries {
				if e.Type().IsRegular() {
					c.scriptWarn("damaged message: corrupt/%s", e.Name())
				}
			}
		}
	}
	c.walkRoot(c.dir + "/.")
	data := c.cfg.Get("data_directory")
	if isDir(data) {
		c.walkOwner(data+"/.", owner)
	}
	cmdDir := c.cfg.Get("command_directory")
	setgid := []string{filepath.Join(cmdDir, "postqueue"), filepath.Join(cmdDir, "postdrop")}
	for _, p := range setgid {
		c.notGroup(p, group)
	}
	for _, p := range setgid {
		if st, ok := statT(p); ok && st.Mode&(syscall.S_ISGID|0o111) != syscall.S_ISGID|0o111 {
			c.scriptWarn("not set-gid or not owner+group+world executable: %s", p)
		}
	}
}

// statT and lstatT return the raw stat of path (following or not a final
// symbolic link), or false when it cannot be had.
func statT(path string) (*syscall.Stat_t, bool) { return statWith(syscall.Stat, path) }

func lstatT(path string) (*syscall.Stat_t, bool) { return statWith(syscall.Lstat, path) }

func statWith(stat func(string, *syscall.Stat_t) error, path string) (*syscall.Stat_t, bool) {
	var st syscall.Stat_t
	if err := stat(path, &st); err != nil {
		return nil, false
	}
	return &st, true
}

// rootOwned warns about one path that root must own and only root may write.
func (c *checker) rootOwned(path string) {
	st, ok := statT(path)
	if !ok {
		return
	}
	if st.Uid != 0 {
		c.scriptWarn("not owned by root: %s", path)
	}
	if st.Mode&0o022 != 0 {
		c.scriptWarn("group or other writable: %s", path)
	}
}

// walkRoot applies rootOwned to a whole tree (the configuration directory).
func (c *checker) walkRoot(top string) {
	var paths []string
	walk(top, func(p string, _ fs.DirEntry) { paths = append(paths, p) })
	for _, p := range paths {
		if st, ok := lstatT(p); ok && st.Uid != 0 {
			c.scriptWarn("not owned by root: %s", p)
		}
	}
	for _, p := range paths {
		if st, ok := statT(p); ok && st.Mode&0o022 != 0 {
			c.scriptWarn("group or other writable: %s", p)
		}
	}
}

// walkOwner warns about everything under top not owned by the mail owner
// (sockets and fifos excepted, as postfix-script does).
func (c *checker) walkOwner(top string, owner account) {
	walk(top, func(p string, d fs.DirEntry) {
		if d.Type()&(fs.ModeSocket|fs.ModeNamedPipe) == 0 {
			c.notOwner(p, owner)
		}
	})
}

// walk visits top and everything under it in lexical order, naming each
// path as find(1) would from top ("/etc/postfix/./main.cf"), without
// following symbolic links.
func walk(top string, visit func(path string, d fs.DirEntry)) {
	clean := filepath.Clean(top)
	_ = filepath.WalkDir(clean, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, rerr := filepath.Rel(clean, p)
		if rerr != nil || rel == "." {
			visit(top, d)
		} else {
			visit(top+"/"+rel, d)
		}
		return nil
	})
}

func (c *checker) notOwner(path string, owner account) {
	if st, ok := lstatT(path); ok && int(st.Uid) != owner.id {
		c.scriptWarn("not owned by %s: %s", owner.name, path)
	}
}

func (c *checker) notGroup(path string, group account) {
	if st, ok := statT(path); ok && int(st.Gid) != group.id {
		c.scriptWarn("not owned by group %s: %s", group.name, path)
	}
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

func isRegular(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// configFile is name inside the configuration directory env selects.
func configFile(env *Env, name string) string {
	return filepath.Join(postconf.ConfigDir(env.ConfigDir), name)
}
