package cmd

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/custodylog/custody/verify"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

// trustOptions are the key and trust-policy flags shared by verify, audit
// and monitor.
type trustOptions struct {
	key, trust string
}

func (o *trustOptions) flags(c *cobra.Command) {
	c.Flags().StringVar(&o.key, "key", "", "the log's verifier key (name+hash+base64), or a file holding it")
	c.Flags().StringVar(&o.trust, "trust", "", "C2SP tlog-policy file: witnesses whose cosignatures (quorum) a checkpoint must carry")
}

// verifyOptions are the flags of the verify commands: the keys, --json
// and --evidence-dir.
type verifyOptions struct {
	trustOptions
	asJSON   bool
	evidence string
}

// flags adds the flags; fails ends the help of --evidence-dir.
func (o *verifyOptions) flags(c *cobra.Command, fails string) {
	o.trustOptions.flags(c)
	c.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&o.evidence, "evidence-dir", ".", "where to write evidence when "+fails)
}

// load returns the log's origin, verifiers and trust policy.
func (o *trustOptions) load() (string, note.Verifiers, *verify.TrustPolicy, error) {
	var tp *verify.TrustPolicy
	if o.trust != "" {
		b, err := os.ReadFile(o.trust)
		if err != nil {
			return "", nil, nil, usageErr(err, "pass a C2SP tlog-policy file to --trust")
		}
		if tp, err = verify.ParseTrustPolicy(b); err != nil {
			return "", nil, nil, usageErr(fmt.Errorf("%s: %w", o.trust, err), keyHint("a trust policy", err, "see docs/auditor-guide.md for the policy format"))
		}
	}
	if o.key == "" {
		if tp != nil && len(tp.Logs()) > 0 {
			logs := tp.Logs()
			return logs[0].Name(), note.VerifierList(logs...), tp, nil
		}
		return "", nil, nil, usageError("pass the log's public key: --key mylog/log.pub (or the key string)", "missing --key")
	}
	v, err := loadVerifier(o.key)
	if err != nil {
		return "", nil, nil, usageErr(fmt.Errorf("--key: %w", err), keyHint("--key", err, "pass the log's verifier key string or the log.pub file"))
	}
	return v.Name(), note.VerifierList(v), tp, nil
}

// client opens the log at logArg (URL or directory) with the keys of o.
func (e *env) client(o *trustOptions, logArg string) (*verify.Client, error) {
	origin, vs, tp, err := o.load()
	if err != nil {
		return nil, err
	}
	src, err := verify.OpenSource(logArg, &http.Client{Timeout: 2 * time.Minute})
	if err != nil {
		return nil, usageErr(err, "pass the log's base URL (http://…) or a directory holding its checkpoint and tile/ tree")
	}
	return verify.NewClient(src, origin, vs, tp), nil
}
