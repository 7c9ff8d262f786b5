package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Queue is one queue_directory with the main.cf settings that shape it.
type Queue struct {
	Dir       string          // queue_directory
	LongIDs   bool            // enable_long_queue_ids
	HashDepth int             // hash_queue_depth
	HashNames map[string]bool // hash_queue_names
	// Owner, when set, is the uid and gid new queue files are given
	// (mail_owner), for writers that run as root.
	Owner *[2]int
	// LineLimit is line_length_limit, the record length MessageSize
	// counts with (DefaultLineLimit when 0).
	LineLimit int
}

// New returns the queue at dir with Postfix's defaults: short IDs, and
// deferred and defer hashed one level deep.
func New(dir string) *Queue {
	return &Queue{Dir: dir, HashDepth: 1, HashNames: map[string]bool{Deferred: true, Defer: true}}
}

// SetHashNames sets HashNames from a hash_queue_names value (names
// separated by commas and/or white space).
func (q *Queue) SetHashNames(value string) {
	q.HashNames = map[string]bool{}
	for _, n := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		q.HashNames[n] = true
	}
}

// ErrNotFound is returned when a queue file does not exist.
var ErrNotFound = errors.New("no such queue file")

// subdir returns the hashed subdirectory path ("3" or "3/F") of id in
// queue name, or "" when that queue is not hashed.
func (q *Queue) subdir(name, id string) string {
	if !q.HashNames[name] || q.HashDepth <= 0 {
		return ""
	}
	key := hashKey(id)
	parts := make([]string, 0, q.HashDepth)
	for i := 0; i < q.HashDepth && i < len(key); i++ {
		parts = append(parts, key[i:i+1])
	}
	return filepath.Join(parts...)
}

// Path is the file name of message id in queue (or logfile directory)
// name.
func (q *Queue) Path(name, id string) string {
	return filepath.Join(q.Dir, name, q.subdir(name, id), id)
}

// locate finds id in queue name: at its hashed path first, then at the
// path of every other hash depth (hash settings may have changed since
// the file was written; postsuper -s moves such files). It looks at a few
// names, never through a whole queue: a message's logfiles are looked up
// at every removal, and there may be thousands of others.
func (q *Queue) locate(name, id string) (string, error) {
	p := q.Path(name, id)
	if _, err := os.Lstat(p); err == nil {
		return p, nil
	}
	key := hashKey(id)
	dir := filepath.Join(q.Dir, name)
	for depth := 0; depth <= len(key); depth++ {
		if depth > 0 {
			dir = filepath.Join(dir, key[depth-1:depth])
			if _, err := os.Lstat(dir); err != nil {
				break
			}
		}
		if c := filepath.Join(dir, id); c != p {
			if _, err := os.Lstat(c); err == nil {
				return c, nil
			}
		}
	}
	return "", fmt.Errorf("%s/%s: %w", name, id, ErrNotFound)
}

// List returns the queue IDs in queue name, sorted, descending into
// one-character hash subdirectories. Files whose names are not queue IDs
// (temporary files among them) are skipped. A missing queue is empty.
func (q *Queue) List(name string) ([]string, error) {
	var ids []string
	err := q.walk(name, func(path, id string) { ids = append(ids, id) }, nil)
	sort.Strings(ids)
	return ids, err
}

// walk calls msg for each queue file and other (when not nil) for each
// other regular file in queue name.
func (q *Queue) walk(name string, msg func(path, id string), other func(path string)) error {
	root := filepath.Join(q.Dir, name)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipAll
			}
			return err
		}
		if d.IsDir() {
			if path != root && len(d.Name()) != 1 {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if ValidID(d.Name()) {
			msg(path, d.Name())
		} else if other != nil {
			other(path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan directory %s: %w", root, unwrapPath(err))
	}
	return nil
}

// Find returns the message queue holding id, searching MessageQueues and
// corrupt.
func (q *Queue) Find(id string) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	for _, name := range append(MessageQueues, Corrupt) {
		if _, err := q.locate(name, id); err == nil {
			return name, nil
		}
	}
	return "", fmt.Errorf("%s: %w", id, ErrNotFound)
}

// Move moves message id from queue from to queue to, atomically (one
// rename). The message's logfiles stay where they are.
func (q *Queue) Move(id, from, to string) error {
	src, err := q.locate(from, id)
	if err != nil {
		return err
	}
	dst := q.Path(to, id)
	if err := q.mkSubdir(to, id); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("rename %s to %s: %w", src, dst, unwrapPath(err))
	}
	// No directory fsync, as in Postfix: a rename is atomic, so after a
	// crash the file is under its old or its new name, and qmgr scans
	// every queue it may be in at start. The file's content (and its
	// recipients' done marks) are fsynced where they are written.
	return nil
}

// Remove deletes message id from queue name and its bounce, defer and
// trace logfiles.
func (q *Queue) Remove(name, id string) error {
	p, err := q.locate(name, id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("remove %s: %w", p, unwrapPath(err))
	}
	// No directory fsync: a removal undone by a crash brings back a file
	// whose recipients are all marked done (or, for maildrop, a message
	// picked up again), the same window Postfix has.
	return q.RemoveLogs(id)
}

// RemoveLogs deletes the bounce, defer and trace logfiles of id, if any.
func (q *Queue) RemoveLogs(id string) error {
	for _, l := range LogQueues {
		if err := q.RemoveLog(l, id); err != nil {
			return err
		}
	}
	return nil
}

// mkSubdir creates the hashed subdirectories for id in queue name, owned
// like the queue directory itself.
func (q *Queue) mkSubdir(name, id string) error {
	sub := q.subdir(name, id)
	if sub == "" {
		return nil
	}
	top := filepath.Join(q.Dir, name)
	fi, err := os.Stat(top)
	if err != nil {
		return fmt.Errorf("queue directory %s: %w", top, unwrapPath(err))
	}
	dir := top
	for _, part := range strings.Split(sub, string(filepath.Separator)) {
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, fi.Mode().Perm()); err != nil {
			if os.IsExist(err) {
				continue
			}
			return fmt.Errorf("create directory %s: %w", dir, unwrapPath(err))
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
			_ = os.Lchown(dir, int(st.Uid), int(st.Gid))
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	return nil
}

// syncDir fsyncs a directory so that entries created, renamed or removed
// in it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, unwrapPath(err))
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, unwrapPath(err))
	}
	return nil
}
