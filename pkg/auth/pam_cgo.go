//go:build cgo

package auth

import (
	"context"
	"errors"

	"github.com/msteinert/pam/v2"
)

// PAMAvailable reports whether this program was built with PAM.
const PAMAvailable = true

func (db *pamDB) verify(ctx context.Context, req *Request) ([]Field, error) {
	password := req.Password
	tx, err := pam.StartFunc(db.serviceFor(req), req.User, func(s pam.Style, msg string) (string, error) {
		switch s {
		case pam.PromptEchoOff, pam.PromptEchoOn:
			return password, nil
		}
		return "", nil
	})
	if err != nil {
		return nil, fail(Temporary, "pam_start() failed: "+err.Error())
	}
	defer tx.End()
	if req.RemoteIP != "" {
		tx.SetItem(pam.Rhost, req.RemoteIP)
	}
	if err := tx.Authenticate(pam.DisallowNullAuthtok); err != nil {
		return nil, pamError("pam_authenticate", err)
	}
	if err := tx.AcctMgmt(pam.DisallowNullAuthtok); err != nil {
		return nil, pamError("pam_acct_mgmt", err)
	}
	if db.setcred {
		if err := tx.SetCred(pam.EstablishCred); err != nil {
			return nil, pamError("pam_setcred", err)
		}
	}
	if db.session {
		if err := tx.OpenSession(0); err != nil {
			return nil, pamError("pam_open_session", err)
		}
		tx.CloseSession(0)
	}
	return nil, nil
}

// pamError maps a PAM status to the failure Dovecot reports for it.
func pamError(call string, err error) error {
	var st pam.Error
	if !errors.As(err, &st) {
		return fail(Temporary, call+"() failed: "+err.Error())
	}
	msg := call + "() failed: " + st.Error()
	switch st {
	case pam.ErrUserUnknown:
		return fail(UnknownUser, "unknown user")
	case pam.ErrAuth, pam.ErrPermDenied, pam.ErrMaxtries, pam.ErrCredInsufficient:
		return fail(Failed, msg)
	case pam.ErrNewAuthtokReqd, pam.ErrAcctExpired, pam.ErrAuthtokExpired, pam.ErrCredExpired:
		return fail(Expired, msg)
	}
	return fail(Temporary, msg)
}
