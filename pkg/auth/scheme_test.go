package auth

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestVerifyMkpasswd checks the crypt(3) schemes against hashes this
// machine's own mkpasswd (libxcrypt, as chpasswd uses) makes.
func TestVerifyMkpasswd(t *testing.T) {
	if _, err := exec.LookPath("mkpasswd"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mkpasswd (apt package whois) is needed")
		}
		t.Skip("mkpasswd (apt package whois) is not installed")
	}
	for _, m := range [][]string{{"md5crypt"}, {"sha256crypt"}, {"sha512crypt"}, {"sha512crypt", "-R", "10000"},
		{"yescrypt"}, {"bcrypt"}, {"bcrypt-a"}} {
		for _, pw := range []string{"secret", "pässwörd with spaces", ""} {
			out, err := exec.Command("mkpasswd", append([]string{"-m"}, append(m, "--", pw)...)...).Output()
			if err != nil {
				if pw == "" {
					continue // mkpasswd refuses an empty password for some methods
				}
				t.Fatalf("mkpasswd %v: %v", m, err)
			}
			h := strings.TrimSpace(string(out))
			for _, stored := range []string{h, "{CRYPT}" + h} {
				if ok, err := Verify(stored, pw, "CRYPT"); !ok || err != nil {
					t.Errorf("Verify(%q, %q) = %v, %v; want true", stored, pw, ok, err)
				}
				if ok, err := Verify(stored, pw+"x", "CRYPT"); ok || err != nil {
					t.Errorf("Verify(%q, wrong) = %v, %v; want false", stored, ok, err)
				}
			}
		}
	}
}

// TestGenerate makes a hash in every scheme and checks it back.
func TestGenerate(t *testing.T) {
	for _, s := range Schemes() {
		h, err := Generate(s, "secret", GenOptions{})
		if err != nil {
			t.Fatalf("Generate(%s): %v", s, err)
		}
		if !strings.HasPrefix(h, "{"+s+"}") {
			t.Errorf("Generate(%s) = %q: no {%s} prefix", s, h, s)
		}
		if ok, err := Verify(h, "secret", "PLAIN"); !ok || err != nil {
			t.Errorf("Verify(%q) = %v, %v", h, ok, err)
		}
		if ok, _ := Verify(h, "Secret", "PLAIN"); ok {
			t.Errorf("Verify(%q) accepts a wrong password", h)
		}
	}
	want := map[string]string{"CRYPT": "{CRYPT}$2y$05$", "BLF-CRYPT": "{BLF-CRYPT}$2y$05$", "MD5-CRYPT": "{MD5-CRYPT}$1$",
		"SHA256-CRYPT": "{SHA256-CRYPT}$5$", "SHA512-CRYPT": "{SHA512-CRYPT}$6$"}
	for s, prefix := range want {
		h, _ := Generate(s, "x", GenOptions{})
		if !strings.HasPrefix(h, prefix) || strings.Contains(h, "rounds=") {
			t.Errorf("Generate(%s) = %q; want %s... without rounds=", s, h, prefix)
		}
	}
	h, _ := Generate("SHA512-CRYPT", "x", GenOptions{Rounds: 1000})
	if !strings.HasPrefix(h, "{SHA512-CRYPT}$6$rounds=1000$") {
		t.Errorf("-r 1000: %q", h)
	}
	if _, err := Generate("FOO", "x", GenOptions{}); err != ErrUnknownScheme {
		t.Errorf("Generate(FOO) error = %v", err)
	}
}

// TestVerifyKnown checks digests worked out independently (RFC 2307
// style {SSHA512} is base64 of digest+salt; hex is accepted too).
func TestVerifyKnown(t *testing.T) {
	for _, c := range []struct {
		stored, pw string
		ok         bool
	}{
		{"{PLAIN}secret", "secret", true},
		{"{plain}secret", "secret", true},
		{"secret", "secret", true}, // default scheme PLAIN
		{"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret", true},
		{"{SHA1.HEX}e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4", "secret", true},
		{"{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=", "secret", true},
		{"{PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69", "secret", true},
		{"{LDAP-MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==", "secret", true},
		{"{PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69", "Secret", false},
	} {
		ok, err := Verify(c.stored, c.pw, "PLAIN")
		if ok != c.ok || err != nil {
			t.Errorf("Verify(%q, %q) = %v, %v; want %v", c.stored, c.pw, ok, err, c.ok)
		}
	}
	for _, bad := range []string{"{FOO}x", "{SSHA512}!!!", "{SHA512}c2hvcnQ=", "{MD5-CRYPT}$1$", "{CRYPT}$6$"} {
		if ok, err := Verify(bad, "x", "PLAIN"); ok || err == nil {
			t.Errorf("Verify(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
	// A locked shadow entry never matches.
	for _, locked := range []string{"!", "*", "!!", "!$6$abc$def"} {
		if ok, _ := Verify(locked, "", "CRYPT"); ok {
			t.Errorf("Verify(%q, \"\") matched", locked)
		}
	}
}

// FuzzVerify feeds the scheme decoder stored passwords: it must never
// panic, and a PLAIN password must match itself.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{"{PLAIN}x", "{SSHA512}RK0LueZTe0Bl2+KwdXFBzDgS5cIcgw2a3a1yOv0edilBPtaPHmzG9MD7KVDvPHjfH8pvXLd0cMLd+8q6mRva3jE3xn0=",
		"{CRYPT}$2y$05$Z1TaNEGbRafYZgLia1eiH.p5jMRiHfJyCUcN883jolApfDjVhl4bi", "{MD5-CRYPT}$1$IQXDph95$gWjoI1DRYhDONxRDjW2jf1",
		"$y$j9T$S0oRdXt8bWRSCiWls5VEB/$95i0Kxr2abkOZjH1BgW0TS/mUbkCaTt.mLb9Keuz.b8", "{SHA1.HEX}zz", "{", "{}", "{X.B64}", "$6$rounds=1$a$b",
		"$2y$99$abc", "$y$", "$5$rounds=99999999999$x$y"} {
		f.Add(s, "secret")
	}
	f.Fuzz(func(t *testing.T, stored, pw string) {
		if strings.Contains(stored, "rounds=") || strings.Contains(stored, "$2") || strings.Contains(stored, "$y$") {
			// A huge rounds=, bcrypt cost or yescrypt N is a slow hash (which
			// only the passdb's owner can write), not a bug.
			return
		}
		Verify(stored, pw, "CRYPT")
		if ok, err := Verify("{PLAIN}"+pw, pw, "CRYPT"); !ok || err != nil {
			t.Fatalf("PLAIN %q does not match itself", pw)
		}
	})
}
