package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/client"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/loadgen"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/server"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// The demo's names and settings.
const (
	// Origin is the demo log's origin.
	Origin = "demo.custody.local/log"
	// WitnessName is the demo witness's name.
	WitnessName = "witness.demo.custody.local"
	// Batch is how many events go in one append request.
	Batch = 256
	// Retries is how often a failed append request is retried.
	Retries = 5
)

// Options configure Run.
type Options struct {
	// Dir receives the log, the witness, the tokens, the policy and the
	// receipts; it must not hold a log (log.key, log.pub, custody.db).
	// "" is a new temporary directory, removed when the demo stops.
	Dir string
	// Listen is the log server's address.
	Listen string
	// Events is how many events to generate (loadgen.Demo), Violations
	// whether to inject policy violations, Seed the generator's seed.
	Events     int
	Violations bool
	Seed       uint64
	// Progress, if set, is called with each progress line (a format and
	// its arguments).
	Progress func(format string, args ...any)
	// AuditProgress, if set, is the audit's progress (AuditOptions).
	AuditProgress func(done, total uint64)
	// Logger receives the log server's and the witness's logs; nil
	// discards them.
	Logger *slog.Logger
}

// ErrDirUsed is wrapped by Run's error when Options.Dir holds a log's
// file already (server.KeyFile, PubFile or DBFile, or anything in their
// place): nothing was written.
var ErrDirUsed = errors.New("the demo needs a fresh directory")

// exists reports whether anything is at p, a symbolic link included.
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// AuditError is Run's error when the audit of the demo log failed: Err is
// audit.Auditor.Run's error (a *verify.VerificationError if the log failed
// verification).
type AuditError struct{ Err error }

func (e *AuditError) Error() string { return e.Err.Error() }
func (e *AuditError) Unwrap() error { return e.Err }

// Demo is a demo Run set up: the log server and the witness serve until
// Wait returns.
type Demo struct {
	// Dir is the demo's directory and Temporary whether it is removed
	// when the demo stops.
	Dir       string
	Temporary bool
	// Base is the log server's URL, WitnessURL the witness's and
	// WitnessKey its verifier key.
	Base, WitnessURL, WitnessKey string
	// The files in Dir: the log's verifier key, the routing policy, the
	// token file and the receipts (one JSON object a line).
	PubFile, PolicyFile, TokenFile, ReceiptsFile string
	// ForgedReceipt, with violations, is the receipt of the planted event
	// whose site signature fails the policy (sites.go).
	ForgedReceipt string
	// Report is the audit of the log after the workload.
	Report *audit.AuditReport
	// Injected describes the injected violations.
	Injected []string

	server      *Server
	stopWitness func()
	progress    func(string, ...any)
}

