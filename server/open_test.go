package server

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/verify"
)

// newLogDir makes a log directory as custody init does: keys and the
// size-0 checkpoint in DBFile.
func newLogDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := keyfile.WriteLog(filepath.Join(dir, "log"), "open.test/log"); err != nil {
		t.Fatal(err)
	}
	signer, err := keyfile.LoadSigner(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := log.Create(context.Background(), st, signer); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, dir, name, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenErrors(t *testing.T) {
	dir := newLogDir(t)
	other := t.TempDir()
	wkey, err := keyfile.WriteWitness(filepath.Join(other, "wit"), "witness.open.test")
	if err != nil {
		t.Fatal(err)
	}
	badKey := writeFile(t, other, "bad.key", "not a key\n", 0o600)
	openTokens := writeFile(t, other, "open-tokens.txt", "tok-0123456789abcdef\n", 0o644)
	trust := writeFile(t, other, "trust.txt", "witness w "+wkey+" http://127.0.0.1:1/\nquorum w\n", 0o644)
	badPolicy := writeFile(t, other, "policy.yaml", "regions: [\n", 0o644)
	noLogDir := t.TempDir()
	badKeyDir := t.TempDir()
	writeFile(t, badKeyDir, KeyFile, "not a key\n", 0o600)
	w := "http://127.0.0.1:1/=" + wkey
	for _, tc := range []struct {
		name string
		o    Options
		want ErrorKind
		cfg  Config
	}{
		{"no log", Options{Dir: noLogDir}, KindNoLog, Config{}},
		{"bad signing key", Options{Dir: badKeyDir}, KindSigner, Config{}},
		{"negative quorum", Options{Dir: dir, Quorum: -1}, KindQuorum, Config{}},
		{"trust with witness", Options{Dir: dir, Trust: trust, Witnesses: []string{w}}, KindTrustConflict, Config{}},
		{"trust with quorum", Options{Dir: dir, Trust: trust, Quorum: 1}, KindTrustConflict, Config{}},
		{"missing trust file", Options{Dir: dir, Trust: filepath.Join(other, "none")}, KindTrust, Config{}},
		{"private key in trust", Options{Dir: dir, Trust: writeFile(t, other, "trust-priv.txt", "witness w "+mustRead(t, filepath.Join(other, "wit.key"))+" http://x/\n", 0o644)}, KindTrust, Config{}},
		{"witness without =", Options{Dir: dir, Witnesses: []string{"http://127.0.0.1:1/"}}, KindWitness, Config{}},
		{"witness URL not http", Options{Dir: dir, Witnesses: []string{"ftp://h/=" + wkey}}, KindWitnessURL, Config{}},
		{"witness URL without host", Options{Dir: dir, Witnesses: []string{"http:///=" + wkey}}, KindWitnessURL, Config{}},
		{"witness bad key", Options{Dir: dir, Witnesses: []string{"http://h/=" + badKey}}, KindWitnessKey, Config{}},
		{"quorum above witnesses", Options{Dir: dir, Witnesses: []string{w}, Quorum: 2}, KindQuorumTooLarge, Config{}},
		{"bad policy", Options{Dir: dir, Policy: badPolicy}, KindPolicy, Config{}},
		{"missing token file", Options{Dir: dir, TokenFile: filepath.Join(other, "none")}, KindTokens, Config{}},
		{"token file others may read", Options{Dir: dir, TokenFile: openTokens}, KindTokens, Config{}},
		{"bad PostgreSQL DSN", Options{Dir: dir, DSN: "postgres://%zz"}, KindHold, Config{}},
		{"negative concurrent writes", Options{Dir: dir}, KindMaxWrites, Config{API: httpapi.Config{MaxConcurrentWrites: -1}}},
		{"negative writes per token", Options{Dir: dir}, KindMaxWritesPerToken, Config{API: httpapi.Config{MaxConcurrentWritesPerToken: -1}}},
		{"negative body timeout", Options{Dir: dir}, KindBodyTimeout, Config{API: httpapi.Config{BodyTimeout: -1}}},
		{"negative token rate", Options{Dir: dir}, KindTokenRate, Config{API: httpapi.Config{TokenRate: -1}}},
		{"NaN token rate", Options{Dir: dir}, KindTokenRate, Config{API: httpapi.Config{TokenRate: math.NaN()}}},
		{"negative token burst", Options{Dir: dir}, KindTokenRate, Config{API: httpapi.Config{TokenBurst: -1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.o, tc.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want an error of kind %d", tc.want)
			}
			var oe *Error
			if !errors.As(err, &oe) || oe.Kind != tc.want {
				t.Fatalf("Open: %v (%#v), want kind %d", err, err, tc.want)
			}
			if err.Error() == "" || err.Error() != oe.Err.Error() {
				t.Errorf("Error() = %q, want Err's text %q", err.Error(), oe.Err.Error())
			}
		})
	}
	// The private key in a trust policy is named as such.
	_, err = Open(context.Background(), Options{Dir: dir, Trust: filepath.Join(other, "trust-priv.txt")}, Config{})
	if !errors.Is(err, verify.ErrPrivateKey) {
		t.Errorf("trust policy with a private key: %v, want verify.ErrPrivateKey", err)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:len(b)-1])
}

