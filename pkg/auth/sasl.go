package auth

import (
	"context"
	"errors"
	"strings"

	"github.com/emersion/go-sasl"
)

// Plaintext mechanisms: the password crosses the connection as it is.
var plaintextMechs = map[string]bool{"PLAIN": true, "LOGIN": true}

// Offered returns the mechanisms to announce on a connection: those of
// auth_mechanisms this package implements, without the plaintext ones where
// disable_plaintext_auth forbids them (Dovecot then adds LOGINDISABLED).
func (a *Authenticator) Offered(req Request) []string {
	var out []string
	for _, m := range a.Mechanisms {
		if !plaintextMechs[m] {
			continue
		}
		if a.PlaintextAllowed(&req) {
			out = append(out, m)
		}
	}
	return out
}

// ErrUnsupportedMech is returned for a mechanism auth_mechanisms does not
// enable or this package does not implement.
var ErrUnsupportedMech = errors.New("Unsupported authentication mechanism.")

// SASL returns a server for mech, PLAIN (RFC 4616) or LOGIN, checking the
// credentials through Authenticate with req's service and addresses. Once
// the exchange is done without error, *res holds the result; an error from
// Next is the *Error Authenticate returned.
func (a *Authenticator) SASL(ctx context.Context, mech string, req Request, res *Result) (sasl.Server, error) {
	mech = strings.ToUpper(mech)
	enabled := false
	for _, m := range a.Mechanisms {
		enabled = enabled || m == mech
	}
	if !enabled || !plaintextMechs[mech] {
		return nil, ErrUnsupportedMech
	}
	check := func(authzid, user, pass string) error {
		if authzid != "" && authzid != user {
			// No master users: one may not log in as another.
			a.delay(ctx)
			return fail(Failed, "Master user login attempted to "+authzid+" without master passdb")
		}
		r := req
		r.User, r.Password = user, pass
		got, err := a.Authenticate(ctx, r)
		if err != nil {
			return err
		}
		*res = got
		return nil
	}
	if mech == "PLAIN" {
		return sasl.NewPlainServer(check), nil
	}
	return &loginServer{check: check}, nil
}

// loginServer is the LOGIN mechanism (draft-murchison-sasl-login): the
// server asks "Username:" and "Password:", the client answers each.
type loginServer struct {
	step  int
	user  string
	check func(authzid, user, pass string) error
}

func (s *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		s.step = 1
		if response == nil || len(response) == 0 {
			return []byte("Username:"), false, nil
		}
		// An initial response is the user name (RFC 4954's AUTH LOGIN <user>).
		s.user = string(response)
		s.step = 2
		return []byte("Password:"), false, nil
	case 1:
		s.user = string(response)
		s.step = 2
		return []byte("Password:"), false, nil
	case 2:
		s.step = 3
		return nil, true, s.check("", s.user, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}
