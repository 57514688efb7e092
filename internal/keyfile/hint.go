package keyfile

import (
	"errors"
	"fmt"

	"github.com/custodylog/custody/verify"
)

// VerifierHint returns the fix for err, an error loading the verifier
// key given to flag (LoadVerifier, verify.LoadVerifierKey): hint, or, if
// what was given is (or holds) a private key (verify.ErrPrivateKey), a
// fix that names the flag and asks for the public .pub file. It never
// quotes the key: the loaders' errors do not either.
func VerifierHint(flag string, err error, hint string) string {
	if errors.Is(err, verify.ErrPrivateKey) {
		return fmt.Sprintf("%s takes public verifier keys: pass the .pub file (e.g. mylog/log.pub) or its contents, never the private .key file, which stays with its owner", flag)
	}
	return hint
}
