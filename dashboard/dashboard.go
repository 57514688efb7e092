// Package dashboard is the transparency centre's web page: what a regulator,
// journalist or customer sees at GET / of a custody server.
//
// It shows the current signed checkpoint with its log signature and witness
// cosignatures, a chart of events per customer region × data centre (the
// cells the routing policy allows drawn apart from the rest), the most
// recent events, a sample lookup that shows a sample's whole custody chain
// with each event's inclusion proof checked against the current checkpoint,
// and, when the server has a routing policy, the findings of an audit that
// follows the log as it grows.
//
// When the log keeps the verifiable sample index, the lookup also says
// "complete as of checkpoint N" (or "never logged as of checkpoint N") from
// the sample's proof, verified by the server with sampleindex.Verify.
//
// Templates, style sheet and scripts are embedded (no CDN, works offline).
// Every page is complete without JavaScript; the two scripts only add a
// second, independent check in the reader's browser (Web Crypto SHA-256)
// of the inclusion proofs (static/verify.js) and of the sample proof
// (static/sampleproof.js). Times are shown in UTC, labelled as such.
//
// A page view costs the same on a log of ten entries or of ten million: the
// region × data centre counts are kept incrementally (stats.Counter, fed by
// the log's commits),
// the findings by a background follower (Run), and a page reads only the
// newest entries.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/report"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Defaults of Config.
const (
	// DefaultRecent is how many of the newest events the front page lists.
	DefaultRecent = 20
	// DefaultKeptFindings is how many of the newest findings are kept for
	// the findings panel (all are counted).
	DefaultKeptFindings = 200
	// MaxChain is the most events of one sample the lookup shows (and so
	// the most inclusion proofs one lookup computes); it links to the
	// API's pages (GET /v1/samples/{sample}?after=…) for the rest.
	MaxChain = 1000
)

// Config configures a Dashboard.
type Config struct {
	// Log is the running log the dashboard shows. Required.
	Log *log.Log
	// Stats are the log's region × location counts (a stats.Counter fed
	// by the log's commits). Required.
	Stats Counts
	// Verifier is the log's public key: the checkpoint's log signature is
	// verified with it before it is shown. Required.
	Verifier note.Verifier
	// Witnesses are the cosignature verifiers of the witnesses the server
	// knows; cosignatures by other keys are shown as unverified.
	Witnesses []note.Verifier
	// Policy, if set, is the routing policy: the chart marks the cells it
	// allows, and a background audit reports findings in a panel.
	Policy *audit.Policy
	// LogKey is the log's verifier key string (its log.pub), which the
	// regulator's report at /report names; "" serves no report.
	LogKey string
	// PolicyFile is the file Policy was read from, named (with its
	// SHA-256) in the report; "" names none.
	PolicyFile string
	// Activity, if set, is the log's flows and time series (a
	// stats.Counter, which keeps them with its counts): the flows and
	// timeline pages and the report read it. Nil: those pages say the
	// server keeps no activity.
	Activity activity.Reader
	// Checkpoints, if set, is the log's store: the timeline's witness
	// freshness is read from its stored checkpoints by Run (and saved in
	// it if it is a store.Aggregator). Nil: the timeline has no history.
	Checkpoints CheckpointStore
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
	// Recent is how many of the newest events to list; 0: DefaultRecent.
	Recent int
	// Now returns the current time; nil: time.Now.
	Now func() time.Time
}

// Counts are the event counts the chart shows (stats.Counter).
type Counts interface {
	// Counted is how many entries, from index 0, are counted.
	Counted() uint64
	// Counts is region -> location -> events.
	Counts() map[string]map[string]uint64
}

// Dashboard serves the pages. Create it with New; with a policy, run its
// background audit with Run. It is safe for concurrent use.
type Dashboard struct {
	cfg       Config
	verifiers note.Verifiers
	tmpl      *template.Template
	static    http.Handler
	auditor   *auditor  // nil without a policy
	tl        *timeline // the timeline page's state (timeline.go)
	logger    *slog.Logger
	report    reportCache // the live report (report.go)

	// policyName and policySHA256 name cfg.PolicyFile in the report.
	policyName   string
	policySHA256 [32]byte

	// index is the front page as last built, and what it was built from.
	index struct {
		mu     sync.Mutex
		key    indexKey
		page   []byte
		builds int // pages built (for tests)
	}
}

// New returns a dashboard for cfg.Log. It starts nothing: with a policy,
// the findings panel stays empty until Run audits the log.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Log == nil || cfg.Stats == nil || cfg.Verifier == nil {
		return nil, errors.New("dashboard: Config.Log, Config.Stats and Config.Verifier are required")
	}
	if cfg.Recent <= 0 {
		cfg.Recent = DefaultRecent
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: parsing templates: %w", err)
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	d := &Dashboard{
		cfg:       cfg,
		verifiers: note.VerifierList(append([]note.Verifier{cfg.Verifier}, cfg.Witnesses...)...),
		tmpl:      tmpl,
		static:    http.StripPrefix("/static/", http.FileServerFS(sub)),
		logger:    logger,
	}
	if cfg.Policy != nil {
		d.auditor = newAuditor(cfg.Policy, DefaultKeptFindings, cfg.Log.Origin())
	}
	if cfg.PolicyFile != "" {
		if d.policyName, d.policySHA256, err = report.PolicyDigest(cfg.PolicyFile); err != nil {
			return nil, fmt.Errorf("dashboard: the policy file for the report: %w", err)
		}
	}
	if d.tl, err = newTimeline(cfg, logger); err != nil {
		return nil, err
	}
	return d, nil
}

