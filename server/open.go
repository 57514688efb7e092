package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/verify"
)

// Options are the files `custody serve` reads besides its Config, named as
// its flags name them: Open resolves them into the Config.
type Options struct {
	// Dir is the log directory made by `custody init`: KeyFile signs,
	// PubFile verifies, DBFile is the store unless DSN names another.
	Dir string
	// DSN names the store (OpenStore); "" is Dir's DBFile.
	DSN string
	// TokenFile lists the bearer tokens allowed to append
	// (httpapi.LoadTokens); "" refuses every append (Open logs a warning).
	TokenFile string
	// Policy is a routing policy file (YAML) for the dashboard, or "".
	Policy string
	// Trust is a c2sp.org/tlog-policy file naming the witnesses (those
	// with a URL are asked) and the quorum, instead of Witnesses and
	// Quorum (TrustWitnesses).
	Trust string
	// Witnesses are witnesses to ask for cosignatures, each URL=VKEY:
	// URL an absolute http(s) submission prefix, VKEY a cosignature/v1
	// verifier key or a file holding one (LoadCosignatureVerifier).
	Witnesses []string
	// Quorum is how many of Witnesses must cosign a checkpoint before it
	// is published (0: do not wait for them).
	Quorum int
}

// ErrorKind says which input of Open failed, for the command to pick its
// exit code and the fix to suggest.
type ErrorKind int

// The kinds of Error.
const (
	KindNoLog             ErrorKind = iota + 1 // Dir holds no KeyFile
	KindSigner                                 // KeyFile does not load (keyfile.LoadSigner's error)
	KindVerifier                               // PubFile does not load
	KindQuorum                                 // Quorum is negative
	KindTrustConflict                          // Trust given with Witnesses or Quorum
	KindTrust                                  // the Trust file does not read or parse (may wrap verify.ErrPrivateKey)
	KindWitness                                // a Witnesses entry is not URL=VKEY
	KindWitnessURL                             // a witness URL is not an absolute http(s) URL
	KindWitnessKey                             // a witness key does not load (may wrap verify.ErrPrivateKey)
	KindQuorumTooLarge                         // Quorum exceeds len(Witnesses)
	KindPolicy                                 // the Policy file does not load
	KindTokens                                 // the TokenFile does not load (httpapi.LoadTokens's error)
	KindHold                                   // HoldLog failed: the SQLite log is locked (ErrLocked), or the PostgreSQL database holds no log
	KindOpenStore                              // OpenStore failed
	KindMaxWrites                              // cfg.API.MaxConcurrentWrites is negative
	KindMaxWritesPerToken                      // cfg.API.MaxConcurrentWritesPerToken is negative
	KindBodyTimeout                            // cfg.API.BodyTimeout is negative
	KindTokenRate                              // cfg.API.TokenRate or TokenBurst is negative (or the rate NaN)
	KindNoStore                                // OpenLogStore: the SQLite file is not there, or not a file
	KindLink                                   // Init: a file of the log would be created through a symbolic link
	KindExists                                 // Init: a file of the log exists already
	KindStoreUsed                              // Init: the PostgreSQL store holds a log already
)

