package smtpd

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// tlsConfig is the server side of STARTTLS and smtps, with Postfix's
// default key exchange groups (tls_eecdh_auto_curves).
func tlsConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates:     []tls.Certificate{cert},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP521, tls.CurveP384},
	}
}

// handshake runs the TLS handshake on the session's connection and
// continues the session over TLS; a failure is logged as Postfix does.
// crypto/tls chooses the TLS 1.3 cipher itself (AES-128-GCM first),
// where OpenSSL may follow a client that lists AES-256-GCM first.
func (ss *session) handshake() error {
	tc := tls.Server(ss.conn, ss.s.tls)
	tc.SetDeadline(time.Now().Add(ss.s.timeout))
	if err := tc.HandshakeContext(ss.ctx); err != nil {
		if errors.Is(err, io.EOF) {
			ss.s.log.Info("SSL_accept error from %s: lost connection", ss.client)
		} else {
			ss.s.log.Warning("TLS library problem: %v", err)
			ss.s.log.Info("SSL_accept error from %s: -1", ss.client)
		}
		return err
	}
	tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	ss.tlsInfo = tlsDescription(st, ss.s.tls.Certificates[0])
	if ss.s.cfg.Int("smtpd_tls_loglevel") >= 1 {
		ss.s.log.Info("Anonymous TLS connection established from %s: %s %s", ss.client, ss.tlsInfo[0], ss.tlsInfo[1])
	}
	ss.conn = tc
	ss.r = bufio.NewReaderSize(tc, cmdReaderSize)
	ss.w = newReplyWriter(tc)
	ss.tlsOn = true
	return nil
}

// tlsDescription is the session as Postfix (OpenSSL) names it: "TLSv1.3
// with cipher TLS_AES_128_GCM_SHA256 (128/128 bits)" and "key-exchange
// X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256".
func tlsDescription(st tls.ConnectionState, cert tls.Certificate) [2]string {
	name := tls.CipherSuiteName(st.CipherSuite)
	bits := 256
	if strings.Contains(name, "_128_") {
		bits = 128
	}
	first := fmt.Sprintf("%s with cipher %s (%d/%d bits)", tlsVersion(st.Version), name, bits, bits)
	group := map[tls.CurveID]string{tls.X25519: "X25519", tls.CurveP256: "prime256v1", tls.CurveP384: "secp384r1",
		tls.CurveP521: "secp521r1"}[st.CurveID]
	if group == "" {
		group = st.CurveID.String()
	}
	sig := "unknown"
	if cert.Leaf != nil {
		switch k := cert.Leaf.PublicKey.(type) {
		case *rsa.PublicKey:
			sig = fmt.Sprintf("RSA (%d bits)", k.N.BitLen())
			if st.Version == tls.VersionTLS13 {
				sig = fmt.Sprintf("RSA-PSS (%d bits)", k.N.BitLen())
			}
		case *ecdsa.PublicKey:
			sig = "ECDSA (" + map[int]string{256: "prime256v1", 384: "secp384r1", 521: "secp521r1"}[k.Curve.Params().BitSize] + ")"
		case ed25519.PublicKey:
			return [2]string{first, "key-exchange " + group + " server-signature ED25519"}
		}
	}
	return [2]string{first, "key-exchange " + group + " server-signature " + sig + " server-digest SHA256"}
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	}
	return "TLSv1"
}