// Run is the background audit of a dashboard with a policy (it reads the
// whole log once and then follows it) and the timeline's witness history
// (with Config.Checkpoints), until ctx is done. Without either there is
// nothing to run: it returns at once.
func (d *Dashboard) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { d.tl.run(ctx) })
	if d.auditor != nil {
		d.auditor.follow(ctx, d.cfg.Log, d.logger)
	}
	wg.Wait()
}

// ServeHTTP serves GET (and HEAD) /, /sample?id=SAMPLE, /flows, /timeline,
// /report and /static/….
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, r.Method+" "+r.URL.Path+": use GET", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	switch {
	case r.URL.Path == "/":
		d.serveIndex(w, r)
	case r.URL.Path == "/sample":
		d.render(w, r, "sample.html", func(ctx context.Context) (any, int, error) {
			return d.samplePage(ctx, r.URL.Query().Get("id"))
		})
	case r.URL.Path == "/flows":
		d.serveFlows(w, r)
	case r.URL.Path == "/timeline":
		d.serveTimeline(w, r)
	case r.URL.Path == "/report":
		d.serveReport(w, r)
	case r.URL.Path == "/favicon.ico":
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	case strings.HasPrefix(r.URL.Path, "/static/"):
		h.Set("Cache-Control", "public, max-age=3600")
		d.static.ServeHTTP(w, r)
	default:
		d.render(w, r, "error.html", func(context.Context) (any, int, error) {
			return d.errorPage("Not found", "There is no page at "+r.URL.Path+"."), http.StatusNotFound, nil
		})
	}
}

// render builds a page's data and executes its template into a buffer, so a
// failure yields a clean 500 page rather than half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, name string, build func(context.Context) (any, int, error)) {
	page, status := d.build(r, name, build)
	d.write(w, r, page, status)
}

// build executes a page's template into bytes; a failure gives the bytes of
// an error page and its status.
func (d *Dashboard) build(r *http.Request, name string, build func(context.Context) (any, int, error)) ([]byte, int) {
	data, status, err := build(r.Context())
	if err != nil {
		d.logger.Error("dashboard page", "path", r.URL.Path, "err", err)
		name, status = "error.html", http.StatusInternalServerError
		data = d.errorPage("The page could not be built", "The server could not read the log to build this page; the error is in its log. Try again shortly.")
	}
	var buf bytes.Buffer
	if err := d.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		d.logger.Error("dashboard template", "template", name, "err", err)
		return nil, http.StatusInternalServerError
	}
	return buf.Bytes(), status
}

// write sends a built page (nil: the template failed).
func (d *Dashboard) write(w http.ResponseWriter, r *http.Request, page []byte, status int) {
	if page == nil {
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(page)
	}
}

// indexKey is everything the front page shows that can change: the
// checkpoint (size, root and the signed note, which gains cosignatures),
// how far the counts and the built-in audit have got, and the audit's
// findings and error.
type indexKey struct {
	size     uint64
	root     store.Hash
	note     string
	counted  uint64
	audited  uint64
	findings uint64
	failure  string
}

func (d *Dashboard) indexKey() indexKey {
	cp := d.cfg.Log.Checkpoint()
	k := indexKey{size: cp.Size, root: cp.Root, note: string(cp.Note), counted: d.cfg.Stats.Counted()}
	if d.auditor != nil {
		k.audited, k.findings, k.failure = d.auditor.progress()
	}
	return k
}

// serveIndex serves the front page, built at most once per indexKey: a
// page view between two checkpoints (and with the counts and the audit
// caught up) sends the bytes built for the first. One page is built at a
// time; concurrent views wait for it rather than build their own.
func (d *Dashboard) serveIndex(w http.ResponseWriter, r *http.Request) {
	key := d.indexKey()
	d.index.mu.Lock()
	if d.index.page == nil || d.index.key != key {
		page, status := d.build(r, "index.html", func(ctx context.Context) (any, int, error) {
			p, err := d.indexPage(ctx)
			return p, http.StatusOK, err
		})
		if status != http.StatusOK {
			d.index.mu.Unlock()
			d.write(w, r, page, status) // errors are not kept
			return
		}
		d.index.key, d.index.page = key, page
		d.index.builds++
	}
	page := d.index.page
	d.index.mu.Unlock()
	d.write(w, r, page, http.StatusOK)
}

// Page is what every template gets besides its own data.
type Page struct {
	Title     string
	Origin    string
	Generated string
}

func (d *Dashboard) page(title string) Page {
	return Page{Title: title, Origin: d.cfg.Log.Origin(), Generated: utc(d.cfg.Now())}
}

type errorPage struct {
	Page
	Heading, Message string
}

func (d *Dashboard) errorPage(heading, msg string) errorPage {
	return errorPage{Page: d.page(heading), Heading: heading, Message: msg}
}

// leafHash is SHA-256(0x00 || data): computed here from the entry bytes,
// never taken from the store.
func leafHash(data []byte) [32]byte {
	return verify.LeafHash(data)
}

// entries reads the published entries [start, end) and decodes them.
func decodeEntries(es []store.Entry) ([]record.Event, error) {
	out := make([]record.Event, len(es))
	for i, e := range es {
		ev, err := record.DecodeEntry(e.Data)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.Index, err)
		}
		out[i] = ev
	}
	return out, nil
}
