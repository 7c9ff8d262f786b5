package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Exists reports whether message id is in queue name.
func (q *Queue) Exists(name, id string) bool {
	_, err := q.locate(name, id)
	return err == nil
}

// Temporary lists the files in queue name that a writer left behind
// (names starting with "tmp."), for postsuper -p.
func (q *Queue) Temporary(name string) ([]string, error) {
	var out []string
	err := q.walk(name, func(string, string) {}, func(path string) {
		if strings.HasPrefix(filepath.Base(path), "tmp.") {
			out = append(out, path)
		}
	})
	return out, err
}

// Fix puts every file of queue name at the hashed path the current
// settings give it, and moves message files that do not parse to the
// corrupt queue, returning their IDs (postsuper -s).
func (q *Queue) Fix(name string) ([]string, error) {
	type found struct{ path, id string }
	var files []found
	if err := q.walk(name, func(path, id string) { files = append(files, found{path, id}) }, nil); err != nil {
		return nil, err
	}
	isMsg := false
	for _, m := range MessageQueues {
		isMsg = isMsg || m == name
	}
	var corrupt []string
	for _, f := range files {
		want := q.Path(name, f.id)
		if f.path != want {
			if err := q.mkSubdir(name, f.id); err != nil {
				return corrupt, err
			}
			if err := os.Rename(f.path, want); err != nil {
				return corrupt, fmt.Errorf("rename %s to %s: %w", f.path, want, unwrapPath(err))
			}
			if err := syncDir(filepath.Dir(want)); err != nil {
				return corrupt, err
			}
		}
		if !isMsg {
			continue
		}
		var ce *CorruptError
		if _, err := q.ReadEnvelope(name, f.id); errors.As(err, &ce) {
			if err := q.Move(f.id, name, Corrupt); err != nil {
				return corrupt, err
			}
			corrupt = append(corrupt, f.id)
		}
	}
	return corrupt, nil
}
