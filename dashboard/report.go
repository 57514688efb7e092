package dashboard

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/report"
	"github.com/custodylog/custody/verify"
)

// liveReportProofs is the regulator's report's ProofSource for the live
// log: entries and inclusion proofs read from the log at the size of the
// report's checkpoint (report.Write checks each against its root).
type liveReportProofs struct {
	log  *log.Log
	size uint64
}

func (p liveReportProofs) Prove(ctx context.Context, indices []uint64, fn func(index uint64, entry []byte, proof []verify.Hash) error) error {
	for _, i := range indices {
		es, err := p.log.Entries(ctx, i, i+1)
		if err != nil {
			return err
		}
		if len(es) != 1 || es[0].Index != i {
			return fmt.Errorf("dashboard: the log has no entry %d", i)
		}
		raw, err := p.log.InclusionProof(ctx, i, p.size)
		if err != nil {
			return err
		}
		proof := make([]verify.Hash, len(raw))
		for j, h := range raw {
			if len(h) != len(proof[j]) {
				return fmt.Errorf("dashboard: inclusion proof of entry %d: a hash of %d bytes", i, len(h))
			}
			copy(proof[j][:], h)
		}
		if err := fn(i, es[0].Data, proof); err != nil {
			return err
		}
	}
	return nil
}

// reportCache is the live report as last built, and for which checkpoint
// and audit progress: one build per change, as the front page.
type reportCache struct {
	mu   sync.Mutex
	key  indexKey
	page []byte
}

// serveReport serves /report: the regulator's report (package report) of
// the live log, built from the current checkpoint, the counts and
// activity the server keeps and the built-in audit's findings (the newest
// DefaultKeptFindings, each with its entry's inclusion proof). It is the
// same file `custody audit --report` writes and `custody verify report`
// re-checks; a full audit by the reader lists every finding.
func (d *Dashboard) serveReport(w http.ResponseWriter, r *http.Request) {
	if d.cfg.LogKey == "" {
		d.render(w, r, "error.html", func(context.Context) (any, int, error) {
			return d.errorPage("No report", "This server was not given its log key, so it cannot write a report that names it; run 'custody audit --report FILE.html' instead."), http.StatusNotFound, nil
		})
		return
	}
	key := d.indexKey()
	d.report.mu.Lock()
	defer d.report.mu.Unlock()
	if d.report.page == nil || d.report.key != key {
		var buf bytes.Buffer
		if err := report.Write(r.Context(), &buf, d.reportInput()); err != nil {
			d.logger.Error("dashboard report", "err", err)
			d.render(w, r, "error.html", func(context.Context) (any, int, error) {
				return d.errorPage("The report could not be built", "The server could not read the log to build the report; the error is in its log. Try again shortly."), http.StatusInternalServerError, nil
			})
			return
		}
		d.report.key, d.report.page = key, buf.Bytes()
	}
	h := w.Header()
	// The report is a document of its own: its styles are inline.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Disposition", `inline; filename="custody-report.html"`)
	h.Set("Cache-Control", "no-cache")
	if r.Method != http.MethodHead {
		w.Write(d.report.page)
	}
}

// reportInput is the report of the live log.
func (d *Dashboard) reportInput() report.Input {
	cp := d.cfg.Log.Checkpoint()
	rep := &audit.AuditReport{
		Origin:     d.cfg.Log.Origin(),
		Size:       cp.Size,
		Root:       base64.StdEncoding.EncodeToString(cp.Root[:]),
		Counts:     d.cfg.Stats.Counts(),
		Checkpoint: string(cp.Note),
	}
	var total uint64
	if d.auditor != nil {
		v := d.auditor.view(cp.Size)
		for i := len(v.Recent) - 1; i >= 0; i-- { // oldest first
			if f := v.Recent[i]; f.Index < cp.Size {
				rep.Findings = append(rep.Findings, f)
			}
		}
		total = v.Total
	}
	in := report.Input{
		LogKey:     d.cfg.LogKey,
		Checkpoint: cp.Note,
		Audit:      rep,
		Policy:     d.cfg.Policy,
		PolicyName: d.policyName,
		Version:    report.Version(),
		Time:       d.cfg.Now().UTC(),
		Proofs:     liveReportProofs{log: d.cfg.Log, size: cp.Size},
		MaxProofs:  DefaultKeptFindings,
		// The built-in audit keeps the newest findings; the report lists
		// them and says how many there are in all.
		TotalFindings: total,
	}
	in.PolicySHA256 = d.policySHA256
	if d.cfg.Activity != nil {
		in.Activity = d.cfg.Activity
	}
	for _, v := range d.cfg.Witnesses {
		in.Witnesses = append(in.Witnesses, report.Witness{Name: v.Name(), Verifier: v})
	}
	return in
}
