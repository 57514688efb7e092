package cmd

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	wsrv "github.com/custodylog/custody/witness"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

// demoPolicy is testdata/policy.yaml: the demo's workload follows it.
const demoPolicy = `# Example routing policy (the auditor's file; see docs/ and DESIGN.md).
locations:                 # every data centre and its jurisdiction
  us-ash-1: {country: US}
  de-fra-1: {country: DE}
  uk-lon-1: {country: GB}
  sg-sin-1: {country: SG}
  ch-zrh-1: {country: CH}
  ru-mow-1: {country: RU}
regions:                   # where each customer region's samples may be handled
  US:  {allowed: [us-ash-1, ch-zrh-1]}
  EU:  {allowed: [de-fra-1, ch-zrh-1]}
  UK:  {allowed: [uk-lon-1, ch-zrh-1]}
  ROW: {allowed: [sg-sin-1, ch-zrh-1, ru-mow-1]}
max_log_delay: 1h          # an event logged later than this after it happened is a finding
`

const (
	demoOrigin  = "demo.custody.local/log"
	demoWitness = "witness.demo.custody.local"
	demoLab     = "ch-zrh-1"
	demoBatch   = 256
	demoSpan    = 50 * time.Minute // events happen within this long before now
	demoRetries = 5
)

// demoRegions are the customer regions with their edge data centres and
// their share of the samples (in percent).
var demoRegions = []struct {
	region, edge string
	weight       int
}{
	{"US", "us-ash-1", 35},
	{"EU", "de-fra-1", 35},
	{"UK", "uk-lon-1", 15},
	{"ROW", "sg-sin-1", 15},
}

type demoOptions struct {
	dir, listen string
	events      int
	violations  bool
	seed        uint64
	// reported, if set, is called with the log's base URL once the audit
	// report and the URLs are printed (tests use it to stop the demo).
	reported func(base string)
}

