package maildir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// KeywordsName is Dovecot's file mapping the letters a–z in Maildir file
// names to IMAP keywords.
const KeywordsName = "dovecot-keywords"

// MaxKeywords is how many keywords a folder can hold letters for.
const MaxKeywords = 26

// Keywords maps letter index (0 for 'a' … 25 for 'z') to keyword name;
// "" marks an unused letter.
type Keywords [MaxKeywords]string

// ParseKeywords reads dovecot-keywords: "<n> <name>" lines, n from 0 to
// 25. Lines that do not fit are skipped, as Dovecot does.
func ParseKeywords(data []byte) Keywords {
	var k Keywords
	for _, l := range strings.Split(string(data), "\n") {
		n, name, ok := strings.Cut(l, " ")
		if !ok || !validKeyword(name) {
			continue
		}
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || i >= MaxKeywords || n != strconv.Itoa(i) {
			continue
		}
		if k.Index(name) < 0 {
			k[i] = name
		}
	}
	return k
}

// Marshal writes the file back.
func (k *Keywords) Marshal() []byte {
	var b strings.Builder
	for i, name := range k {
		if name != "" {
			fmt.Fprintf(&b, "%d %s\n", i, name)
		}
	}
	return []byte(b.String())
}

// Index returns the letter index of name (keywords compare without case,
// RFC 3501 §2.3.2), or -1.
func (k *Keywords) Index(name string) int {
	for i, n := range k {
		if n != "" && strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// validKeyword reports whether s is an IMAP atom usable as a keyword
// (RFC 3501 §9: atom, no "\" flag prefix).
func validKeyword(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

var errKeywords = errors.New("no free keyword letter")

func readKeywords(dir string) (Keywords, error) {
	b, err := os.ReadFile(filepath.Join(dir, KeywordsName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Keywords{}, err
	}
	return ParseKeywords(b), nil
}

// letters returns the letters for names, adding the names k lacks; added
// reports whether k changed.
func (k *Keywords) letters(names []string) (string, bool, error) {
	var b []byte
	added := false
	for _, n := range names {
		if !validKeyword(n) {
			return "", false, fmt.Errorf("invalid keyword %q", n)
		}
		i := k.Index(n)
		if i < 0 {
			for j := range k {
				if k[j] == "" {
					i = j
					break
				}
			}
			if i < 0 {
				return "", false, errKeywords
			}
			k[i] = n
			added = true
		}
		b = append(b, byte('a'+i))
	}
	return string(b), added, nil
}

// writeKeywords replaces dir's dovecot-keywords through a temporary file.
func writeKeywords(dir string, k *Keywords, opts Options) error {
	return writeAtomic(filepath.Join(dir, KeywordsName), k.Marshal(), opts)
}

// writeAtomic writes path through a temporary file renamed over it.
func writeAtomic(path string, data []byte, opts Options) error {
	tmp := fmt.Sprintf("%s.%d.%s.tmp", path, os.Getpid(), strconv.FormatUint(counter.Add(1), 10))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0600)
	if err != nil {
		return err
	}
	chown(int(f.Fd()), opts)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
