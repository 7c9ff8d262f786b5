package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"strings"

	"github.com/go-crypt/crypt"
	"github.com/go-crypt/crypt/algorithm"
	"github.com/go-crypt/crypt/algorithm/md5crypt"
	"github.com/go-crypt/crypt/algorithm/scrypt"
	"github.com/go-crypt/crypt/algorithm/shacrypt"
	xbcrypt "github.com/go-crypt/x/bcrypt"
)

// ErrUnknownScheme is returned for a {SCHEME} Dovecot does not know.
var ErrUnknownScheme = errors.New("Unknown scheme")

// digestSchemes are the plain and salted digest schemes: the hash and, for
// salted ones, that the salt follows the digest.
var digestSchemes = map[string]struct {
	new    func() hash.Hash
	salted bool
}{
	"SHA": {sha1.New, false}, "SHA1": {sha1.New, false}, "SSHA": {sha1.New, true},
	"SHA256": {sha256.New, false}, "SSHA256": {sha256.New, true},
	"SHA512": {sha512.New, false}, "SSHA512": {sha512.New, true},
	"PLAIN-MD5": {md5.New, false}, "LDAP-MD5": {md5.New, false}, "SMD5": {md5.New, true},
}

// cryptSchemes are the crypt(3) schemes and the hash prefix each makes.
var cryptSchemes = map[string]string{
	"CRYPT": "", "MD5-CRYPT": "$1$", "MD5": "$1$", "SHA256-CRYPT": "$5$", "SHA512-CRYPT": "$6$", "BLF-CRYPT": "$2y$",
}

// Schemes lists the schemes Verify and Generate know, as doveadm pw -l
// prints them.
func Schemes() []string {
	return []string{"SHA1", "SSHA512", "BLF-CRYPT", "PLAIN", "SHA256", "SMD5", "SHA512-CRYPT", "CLEAR",
		"CLEARTEXT", "SSHA", "PLAIN-MD5", "SHA", "SHA512", "MD5-CRYPT", "SHA256-CRYPT", "CRYPT", "LDAP-MD5",
		"SSHA256", "MD5"}
}

// SplitScheme splits a stored password "{SCHEME}data" into the upper-cased
// scheme and the data; without a prefix the scheme is def.
func SplitScheme(stored, def string) (scheme, data string) {
	if strings.HasPrefix(stored, "{") {
		if i := strings.IndexByte(stored, '}'); i > 1 {
			return strings.ToUpper(stored[1:i]), stored[i+1:]
		}
	}
	return strings.ToUpper(def), stored
}

// knownScheme reports whether scheme (with an optional .HEX/.B64 suffix)
// is one Verify understands.
func knownScheme(scheme string) bool {
	base, _ := cutEncoding(scheme)
	switch base {
	case "PLAIN", "CLEAR", "CLEARTEXT":
		return true
	}
	_, c := cryptSchemes[base]
	_, d := digestSchemes[base]
	return c || d
}

// cutEncoding splits a ".HEX", ".B64" or ".BASE64" suffix off a scheme.
func cutEncoding(scheme string) (base, enc string) {
	if i := strings.LastIndexByte(scheme, '.'); i > 0 {
		switch e := scheme[i+1:]; e {
		case "HEX", "B64", "BASE64":
			return scheme[:i], e
		}
	}
	return scheme, ""
}

// Verify reports whether password matches stored, a password as a passdb
// holds it ("{SHA512-CRYPT}$6$..." or, without a prefix, in scheme def).
// A stored value that cannot be decoded is an error, not a mismatch.
func Verify(stored, password, def string) (bool, error) {
	scheme, data := SplitScheme(stored, def)
	base, enc := cutEncoding(scheme)
	switch base {
	case "PLAIN", "CLEAR", "CLEARTEXT":
		return subtle.ConstantTimeCompare([]byte(data), []byte(password)) == 1, nil
	}
	if _, ok := cryptSchemes[base]; ok {
		return verifyCrypt(data, password)
	}
	d, ok := digestSchemes[base]
	if !ok {
		return false, ErrUnknownScheme
	}
	raw, err := decodeDigest(data, enc, d.new().Size(), d.salted)
	if err != nil {
		return false, err
	}
	size := d.new().Size()
	if len(raw) < size || !d.salted && len(raw) != size {
		return false, errors.New("invalid " + base + " password length")
	}
	h := d.new()
	h.Write([]byte(password))
	h.Write(raw[size:])
	return subtle.ConstantTimeCompare(h.Sum(nil), raw[:size]) == 1, nil
}