// Error is an error of Open, Init or OpenLogStore: Kind says which input
// failed; Err is the failure, naming the input (file, flag value) as
// `custody serve` prints it. Error's text is Err's.
type Error struct {
	Kind ErrorKind
	Err  error
	fix  string // Hint, if the kind's fix names the input
	exit int    // ExitCode, if the input decides it (0: the kind's)
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Hint says what to do about the error, in the words of the flags of
// `custody serve` and `custody init`. For the kinds whose cause (a key
// file, a token file, the store) tells more than the kind, it is the
// cause's Hint, if it has one, else "".
func (e *Error) Hint() string {
	if f, ok := e.cause(); ok {
		return f.Hint()
	}
	if e.fix != "" {
		return e.fix
	}
	return kindFixes[e.Kind].hint
}

// ExitCode is the exit code of custody for the error: the cause's (see
// Hint), else 3 for a mistake in a flag's value, else 1.
func (e *Error) ExitCode() int {
	if f, ok := e.cause(); ok {
		return f.ExitCode()
	}
	if e.exit != 0 {
		return e.exit
	}
	if kindFixes[e.Kind].usage {
		return 3
	}
	return 1
}

// cause returns the error in Err's chain that says what to do itself, if
// e's kind has no fix of its own.
func (e *Error) cause() (f interface {
	Hint() string
	ExitCode() int
}, ok bool) {
	if _, own := kindFixes[e.Kind]; own || e.fix != "" || e.exit != 0 {
		return nil, false
	}
	return f, errors.As(e.Err, &f)
}

// kindFixes are the hints of the kinds of Error whose fix does not depend
// on the input, and whether they are usage mistakes.
var kindFixes = map[ErrorKind]struct {
	hint  string
	usage bool
}{
	KindQuorum:            {"pass how many witnesses must cosign, e.g. --quorum 2", true},
	KindTrustConflict:     {"the policy file names the witnesses and the quorum", true},
	KindWitness:           {"use --witness URL=VKEY, e.g. --witness https://witness.example/=./wit.pub", true},
	KindWitnessURL:        {"the witness URL must be an absolute http(s) URL", true},
	KindQuorumTooLarge:    {"pass at most as many as there are --witness flags", true},
	KindPolicy:            {"see testdata/policy.yaml for the format", false},
	KindMaxWrites:         {"pass a positive number, e.g. --max-concurrent-writes 64", true},
	KindMaxWritesPerToken: {"pass a positive number, e.g. --max-concurrent-writes-per-token 16, or 0 for a quarter of --max-concurrent-writes", true},
	KindBodyTimeout:       {"pass a positive duration, e.g. --body-timeout 10s", true},
	KindTokenRate:         {"pass --token-rate >= 0 events per second and --token-burst >= 0 events", true},
	KindLink:              {"remove the link, or pick a new --dir", false},
	KindStoreUsed:         {"give a new schema (search_path) or database; to serve the existing log run 'custody serve --dir DIR --store DSN' with its key", false},
}

func fail(k ErrorKind, format string, args ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// Server is a log server Open prepared: its store is open and, for SQLite,
// its lock held, until Run returns or Close is called.
type Server struct {
	cfg     Config
	release func()
}

// Open checks cfg.API's limits and o and resolves o into cfg, in this
// order: the limits, the log's keys
// (Dir's KeyFile and PubFile), the witnesses (Trust, or Witnesses and
// Quorum), the routing policy, the tokens; then it takes the log's writer
// lock or checks the PostgreSQL database (HoldLog) and opens the store
// (OpenStore). cfg.Log's Store, Signer, Verifier and witness fields and
// cfg's Policy and API.Tokens are set from o; the rest of cfg is kept.
// Every error is an *Error; nothing is left open or locked on error.
func Open(ctx context.Context, o Options, cfg Config) (*Server, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := checkLimits(cfg.API); err != nil {
		return nil, err
	}
	key, pub := filepath.Join(o.Dir, KeyFile), filepath.Join(o.Dir, PubFile)
	if _, err := os.Lstat(key); errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Kind: KindNoLog, Err: fmt.Errorf("%s has no log (no %s)", o.Dir, key),
			fix: fmt.Sprintf("create one with 'custody init --dir %s --origin NAME'", o.Dir)}
	}
	signer, err := keyfile.LoadSigner(key)
	if err != nil {
		return nil, &Error{Kind: KindSigner, Err: err}
	}
	if cfg.Log.Verifier, err = keyfile.LoadVerifier(pub); err != nil {
		return nil, fail(KindVerifier, "%s: %w", pub, err)
	}
	cfg.LogKey, _ = verify.LoadVerifierKey(pub) // it just loaded

	cfg.Log.Signer = signer
	if err := witnesses(o, &cfg.Log, logger); err != nil {
		return nil, err
	}
	if o.Policy != "" {
		if cfg.Policy, err = audit.LoadPolicy(o.Policy); err != nil {
			return nil, &Error{Kind: KindPolicy, Err: err}
		}
		cfg.PolicyFile = o.Policy
	}
	if o.TokenFile != "" {
		if cfg.API.Tokens, err = httpapi.LoadTokens(o.TokenFile); err != nil {
			return nil, &Error{Kind: KindTokens, Err: err}
		}
	} else {
		logger.Warn("no --token-file: POST /v1/events will refuse every request")
	}
	release, err := HoldLog(ctx, o.DSN, o.Dir)
	if err != nil {
		return nil, HoldError(err, o.DSN)
	}
	if cfg.Log.Store, err = OpenStore(o.DSN, o.Dir); err != nil {
		release()
		return nil, &Error{Kind: KindOpenStore, Err: err}
	}
	return &Server{cfg: cfg, release: release}, nil
}

