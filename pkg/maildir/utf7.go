package maildir

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// mutf7 is the base64 alphabet of modified UTF-7 (RFC 3501 §5.1.3): ","
// instead of "/", no padding.
var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding).Strict()

var errUTF7 = errors.New("invalid modified UTF-7")

// EncodeMUTF7 writes a UTF-8 mailbox name in modified UTF-7 (RFC 3501
// §5.1.3), as Dovecot names Maildir++ folders on disk: printable ASCII
// stays, "&" becomes "&-", anything else is "&" base64(UTF-16BE) "-".
func EncodeMUTF7(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c <= 0x7e {
			if c == '&' {
				b.WriteString("&-")
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		j := i
		var u []uint16
		for j < len(s) && (s[j] < 0x20 || s[j] > 0x7e) {
			r, n := utf8.DecodeRuneInString(s[j:])
			u = utf16.AppendRune(u, r)
			j += n
		}
		raw := make([]byte, 0, 2*len(u))
		for _, x := range u {
			raw = append(raw, byte(x>>8), byte(x))
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(raw))
		b.WriteByte('-')
		i = j
	}
	return b.String()
}

// DecodeMUTF7 reads a modified UTF-7 name back into UTF-8. It refuses what
// RFC 3501 forbids: raw non-ASCII, an unterminated or empty shift, and
// base64 that encodes printable ASCII or broken UTF-16.
func DecodeMUTF7(s string) (string, error) {
	var b strings.Builder
	prevShift := -1 // where the last shift sequence ended
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errUTF7
		}
		enc := s[i+1 : i+1+end]
		i += end + 1
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		if prevShift == i-len(enc)-1 {
			return "", errUTF7 // two shifts in a row: one is the only form
		}
		prevShift = i + 1
		raw, err := mutf7.DecodeString(enc)
		if strings.ContainsAny(enc, "\r\n") {
			err = errUTF7 // the decoder would skip them
		}
		if err != nil || len(raw)%2 != 0 || len(raw) == 0 {
			return "", errUTF7
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for k := 0; k < len(u); k++ {
			r := rune(u[k])
			if utf16.IsSurrogate(r) {
				if k+1 >= len(u) {
					return "", errUTF7
				}
				r = utf16.DecodeRune(r, rune(u[k+1]))
				if r == utf8.RuneError {
					return "", errUTF7
				}
				k++
			} else if r >= 0x20 && r <= 0x7e {
				return "", errUTF7
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}