func (e *env) demoCmd() *cobra.Command {
	var o demoOptions
	c := &cobra.Command{
		Use:   "demo [--dir DIR] [--listen ADDR] [--events N] [--violations] [--seed S]",
		Short: "Run a self-contained demo: a log, a witness, a workload and an audit",
		Long: `demo needs no set-up: it creates a log (in a temporary directory unless
--dir), starts the log server and one local witness (the log publishes a
checkpoint only once the witness cosigned it), generates a realistic
workload following testdata/policy.yaml and appends it through the HTTP
API (every receipt goes to DIR/receipts.jsonl, one a line), audits the log
and prints the report. Then it keeps serving, and prints the URLs and
example commands, until Ctrl-C (or SIGTERM). A temporary directory is then
removed; a --dir is kept.

The workload: samples of customers in the US, EU, UK and ROW regions,
collected at their region's edge data centre, transferred to ch-zrh-1,
stored and analysed there, then deleted at both. With --violations a few
EU samples are also analysed in a data centre their region does not allow
(ru-mow-1) without any logged transfer there, and one sample is stored at
ch-zrh-1 with no logged transfer: the audit reports them (reroute and
continuity findings). The same --seed gives the same workload (apart from
the times, which are within the last hour).`,
		Example: `  custody demo
  custody demo --violations --dir ./demo --listen 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return e.demo(c.Context(), o)
		},
	}
	c.Flags().StringVar(&o.dir, "dir", "", "directory for the log, witness, tokens, policy and receipts, kept on exit (default: a new temporary directory, removed on exit)")
	c.Flags().StringVar(&o.listen, "listen", "127.0.0.1:8080", "address for the log server")
	c.Flags().IntVar(&o.events, "events", 2000, "number of events to generate")
	c.Flags().BoolVar(&o.violations, "violations", false, "inject policy violations the audit must find")
	c.Flags().Uint64Var(&o.seed, "seed", 1, "seed of the workload generator")
	return c
}

// demo runs the whole demo until ctx is done.
func (e *env) demo(ctx context.Context, o demoOptions) error {
	if o.events <= 0 {
		return usageError("pass a positive number of events, e.g. --events 2000", "bad --events %d", o.events)
	}
	temporary := o.dir == ""
	if temporary {
		d, err := os.MkdirTemp("", "custody-demo-")
		if err != nil {
			return fmt.Errorf("creating a temporary directory for the demo: %w", err)
		}
		o.dir = d
		// Registered first, so it runs last: after the server and the
		// witness have stopped and closed their files.
		defer func() {
			if err := os.RemoveAll(d); err != nil {
				e.progress("could not remove the temporary directory %s: %v", d, err)
				return
			}
			e.progress("removed the temporary directory %s", d)
		}()
	}
	f := logFiles{o.dir}
	for _, p := range []string{f.key(), f.pub(), f.db()} {
		if exists(p) {
			return withHint(fmt.Errorf("%s already exists: the demo needs a fresh directory", p), "pick a new --dir, or leave it out for a temporary one")
		}
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", o.dir, err)
	}
	e.progress("creating the log in %s", o.dir)

	// The log: keys and the signed size-0 checkpoint.
	if _, err := writeKeyPair(strings.TrimSuffix(f.key(), ".key"), demoOrigin); err != nil {
		return err
	}
	signer, err := loadSigner(f.key())
	if err != nil {
		return err
	}
	st, err := openStore("", f)
	if err != nil {
		return err
	}
	err = log.Create(ctx, st, signer)
	st.Close()
	if err != nil {
		return fmt.Errorf("writing the first checkpoint: %w", err)
	}
	logVerifier, err := loadVerifier(f.pub())
	if err != nil {
		return err
	}

	// Files: tokens and policy.
	tokenFile := filepath.Join(o.dir, "tokens.txt")
	tok := make([]byte, 32)
	crand.Read(tok)
	token := hex.EncodeToString(tok)
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	policyFile := filepath.Join(o.dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(demoPolicy), 0o644); err != nil {
		return err
	}

	// The witness, served in this process.
	e.progress("starting a local witness")
	wPrefix := filepath.Join(o.dir, "witness")
	wvkey, err := writeWitnessKeyPair(wPrefix, demoWitness)
	if err != nil {
		return err
	}
	wsigner, _, err := loadCosigner(wPrefix + ".key")
	if err != nil {
		return err
	}
	wdir := filepath.Join(o.dir, "witness.d")
	if err := os.MkdirAll(wdir, 0o700); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w, err := wsrv.Open(wsrv.Config{Dir: wdir, Signer: wsigner, Logs: []note.Verifier{logVerifier}, Logger: logger})
	if err != nil {
		return err
	}
	defer w.Close()
	wln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	wsv := newHTTPServer(w.Handler(), logger)
	werrc := make(chan error, 1)
	go func() { werrc <- wsv.Serve(wln) }()
	witnessURL := "http://" + wln.Addr().String()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		wsv.Shutdown(sctx)
		<-werrc
	}()

	// The log server, with the witness and a quorum of 1.
	e.progress("starting the log server (witness %s, quorum 1)", witnessURL)
	so := serveOptions{
		dir: o.dir, listen: o.listen, tokenFile: tokenFile, logLevel: "warn",
		maxBatch: log.DefaultMaxBatch, maxWait: log.DefaultMaxWait,
		witnesses: []string{witnessURL + "=" + wvkey}, quorum: 1, policy: policyFile,
		witnessTimeout:      log.DefaultWitnessTimeout,
		maxConcurrentWrites: httpapi.DefaultMaxConcurrentWrites,
	}
	sctx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	ready := make(chan string, 1)
	serrc := make(chan error, 1)
	go func() { serrc <- e.serve(sctx, so, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-serrc:
		return err
	}
	base := "http://" + addr
	// From here on, stop the server and wait for it before returning.
	wait := func(err error) error {
		stopServer()
		if serr := <-serrc; err == nil {
			err = serr
		}
		return err
	}

	// The workload, through the HTTP API.
	events, injected := demoWorkload(o.seed, o.events, o.violations, time.Now())
	cl, err := newClient(base, token)
	if err != nil {
		return wait(err)
	}
	// Every receipt, one JSON object a line, in the order of the events.
	receiptsFile := filepath.Join(o.dir, "receipts.jsonl")
	rf, err := os.OpenFile(receiptsFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return wait(fmt.Errorf("creating %s: %w", receiptsFile, err))
	}
	defer rf.Close()
	for i := 0; i < len(events); i += demoBatch {
		batch := events[i:min(i+demoBatch, len(events))]
		lines := make([][]byte, len(batch))
		for j, ev := range batch {
			lines[j] = demoJSON(ev)
		}
		b, err := cl.postEventsRaw(ctx, lines, demoRetries)
		if err != nil {
			return wait(fmt.Errorf("appending events: %w", err))
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		if _, err := rf.Write(b); err != nil {
			return wait(fmt.Errorf("writing %s: %w", receiptsFile, err))
		}
		e.progress("appended %d/%d events", i+len(batch), len(events))
	}
	if err := rf.Close(); err != nil {
		return wait(fmt.Errorf("writing %s: %w", receiptsFile, err))
	}
	e.progress("wrote %d receipts to %s", len(events), receiptsFile)
	if o.violations {
		e.progress("injected violations: %s", strings.Join(injected, "; "))
	}

	// The audit, over HTTP, trusting nothing the server says.
	e.progress("auditing the log")
	ao := auditOptions{trust: trustOptions{key: f.pub()}, log: base, policy: policyFile, noState: true}
	rep, err := e.runAudit(ctx, &ao, true)
	if err != nil {
		return wait(err)
	}
	audit.WriteReport(e.stdout, rep)
	fmt.Fprintf(e.stdout, "\ndashboard:  %s/   <- open this in a browser\n", base)
	fmt.Fprintf(e.stdout, "log:        %s\n", base)
	fmt.Fprintf(e.stdout, "checkpoint: %s/checkpoint\n", base)
	fmt.Fprintf(e.stdout, "witness:    %s (%s)\n", witnessURL, wvkey)
	if temporary {
		fmt.Fprintf(e.stdout, "directory:  %s (temporary: removed on Ctrl-C; pass --dir to keep the files)\n\n", o.dir)
	} else {
		fmt.Fprintf(e.stdout, "directory:  %s\n\n", o.dir)
	}
	fmt.Fprintf(e.stdout, "try:\n")
	fmt.Fprintf(e.stdout, "  curl -s %s/v1/stats\n", base)
	fmt.Fprintf(e.stdout, "  custody audit --log %s --key %s --policy %s --no-state\n", base, f.pub(), policyFile)
	fmt.Fprintf(e.stdout, "  custody verify receipt %s --key %s\n", receiptsFile, f.pub())
	fmt.Fprintf(e.stdout, "  custody append --log %s --token-file %s < events.jsonl\n\n", base, tokenFile)
	fmt.Fprintf(e.stdout, "serving until Ctrl-C\n")
	if o.reported != nil {
		o.reported(base)
	}
	select {
	case <-ctx.Done():
		return wait(nil)
	case err := <-serrc:
		return err
	}
}

// progress prints one progress line on stderr.
func (e *env) progress(format string, args ...any) {
	fmt.Fprintf(e.stderr, "custody demo: "+format+"\n", args...)
}

// demoEvent is a generated event with its generation order (the tie-break
// between events of the same second).
type demoEvent struct {
	ev  record.Event
	seq int
}

// demoWorkload generates n events, sorted by time, all before now and after
// now−demoSpan. With violations it also returns a description of each
// injected violation.
func demoWorkload(seed uint64, n int, violations bool, now time.Time) ([]record.Event, []string) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	now = now.UTC().Truncate(time.Second)
	start := now.Add(-demoSpan)
	var out []demoEvent
	var injected []string
	counts := map[string]int{}
	euBad, noTransfer := 0, false
	add := func(ev record.Event) {
		if len(out) < n {
			out = append(out, demoEvent{ev, len(out)})
		}
	}
	for s := 0; len(out) < n; s++ {
		pick := r.IntN(100)
		reg := demoRegions[len(demoRegions)-1]
		for _, c := range demoRegions {
			if pick < c.weight {
				reg = c
				break
			}
			pick -= c.weight
		}
		counts[reg.region]++
		sample := fmt.Sprintf("smp-%s-%05d", strings.ToLower(reg.region), counts[reg.region])
		cust := sha256.Sum256(fmt.Appendf(nil, "customer %s-%03d", reg.region, r.IntN(200)))
		base := record.Event{Sample: sample, Region: reg.region, Customer: hex.EncodeToString(cust[:])}
		// The lifecycle takes at most about 9 minutes and starts in the
		// first 40 of the span, so every event is at least a minute old.
		t := start.Add(time.Duration(r.IntN(40*60)) * time.Second)
		step := func(lo, hi int) time.Time {
			t = t.Add(time.Duration(lo+r.IntN(hi-lo+1)) * time.Second)
			return t
		}
		ev := func(a record.Action, loc, to, actor string, at time.Time) record.Event {
			e := base
			e.Action, e.Location, e.To, e.Actor, e.Time = a, loc, to, actor, at
			return e
		}
		skipTransfer, badLab := false, ""
		if violations {
			switch {
			case reg.region == "EU" && euBad < 3:
				euBad++
				badLab = "ru-mow-1"
				injected = append(injected, sample+" analysed at ru-mow-1 with no transfer there")
			case reg.region != "EU" && !noTransfer:
				noTransfer, skipTransfer = true, true
				injected = append(injected, sample+" stored at "+demoLab+" with no logged transfer")
			}
		}
		add(ev(record.Collected, reg.edge, "", "collector/1.4", step(0, 0)))
		tt := step(10, 60)
		if !skipTransfer {
			add(ev(record.Transferred, reg.edge, demoLab, "mover/2.1", tt))
		}
		add(ev(record.Stored, demoLab, "", "vault/3.0", step(5, 30)))
		at := step(30, 240)
		add(ev(record.Analysed, demoLab, "", "analyser/5.2", at))
		if badLab != "" {
			add(ev(record.Analysed, badLab, "", "analyser/5.2", at.Add(time.Second)))
		}
		add(ev(record.Deleted, reg.edge, "", "janitor/1.0", step(30, 120)))
		add(ev(record.Deleted, demoLab, "", "janitor/1.0", step(30, 120)))
	}
	slices.SortStableFunc(out, func(a, b demoEvent) int {
		if c := a.ev.Time.Compare(b.ev.Time); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	evs := make([]record.Event, len(out))
	for i, d := range out {
		evs[i] = d.ev
	}
	return evs, injected
}

// demoJSON is the submission form of ev (no logged time).
func demoJSON(ev record.Event) []byte {
	m := map[string]string{
		"sample": ev.Sample, "action": string(ev.Action), "location": ev.Location,
		"region": ev.Region, "customer": ev.Customer, "actor": ev.Actor,
		"time": ev.Time.UTC().Format(time.RFC3339),
	}
	if ev.To != "" {
		m["to"] = ev.To
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}