// Run creates the demo's log in o.Dir, starts a witness and the log server
// (publishing a checkpoint only once the witness cosigned it: quorum 1),
// appends the workload through the HTTP API with every receipt verified
// and written to ReceiptsFile, and audits the log over HTTP against the
// policy. On success the caller must call Wait; on error everything Run
// started is stopped and a temporary directory removed. Its errors are
// those of package keyfile (the keys), *server.Error and
// *server.ListenError (the log server), *AuditError, or others.
func Run(ctx context.Context, o Options) (d *Demo, err error) {
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	for _, f := range []string{server.KeyFile, server.PubFile, server.DBFile} {
		if p := filepath.Join(o.Dir, f); o.Dir != "" && exists(p) {
			return nil, fmt.Errorf("%s already exists: %w", p, ErrDirUsed)
		}
	}
	d = &Demo{Dir: o.Dir, Temporary: o.Dir == "", progress: o.Progress}
	if d.Temporary {
		if d.Dir, err = os.MkdirTemp("", "custody-demo-"); err != nil {
			return nil, fmt.Errorf("creating a temporary directory for the demo: %w", err)
		}
	}
	defer func() {
		if err != nil {
			err, d = d.stop(err), nil
		}
	}()
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return d, fmt.Errorf("creating %s: %w", d.Dir, err)
	}
	o.Progress("creating the log in %s", d.Dir)
	vkey, err := server.Init(ctx, d.Dir, Origin, "")
	if err != nil {
		return d, err
	}
	logVerifier, err := verify.NewVerifier(vkey)
	if err != nil {
		return d, err
	}
	d.PubFile = filepath.Join(d.Dir, server.PubFile)
	d.TokenFile = filepath.Join(d.Dir, "tokens.txt")
	token, err := WriteToken(d.TokenFile)
	if err != nil {
		return d, err
	}
	d.PolicyFile = filepath.Join(d.Dir, "policy.yaml")
	if err := os.WriteFile(d.PolicyFile, []byte(loadgen.DemoPolicy), 0o644); err != nil {
		return d, err
	}
	// Every data centre signs its own events (sites.go); with violations,
	// one forged signed event is planted first.
	sites, err := setupSites(d.Dir, d.PolicyFile)
	if err != nil {
		return d, err
	}
	var forged []string
	if o.Violations {
		f, err := sites.plantForged(ctx, d.Dir, logVerifier)
		if err != nil {
			return d, err
		}
		forged = append(forged, f)
	}

	o.Progress("starting a local witness")
	wPrefix := filepath.Join(d.Dir, "witness")
	if d.WitnessKey, err = keyfile.WriteWitness(wPrefix, WitnessName); err != nil {
		return d, err
	}
	wsigner, _, err := keyfile.LoadCosigner(wPrefix + ".key")
	if err != nil {
		return d, err
	}
	if d.WitnessURL, d.stopWitness, err = StartWitness(d.Dir, wsigner, []note.Verifier{logVerifier}, o.Logger); err != nil {
		return d, err
	}

	o.Progress("starting the log server (witness %s, quorum 1)", d.WitnessURL)
	opts := server.Options{Dir: d.Dir, TokenFile: d.TokenFile, Policy: d.PolicyFile, Witnesses: []string{d.WitnessURL + "=" + d.WitnessKey}, Quorum: 1}
	cfg := server.Config{Listen: o.Listen, Logger: o.Logger, API: httpapi.Config{MaxConcurrentWrites: httpapi.DefaultMaxConcurrentWrites},
		// The index is built from the entries at start: with violations the
		// log starts with an event planted past the server (sites.go),
		// under a checkpoint that commits no index.
		Log: log.Config{MaxBatch: log.DefaultMaxBatch, MaxWait: log.DefaultMaxWait, WitnessTimeout: log.DefaultWitnessTimeout,
			SampleIndex: log.SampleIndexOptions{Enabled: true}}}
	srv, addr, err := Start(ctx, func(ctx context.Context, ready chan<- string) error {
		cfg.Ready = func(addr string) { ready <- addr }
		s, err := server.Open(ctx, opts, cfg)
		if err != nil {
			return err
		}
		return s.Run(ctx)
	})
	if err != nil {
		return d, err
	}
	d.server, d.Base = srv, "http://"+addr

	// The workload, through the HTTP API, every receipt verified (client).
	events, injected := loadgen.Demo(o.Seed, o.Events, o.Violations, time.Now())
	cl, err := client.New(d.Base, token, logVerifier, client.WithBatch(Batch), client.WithRetries(Retries), client.WithSiteSigners(sites.pick, ""))
	if err != nil {
		return d, err
	}
	d.ReceiptsFile = filepath.Join(d.Dir, "receipts.jsonl")
	if err := AppendAll(ctx, cl, events, Batch, d.ReceiptsFile, func(done int) {
		o.Progress("appended %d/%d events", done, len(events))
	}); err != nil {
		return d, err
	}
	o.Progress("wrote %d receipts to %s", len(events), d.ReceiptsFile)
	if o.Violations {
		d.ForgedReceipt = filepath.Join(d.Dir, "forged-receipt.jsonl")
		if err := sites.writeForgedReceipt(ctx, d.Base, d.ForgedReceipt, logVerifier); err != nil {
			return d, err
		}
		d.Injected = append(injected, forged...)
		o.Progress("injected violations: %s", strings.Join(injected, "; "))
	}

	// The audit, over HTTP, trusting nothing the server says.
	o.Progress("auditing the log")
	if d.Report, err = auditLog(ctx, d.Base, logVerifier, d.PolicyFile, o.AuditProgress); err != nil {
		return d, &AuditError{err}
	}
	return d, nil
}

