package keyfile

import (
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// LoadVerifier returns the note verifier of a log's verifier key given as
// the key string or the name of a file holding it
// (verify.LoadVerifierKey, which refuses private keys without quoting
// them, then verify.NewVerifier).
func LoadVerifier(s string) (note.Verifier, error) {
	k, err := verify.LoadVerifierKey(s)
	if err != nil {
		return nil, err
	}
	return verify.NewVerifier(k)
}