// decodeDigest decodes a digest as Dovecot stores it: base64 unless enc
// says hex, or the text is exactly a hex digest of the right size.
func decodeDigest(data, enc string, size int, salted bool) ([]byte, error) {
	if enc == "HEX" || enc == "" && !salted && len(data) == 2*size && isHex(data) {
		return hex.DecodeString(data)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(data)
	}
	if err != nil {
		return nil, errors.New("invalid base64 password")
	}
	return b, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

var cryptDecoder = func() *crypt.Decoder {
	d := crypt.NewDecoder()
	for _, reg := range []func(algorithm.DecoderRegister) error{md5crypt.RegisterDecoderCommon,
		shacrypt.RegisterDecoder, scrypt.RegisterDecoderYescrypt} {
		if err := reg(d); err != nil {
			panic(err)
		}
	}
	return d
}()

// verifyCrypt checks password against a crypt(3) hash: $1$ (MD5), $5$ and
// $6$ (SHA-256 and SHA-512), $2a$, $2b$ and $2y$ (bcrypt) and $y$ (yescrypt).
func verifyCrypt(hashed, password string) (bool, error) {
	if !strings.HasPrefix(hashed, "$") {
		// A locked or disabled account ("!", "*", "!!"), or a DES hash.
		return false, nil
	}
	if strings.HasPrefix(hashed, "$2") {
		err := xbcrypt.CompareHashAndPassword([]byte(hashed), []byte(password))
		if errors.Is(err, xbcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, errors.New("invalid bcrypt password")
		}
		return true, nil
	}
	d, err := cryptDecoder.Decode(hashed)
	if err != nil {
		return false, errors.New("invalid crypt password")
	}
	return d.MatchAdvanced(password)
}

// GenOptions are doveadm pw's options for a new hash.
type GenOptions struct {
	User   string // -u: the user name, for schemes salted with it
	Rounds int    // -r: SHA-crypt rounds or bcrypt cost; 0 for the default
}

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// cryptSalt returns n random characters of crypt(3)'s alphabet.
func cryptSalt(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = cryptAlphabet[int(b[i])%len(cryptAlphabet)]
	}
	return b
}

// Generate hashes password in scheme, as doveadm pw -s does, and returns
// it with its "{SCHEME}" prefix.
func Generate(scheme, password string, o GenOptions) (string, error) {
	scheme = strings.ToUpper(scheme)
	base, enc := cutEncoding(scheme)
	var out string
	switch base {
	case "PLAIN", "CLEAR", "CLEARTEXT":
		out = password
	case "CRYPT", "BLF-CRYPT":
		// Dovecot's default bcrypt cost is 5, below what go-crypt's
		// hasher allows; the bcrypt core takes it.
		cost := 5
		if o.Rounds != 0 {
			cost = o.Rounds
		}
		h, err := xbcrypt.GenerateFromPassword([]byte(password), cost)
		if err != nil {
			return "", err
		}
		out = "$2y$" + string(h[4:])
	case "MD5-CRYPT", "MD5":
		h, err := md5crypt.New()
		if err != nil {
			return "", err
		}
		d, err := h.HashWithSalt(password, cryptSalt(8))
		if err != nil {
			return "", err
		}
		out = d.Encode()
	case "SHA256-CRYPT", "SHA512-CRYPT":
		opt := shacrypt.WithSHA512()
		if base == "SHA256-CRYPT" {
			opt = shacrypt.WithSHA256()
		}
		rounds := 5000
		if o.Rounds != 0 {
			rounds = o.Rounds
		}
		h, err := shacrypt.New(opt, shacrypt.WithRounds(rounds))
		if err != nil {
			return "", err
		}
		d, err := h.HashWithSalt(password, cryptSalt(16))
		if err != nil {
			return "", err
		}
		out = d.Encode()
		if o.Rounds == 0 {
			// crypt(3) leaves out the default "rounds=5000$".
			out = strings.Replace(out, "$rounds=5000$", "$", 1)
		}
	default:
		d, ok := digestSchemes[base]
		if !ok {
			return "", ErrUnknownScheme
		}
		var salt []byte
		if d.salted {
			salt = make([]byte, 4)
			rand.Read(salt)
		}
		h := d.new()
		h.Write([]byte(password))
		h.Write(salt)
		raw := append(h.Sum(nil), salt...)
		if enc == "HEX" || enc == "" && base == "PLAIN-MD5" {
			out = hex.EncodeToString(raw)
		} else {
			out = base64.StdEncoding.EncodeToString(raw)
		}
	}
	return "{" + scheme + "}" + out, nil
}