// auditLog audits the log at base without state (audit.Auditor).
func auditLog(ctx context.Context, base string, v note.Verifier, policyFile string, progress func(done, total uint64)) (*audit.AuditReport, error) {
	pol, err := audit.LoadPolicy(policyFile)
	if err != nil {
		return nil, err
	}
	src, err := verify.OpenSource(base, &http.Client{Timeout: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	a := audit.Auditor{Client: verify.NewClient(src, v.Name(), note.VerifierList(v), nil), Policy: pol, Progress: progress}
	return a.Run(ctx)
}

// WriteIntro writes, for the person who started the demo, the audit
// report, the URLs of the dashboard, the log and the witness, the demo's
// directory and commands to try on the log.
func (d *Demo) WriteIntro(w io.Writer) {
	audit.WriteReport(w, d.Report)
	fmt.Fprintf(w, "\ndashboard:  %s/   <- open this in a browser\n", d.Base)
	fmt.Fprintf(w, "            %s/flows, %s/timeline, %s/report (the regulator's report)\n", d.Base, d.Base, d.Base)
	fmt.Fprintf(w, "log:        %s\n", d.Base)
	fmt.Fprintf(w, "checkpoint: %s/checkpoint\n", d.Base)
	fmt.Fprintf(w, "witness:    %s (%s)\n", d.WitnessURL, d.WitnessKey)
	if d.Temporary {
		fmt.Fprintf(w, "directory:  %s (temporary: removed on Ctrl-C; pass --dir to keep the files)\n\n", d.Dir)
	} else {
		fmt.Fprintf(w, "directory:  %s\n\n", d.Dir)
	}
	fmt.Fprintf(w, "try:\n")
	fmt.Fprintf(w, "  curl -s %s/v1/stats\n", d.Base)
	fmt.Fprintf(w, "  custody audit --log %s --key %s --policy %s --no-state\n", d.Base, d.PubFile, d.PolicyFile)
	report := filepath.Join(d.Dir, "report.html")
	fmt.Fprintf(w, "  custody audit --log %s --key %s --policy %s --no-state --report %s\n", d.Base, d.PubFile, d.PolicyFile, report)
	fmt.Fprintf(w, "  custody verify report %s --key %s\n", report, d.PubFile)
	fmt.Fprintf(w, "  custody verify receipt %s --key %s\n", d.ReceiptsFile, d.PubFile)
	if d.ForgedReceipt != "" {
		fmt.Fprintf(w, "  custody verify receipt %s --key %s --policy %s\n", d.ForgedReceipt, d.PubFile, d.PolicyFile)
	}
	fmt.Fprintf(w, "  custody append --log %s --token-file %s < events.jsonl\n\n", d.Base, d.TokenFile)
	fmt.Fprintf(w, "serving until Ctrl-C\n")
}

// Wait serves until ctx is done (or the log server stops by itself), then
// stops the log server and the witness and removes a temporary Dir. It
// returns the log server's error.
func (d *Demo) Wait(ctx context.Context) error {
	err := d.server.Wait(ctx)
	d.server = nil
	return d.stop(err)
}

// stop stops what runs, removes a temporary directory and returns err (or
// the log server's error).
func (d *Demo) stop(err error) error {
	if d.server != nil {
		err = d.server.Stop(err)
	}
	if d.stopWitness != nil {
		d.stopWitness()
	}
	if d.Temporary {
		if rerr := os.RemoveAll(d.Dir); rerr != nil {
			d.progress("could not remove the temporary directory %s: %v", d.Dir, rerr)
		} else {
			d.progress("removed the temporary directory %s", d.Dir)
		}
	}
	return err
}