func TestOpenLogStore(t *testing.T) {
	ctx := context.Background()
	dir := newLogDir(t)
	st, err := OpenLogStore(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := st.Latest(ctx); err != nil || cp.Size != 0 {
		t.Fatalf("Latest: %+v, %v", cp, err)
	}
	st.Close()
	empty := t.TempDir()
	for _, tc := range []struct {
		name, dsn, dir string
		want           ErrorKind
	}{
		{"no database in the directory", "", empty, KindNoStore},
		{"a directory as the database", "sqlite:" + empty, "", KindNoStore},
		{"a bad PostgreSQL DSN", "postgres://%zz", "", KindHold},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := OpenLogStore(ctx, tc.dsn, tc.dir)
			if oe := (*Error)(nil); !errors.As(err, &oe) || oe.Kind != tc.want {
				if st != nil {
					st.Close()
				}
				t.Fatalf("OpenLogStore: %v, want an *Error of kind %d", err, tc.want)
			}
		})
	}
	// Nothing was created where there was no store.
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("OpenLogStore created %v", ents)
	}
}

// TestOpenLocks checks that Open holds the SQLite log's lock until Close,
// so that a second server of the same log is refused, and that it resolves
// the witnesses and tokens into the Config.
func TestOpenLocks(t *testing.T) {
	dir := newLogDir(t)
	wdir := t.TempDir()
	wkey, err := keyfile.WriteWitness(filepath.Join(wdir, "wit"), "witness.open.test")
	if err != nil {
		t.Fatal(err)
	}
	tokens := writeFile(t, wdir, "tokens.txt", "tok-0123456789abcdef\n", 0o600)
	o := Options{Dir: dir, TokenFile: tokens, Witnesses: []string{"http://127.0.0.1:1/=" + wkey, "https://w.example/=" + filepath.Join(wdir, "wit.pub")}, Quorum: 2}
	s, err := Open(context.Background(), o, Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.Config()
	if cfg.Listen != "127.0.0.1:0" || cfg.Log.Store == nil || cfg.Log.Signer == nil || cfg.Log.Verifier == nil {
		t.Errorf("Config not resolved: %+v", cfg)
	}
	if len(cfg.Log.Witnesses) != 2 || cfg.Log.Quorum != 2 || cfg.Log.Witnesses[1].URL != "https://w.example/" {
		t.Errorf("witnesses %+v, quorum %d", cfg.Log.Witnesses, cfg.Log.Quorum)
	}
	if len(cfg.API.Tokens) != 1 || cfg.API.Tokens[0] != "tok-0123456789abcdef" {
		t.Errorf("tokens %q", cfg.API.Tokens)
	}
	if cp, err := cfg.Log.Store.Latest(context.Background()); err != nil || cp.Size != 0 {
		t.Errorf("store: latest %+v, %v", cp, err)
	}
	_, err = Open(context.Background(), Options{Dir: dir}, Config{})
	var oe *Error
	if !errors.As(err, &oe) || oe.Kind != KindHold || !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of a locked log: %v, want KindHold wrapping ErrLocked", err)
	}
	if oe.Hint() != "stop the other custody process first; one SQLite database has one writer" || oe.ExitCode() != 1 {
		t.Errorf("locked log: hint %q, exit code %d", oe.Hint(), oe.ExitCode())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(context.Background(), Options{Dir: dir}, Config{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}

// TestErrorHints: an *Error says what to do in the words of custody's
// flags and whether it is a usage mistake (exit 3), naming the directory
// where the fix does; kinds whose cause tells more give the cause's hint
// (keyfile's, httpapi's), or none.
func TestErrorHints(t *testing.T) {
	ctx := context.Background()
	dir, noLog, badKey := newLogDir(t), t.TempDir(), t.TempDir()
	writeFile(t, badKey, KeyFile, "not a key\n", 0o600)
	badPub := newLogDir(t)
	writeFile(t, badPub, PubFile, "not a key\n", 0o644)
	_, initErr := Init(ctx, dir, "hints.test/log", "")
	for _, tc := range []struct {
		name string
		err  error
		hint string
		code int
	}{
		{"negative quorum", open(ctx, Options{Dir: dir, Quorum: -1}, Config{}), "pass how many witnesses must cosign, e.g. --quorum 2", 3},
		{"bad body timeout", open(ctx, Options{Dir: dir}, Config{API: httpapi.Config{BodyTimeout: -1}}), "pass a positive duration, e.g. --body-timeout 10s", 3},
		{"bad policy", open(ctx, Options{Dir: dir, Policy: writeFile(t, noLog, "p.yaml", "regions: [\n", 0o644)}, Config{}), "see testdata/policy.yaml for the format", 1},
		{"no log", open(ctx, Options{Dir: noLog}, Config{}), "create one with 'custody init --dir " + noLog + " --origin NAME'", 1},
		{"init over a log", initErr, "pick a new --dir; to serve the existing log run 'custody serve --dir " + dir + "'", 1},
		{"bad signing key", open(ctx, Options{Dir: badKey}, Config{}), "create one with 'custody keygen' or 'custody init'", 1},
		{"missing token file", open(ctx, Options{Dir: dir, TokenFile: filepath.Join(noLog, "none")}, Config{}), "write one random token per line, readable only by you, e.g. '(umask 077; openssl rand -hex 32 > " + filepath.Join(noLog, "none") + ")'", 1},
		{"bad verifier key", open(ctx, Options{Dir: badPub}, Config{}), "", 1},
	} {
		var se *Error
		if !errors.As(tc.err, &se) {
			t.Fatalf("%s: %v, want an *Error", tc.name, tc.err)
		}
		if se.Hint() != tc.hint || se.ExitCode() != tc.code {
			t.Errorf("%s: hint %q, exit code %d; want %q, %d", tc.name, se.Hint(), se.ExitCode(), tc.hint, tc.code)
		}
	}
}

// open is Open, closing the server if it opened.
func open(ctx context.Context, o Options, cfg Config) error {
	s, err := Open(ctx, o, cfg)
	if err == nil {
		s.Close()
	}
	return err
}
