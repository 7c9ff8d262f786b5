package smtp

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

// trust is the first word of Postfix's "... TLS connection established"
// line: Anonymous without a server certificate, Trusted when its chain
// verifies against smtp_tls_CAfile, Untrusted otherwise.
func trust(cs tls.ConnectionState, caFile string) string {
	if len(cs.PeerCertificates) == 0 {
		return "Anonymous"
	}
	if caFile == "" {
		return "Untrusted"
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return "Untrusted"
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return "Untrusted"
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		return "Untrusted"
	}
	return "Trusted"
}

var tlsVersions = map[uint16]string{
	tls.VersionTLS10: "TLSv1", tls.VersionTLS11: "TLSv1.1", tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3",
}

// describeTLS is the rest of the line: "TLSv1.3 with cipher
// TLS_AES_256_GCM_SHA384 (256/256 bits) server-signature RSA-PSS (2048
// bits) server-digest SHA256" (the key exchange, which OpenSSL reports,
// is left out: crypto/tls of Go 1.23 does not say it).
func describeTLS(cs tls.ConnectionState) string {
	name := tls.CipherSuiteName(cs.CipherSuite)
	bits := 128
	if strings.Contains(name, "AES_256") || strings.Contains(name, "CHACHA20") {
		bits = 256
	}
	s := fmt.Sprintf("%s with cipher %s (%d/%d bits)", tlsVersions[cs.Version], name, bits, bits)
	if len(cs.PeerCertificates) > 0 {
		switch k := cs.PeerCertificates[0].PublicKey.(type) {
		case *rsa.PublicKey:
			alg := "RSA"
			if cs.Version == tls.VersionTLS13 {
				alg = "RSA-PSS"
			}
			s += fmt.Sprintf(" server-signature %s (%d bits) server-digest SHA256", alg, k.N.BitLen())
		case *ecdsa.PublicKey:
			s += fmt.Sprintf(" server-signature ECDSA (%s) server-digest SHA256", k.Curve.Params().Name)
		case ed25519.PublicKey:
			s += " server-signature ED25519"
		}
	}
	return s
}
