package maildir

import (
	"io"
	"strings"
	"testing"
	"time"
)

func FuzzParseUidlist(f *testing.F) {
	for _, s := range []string{
		"3 V1795757429 N1 Gc8d5b32b7515096bec17000083ecc375\n1 :1795757429.M732127P6124.vm,S=18,W=21\n",
		"3 V1 N5\n4 W1044 S1020 :a\n5 :b",
		"1 1000 7\n3 1000.P1.host\n",
		"3 V4294967295 N4294967295\n4294967295 :x\n",
		"3 V1\n0 :x\n", "", "3\n", "3 V\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseUidlist(data)
		if err != nil {
			return
		}
		// What we write, we read back the same.
		v, err := ParseUidlist(u.Marshal())
		if err != nil {
			if u.Version == 1 || strings.ContainsAny(string(data), "\r\t\v\f") {
				return // names or fields the version 3 form can not carry
			}
			t.Fatalf("re-read: %v\n%q", err, u.Marshal())
		}
		if v.UIDValidity != u.UIDValidity || len(v.Records) != len(u.Records) {
			t.Fatalf("round trip changed %q", data)
		}
	})
}

func FuzzParseKeywords(f *testing.F) {
	for _, s := range []string{"0 $Junk\n1 foo\n", "25 z\n26 no\n", "-1 x\n", "0 a b\n0 c\n", "\n\n 1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k := ParseKeywords(data)
		if k2 := ParseKeywords(k.Marshal()); k2 != k {
			t.Fatalf("round trip %q: %q != %q", data, k2, k)
		}
	})
}

func FuzzParseSubscriptions(f *testing.F) {
	for _, s := range []string{"V\t2\n\nINBOX\n&AMQ-rger\tSteuer\na&-b\n", "INBOX\nWork.2026\n", "V\t2\n\n\t\n&\n&AMQ\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		names := ParseSubscriptions(data)
		got := ParseSubscriptions(MarshalSubscriptions(names))
		if strings.Join(got, "\n") != strings.Join(names, "\n") {
			t.Fatalf("round trip %q: %q != %q", data, got, names)
		}
	})
}

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "&AMQ-rger", "a&-b", "&2D3eAA-", "&", "&U,BTFw-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := DecodeMUTF7(s); err == nil {
			if e := EncodeMUTF7(d); e != s {
				t.Fatalf("%q decodes to %q, which encodes to %q", s, d, e)
			}
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	f.Add(marshalIndex(&index{uidValidity: 7, uidNext: 9, guid: "g", msgs: []Message{
		{UID: 3, File: "1.M1P1.vm,S=5,W=6:2,Sa", Base: "1.M1P1.vm,S=5,W=6", Sub: "cur", Info: "Sa", Size: 5, VSize: 6, Date: time.Unix(0, 12345)},
		{UID: 4, File: "2.M1P1.vm", Base: "2.M1P1.vm", Sub: "new", Size: 1, VSize: 2, env: encodeEnvelope(&Envelope{Subject: "s\xe4", To: "a,\tb"})},
	}}))
	f.Add([]byte(indexMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := parseIndex(data)
		if err != nil {
			return
		}
		if _, err := parseIndex(marshalIndex(x)); err != nil {
			t.Fatalf("re-read: %v", err)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{envMsg, "Subject: a\n b\n\nbody", "\n\nTo: x\n", "To", "cc:\r\n\r\n", "From: \xff\xfe\r\n\tx\r\nX: y", "To: a\r\nSubject: " + strings.Repeat("long ", 1000) + "\r\n\r\nbody"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		e := parseEnvelope(data)
		for _, v := range e.fields() {
			if len(*v) > MaxEnvelopeField || strings.ContainsAny(*v, "\r\n") {
				t.Fatalf("field %q", *v)
			}
		}
		m := Message{env: encodeEnvelope(&e)}
		if !validEnvelope(m.env) {
			t.Fatal("invalid encoding")
		}
		if d, ok := m.Envelope(); !ok || d != e {
			t.Fatalf("round trip %+v != %+v", d, e)
		}
		// Written in pieces, the captured header holds the same.
		var c headerCapture
		n := int(split) + 1
		for i := 0; i < len(data); i += n {
			c.Write(data[i:min(i+n, len(data))])
		}
		if got := parseEnvelope(c.buf); got != e {
			t.Fatalf("captured %q: %+v != %+v", c.buf, got, e)
		}
		// Read from a file in pieces, the same; the scratch buffer
		// left over from a longer header changes nothing.
		scratch := []byte("Subject: left over\n\n")
		if got := readEnvelopeFile(&pieceReader{data, n}, &scratch); got != m.env {
			t.Fatalf("read in pieces of %d: %q != %q", n, got, m.env)
		}
	})
}

// pieceReader reads data n bytes at a time at most.
type pieceReader struct {
	data []byte
	n    int
}

func (r *pieceReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.data)
	r.data = r.data[k:]
	return k, nil
}
