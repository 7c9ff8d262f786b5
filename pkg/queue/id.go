package queue

import (
	"fmt"
	"strings"
	"time"
)

// Postfix's long queue ID alphabets: digits and consonants. Base 51 leaves
// out 'z', which separates the time from the inode number.
const (
	base52 = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"
	base51 = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy"
)

// ShortID is Postfix's short queue ID: the microseconds of t as five hex
// digits, then the inode number in hex.
func ShortID(t time.Time, inode uint64) string {
	return fmt.Sprintf("%05X%X", t.Nanosecond()/1000, inode)
}

// LongID is Postfix's long queue ID (enable_long_queue_ids = yes).
func LongID(t time.Time, inode uint64) string {
	var b strings.Builder
	b.WriteString(encode(uint64(t.Unix()), base52, 6))
	b.WriteString(encode(uint64(t.Nanosecond()/1000), base52, 4))
	b.WriteByte('z')
	b.WriteString(encode(inode, base51, 0))
	return b.String()
}

func encode(n uint64, alphabet string, width int) string {
	base := uint64(len(alphabet))
	var buf [32]byte
	i := len(buf)
	for {
		i--
		buf[i] = alphabet[n%base]
		n /= base
		if n == 0 {
			break
		}
	}
	for len(buf)-i < width {
		i--
		buf[i] = alphabet[0]
	}
	return string(buf[i:])
}

func decode(s, alphabet string) (uint64, bool) {
	var n uint64
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(alphabet, s[i])
		if d < 0 {
			return 0, false
		}
		n = n*uint64(len(alphabet)) + uint64(d)
	}
	return n, true
}

// IsLongID reports whether id has the long queue ID syntax.
func IsLongID(id string) bool {
	if len(id) < 12 || id[10] != 'z' {
		return false
	}
	if _, ok := decode(id[:10], base52); !ok {
		return false
	}
	_, ok := decode(id[11:], base51)
	return ok
}

// IsShortID reports whether id has the short queue ID syntax: upper-case
// hex digits, at least six of them.
func IsShortID(id string) bool {
	if len(id) < 6 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// ValidID reports whether id can name a queue file: a short or long
// queue ID. Anything else in a queue directory (temporary files, junk) is
// not a message.
func ValidID(id string) bool {
	return IsShortID(id) || IsLongID(id)
}

// hashKey is the string whose first characters name an ID's hashed
// subdirectories: the ID itself for short IDs, and for long IDs the
// microseconds in hex, so that both kinds spread over 0-F alike.
func hashKey(id string) string {
	if IsLongID(id) {
		usec, _ := decode(id[6:10], base52)
		return fmt.Sprintf("%05X", usec)
	}
	return id
}

// ValidName is Postfix's syntax check for a queue ID a user gives
// (postqueue -i, postsuper -d): letters and digits only, 1 to 100 of them.
func ValidName(id string) bool {
	if id == "" || len(id) > 100 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}