// checkLimits refuses negative limits of the API, naming the flag of
// `custody serve` that sets each.
func checkLimits(c httpapi.Config) error {
	switch r := c.TokenRate; {
	case c.MaxConcurrentWrites < 0:
		return fail(KindMaxWrites, "bad --max-concurrent-writes %d", c.MaxConcurrentWrites)
	case c.MaxConcurrentWritesPerToken < 0:
		return fail(KindMaxWritesPerToken, "bad --max-concurrent-writes-per-token %d", c.MaxConcurrentWritesPerToken)
	case c.BodyTimeout < 0:
		return fail(KindBodyTimeout, "bad --body-timeout %s", c.BodyTimeout)
	case r < 0 || r != r || c.TokenBurst < 0:
		return fail(KindTokenRate, "bad --token-rate %g / --token-burst %d", r, c.TokenBurst)
	}
	return nil
}

// witnesses sets the witness fields of cfg from o's Trust, or Witnesses and
// Quorum.
func witnesses(o Options, cfg *log.Config, logger *slog.Logger) error {
	if o.Quorum < 0 {
		return fail(KindQuorum, "bad --quorum %d", o.Quorum)
	}
	if o.Trust != "" {
		if len(o.Witnesses) > 0 || o.Quorum != 0 {
			return fail(KindTrustConflict, "--trust cannot be combined with --witness or --quorum")
		}
		b, err := os.ReadFile(o.Trust)
		if err != nil {
			return &Error{Kind: KindTrust, Err: err}
		}
		p, err := verify.ParseTrustPolicy(b)
		if err != nil {
			return &Error{Kind: KindTrust, Err: fmt.Errorf("%s: %w", o.Trust, err), fix: keyfile.VerifierHint("a trust policy", err, "")}
		}
		cfg.Witnesses, cfg.QuorumFunc, err = TrustWitnesses(o.Trust, p, logger)
		if err != nil {
			return &Error{Kind: KindTrust, Err: err}
		}
		return nil
	}
	for _, arg := range o.Witnesses {
		i := strings.LastIndex(arg, "=")
		if i <= 0 {
			return fail(KindWitness, "bad --witness %q", arg)
		}
		u, key := arg[:i], arg[i+1:]
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fail(KindWitnessURL, "bad --witness URL %q", u)
		}
		v, err := LoadCosignatureVerifier(key)
		if err != nil {
			return &Error{Kind: KindWitnessKey, Err: fmt.Errorf("--witness %s: %w", u, err), exit: 3,
				fix: keyfile.VerifierHint("--witness URL=KEY", err, "KEY is the witness's cosignature verifier key (type 0x04) or a file holding it, e.g. wit.pub")}
		}
		cfg.Witnesses = append(cfg.Witnesses, log.Witness{URL: u, Verifier: v})
	}
	if o.Quorum > len(cfg.Witnesses) {
		return fail(KindQuorumTooLarge, "--quorum %d with %d witnesses", o.Quorum, len(cfg.Witnesses))
	}
	cfg.Quorum = o.Quorum
	return nil
}

// Config is the configuration Open resolved (the store, keys, witnesses,
// policy and tokens set).
func (s *Server) Config() Config { return s.cfg }

// Run is Run(ctx, s.Config()) followed by closing the store and releasing
// the lock. When the log did not drain (the error wraps ErrNotDrained) the
// store is left open, since a call may still be inside it and closing it
// could hang as long.
func (s *Server) Run(ctx context.Context) error {
	defer s.release()
	err := Run(ctx, s.cfg)
	if errors.Is(err, ErrNotDrained) {
		return err
	}
	s.cfg.Log.Store.Close()
	return err
}

// Close closes the store and releases the lock, for a Server that is not
// run.
func (s *Server) Close() error {
	defer s.release()
	return s.cfg.Log.Store.Close()
}
