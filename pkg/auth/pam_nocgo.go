//go:build !cgo

package auth

import "context"

// PAMAvailable reports whether this program was built with PAM.
const PAMAvailable = false

func (db *pamDB) verify(ctx context.Context, req *Request) ([]Field, error) {
	return nil, fail(Temporary, "pam: this program was built without PAM (cgo)")
}
