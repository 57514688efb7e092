// Package report writes and checks the regulator's report of an audit
// (custody audit --report FILE.html): one self-contained HTML file, readable
// and printable without network or scripts, that shows what was audited
// (log, key, checkpoint with every cosignature, policy and its SHA-256,
// custody version, time), the region × data-centre counts, the flows and
// the timeline, every finding with its entry and that entry's inclusion
// proof, and the evidence of any verification failure.
//
// The signed checkpoint and the proofs are embedded as text in a format
// specified byte for byte in docs/report.md, so that anyone holding the
// log's public key can re-check the report years later (Verify; custody
// verify report), without the log.
package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/svgchart"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// DefaultMaxProofs is how many findings a report lists, each with its
// entry's inclusion proof, unless Input.MaxProofs says otherwise; the
// report says how many more the audit found. 10,000 findings make a
// report of about 15 MB.
const DefaultMaxProofs = 10000

// ProofSource gives the entries of a log and their inclusion proofs in the
// tree of the report's checkpoint. Write checks every proof it is given
// against the checkpoint's root, so a source that lies makes Write fail,
// not write a report that does not verify.
type ProofSource interface {
	// Prove calls fn, in order, with each of indices (ascending, distinct,
	// each below the checkpoint's size), the entry at that index and its
	// RFC 6962 inclusion proof in the checkpoint's tree. It stops at fn's
	// first error and returns it.
	Prove(ctx context.Context, indices []uint64, fn func(index uint64, entry []byte, proof []verify.Hash) error) error
}

// Input is what a report shows. Write needs LogKey, and Checkpoint and
// Audit unless the audit failed (Failure), and Proofs when the audit has
// findings; the rest is shown when set.
type Input struct {
	// LogKey is the log's verifier key string (name+hash+base64): the key
	// the audit verified the checkpoint with.
	LogKey string
	// Checkpoint is the signed checkpoint note the audit verified,
	// verbatim (AuditReport.Checkpoint). For a failed audit: the signed
	// checkpoint the failure was found against, if it verified, else nil.
	Checkpoint []byte
	// Audit is the audit's result; nil when the audit failed.
	Audit *audit.AuditReport
	// Failure is the audit's error when the log failed verification (an
	// error holding a *verify.VerificationError); its evidence is shown.
	Failure error
	// Witnesses are cosignature verifiers (a trust policy's witnesses):
	// the checkpoint's cosignatures by them are marked as verified, and
	// named after them. Others are listed as not checked.
	Witnesses []Witness
	// PolicyName is the routing policy's file name, PolicySHA256 the
	// SHA-256 of its bytes (see PolicyDigest).
	PolicyName   string
	PolicySHA256 [32]byte
	// Version is the custody version that audited (Version()).
	Version string
	// Time is when the audit ran.
	Time time.Time
	// Activity is the log's flows and time series; nil: the report says
	// they are not available.
	Activity activity.Reader
	// Policy, if set, is the routing policy: the flow diagram marks the
	// transfers it forbids.
	Policy *audit.Policy
	// Proofs gives the findings' entries and inclusion proofs.
	Proofs ProofSource
	// MaxProofs is how many findings to list with their proofs; 0 is
	// DefaultMaxProofs.
	MaxProofs int
	// TotalFindings is how many findings the audit reported when
	// Audit.Findings holds only some of them (a live log's newest); the
	// report lists Audit.Findings and says how many more there are. 0 (or
	// fewer than Audit.Findings): all are in Audit.Findings.
	TotalFindings uint64
}

// Witness is a witness known to the report's reader: its name (in the
// trust policy) and its cosignature verifier.
type Witness struct {
	Name     string
	Verifier note.Verifier
}

// Write writes the report of in to w as one self-contained HTML file. It
// reads the findings' entries and proofs from in.Proofs, checks each
// against the checkpoint's root and each entry's sample against its
// finding's, and fails (writing nothing) if any does not hold.
func Write(ctx context.Context, w io.Writer, in Input) error {
	p, err := build(ctx, in)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := page.Execute(&b, p); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err = w.Write(b.Bytes())
	return err
}

// WriteFile writes the report of in to path (mode 0644), through a
// temporary file renamed over it, so that a failure leaves no partial
// report.
func WriteFile(ctx context.Context, path string, in Input) error {
	var b bytes.Buffer
	if err := Write(ctx, &b, in); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*.html")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// PolicyDigest returns the base name of the policy file at path and the
// SHA-256 of its bytes, for Input.PolicyName and PolicySHA256.
func PolicyDigest(path string) (string, [32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", [32]byte{}, err
	}
	return filepath.Base(path), sha256.Sum256(b), nil
}

// Version returns custody's version as the Go toolchain recorded it in
// the binary: the module version and, when built from a checkout, the
// commit (and "+dirty" for uncommitted changes); "unknown" without build
// information.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		v += " commit " + rev[:min(12, len(rev))]
		if modified == "true" {
			v += "+dirty"
		}
	}
	return v + ", " + bi.GoVersion
}

// FromAudit returns the Input for the audit that produced rep, or failed
// with auditErr, reading the proofs from c, the audit's Client. It fills
// everything but MaxProofs (Activity is rep.Activity): the log key is keyArg (a
// verifier key, or a file holding one: verify.LoadVerifierKey), the
// witnesses are trust's (nil: none checked), the policy file is read from
// policyFile. It returns an error if neither rep nor a verification
// failure is given, or the key or the policy file cannot be read.
func FromAudit(c *verify.Client, keyArg string, rep *audit.AuditReport, auditErr error, policyFile string, trust *verify.TrustPolicy) (Input, error) {
	in := Input{Audit: rep, Version: Version(), Time: time.Now().UTC()}
	if keyArg == "" {
		return in, errors.New("report: the report names the log's key: pass it with --key")
	}
	var err error
	if in.LogKey, err = verify.LoadVerifierKey(keyArg); err != nil {
		return in, fmt.Errorf("report: the log key: %w", err)
	}
	if policyFile != "" {
		if in.PolicyName, in.PolicySHA256, err = PolicyDigest(policyFile); err != nil {
			return in, fmt.Errorf("report: reading the policy: %w", err)
		}
		if in.Policy, err = audit.LoadPolicy(policyFile); err != nil {
			return in, fmt.Errorf("report: %w", err)
		}
	}
	if trust != nil {
		for _, w := range trust.Witnesses() {
			v, err := verify.NewCosignatureVerifier(w.VKey)
			if err != nil {
				return in, fmt.Errorf("report: witness %s: %w", w.Name, err)
			}
			in.Witnesses = append(in.Witnesses, Witness{Name: w.Name, Verifier: v})
		}
	}
	switch ve, ok := verify.IsVerificationError(auditErr); {
	case rep != nil:
		if rep.Activity != nil {
			in.Activity = rep.Activity
		}
		in.Checkpoint = []byte(rep.Checkpoint)
		cp, err := c.OpenCheckpoint(in.Checkpoint)
		if err != nil {
			return in, fmt.Errorf("report: the audit's checkpoint: %w", err)
		}
		in.Proofs = ClientProofs{Client: c, Checkpoint: cp}
	case ok:
		in.Failure = auditErr
		if ve.Evidence.NewCheckpoint != "" {
			if _, _, err := verify.OpenCheckpoint([]byte(ve.Evidence.NewCheckpoint), c.Origin(), c.Verifiers()); err == nil {
				in.Checkpoint = []byte(ve.Evidence.NewCheckpoint)
			}
		}
	default:
		return in, errors.New("report: no audit result and no verification failure to report")
	}
	return in, nil
}

// WriteAudit writes to path the report of the audit that produced rep or
// failed with auditErr (FromAudit's arguments). It is what custody audit
// --report does.
func WriteAudit(ctx context.Context, path string, c *verify.Client, keyArg string, rep *audit.AuditReport, auditErr error, policyFile string, trust *verify.TrustPolicy) error {
	in, err := FromAudit(c, keyArg, rep, auditErr, policyFile, trust)
	if err != nil {
		return err
	}
	return WriteFile(ctx, path, in)
}

// ClientProofs is the ProofSource of a verify.Client at a checkpoint it
// verified: entries from authenticated entry bundles, proofs from
// authenticated hash tiles (each proof checked, verify.Client.ProveEntry).
// Entries in one bundle are read with one request.
type ClientProofs struct {
	Client     *verify.Client
	Checkpoint verify.Checkpoint
}

// Prove implements ProofSource.
func (s ClientProofs) Prove(ctx context.Context, indices []uint64, fn func(uint64, []byte, []verify.Hash) error) error {
	for i := 0; i < len(indices); {
		// A run of indices in one entry bundle.
		j := i + 1
		for j < len(indices) && indices[j]/verify.TileWidth == indices[i]/verify.TileWidth {
			j++
		}
		want := indices[i:j]
		k := 0
		err := s.Client.Entries(ctx, want[0], want[len(want)-1]+1, s.Checkpoint, func(index uint64, entry []byte) error {
			if k >= len(want) || index != want[k] {
				return nil
			}
			k++
			proof, err := s.Client.ProveEntry(ctx, index, entry, s.Checkpoint)
			if err != nil {
				return err
			}
			return fn(index, bytes.Clone(entry), proof)
		})
		if err != nil {
			return err
		}
		i = j
	}
	return nil
}

// view is what the page template renders.
type view struct {
	Style      template.CSS
	Title      string
	Status     string
	Origin     string
	LogKey     string
	Size       uint64
	Root       string
	Extensions []string
	Sigs       []sigView
	Checkpoint string
	HasCP      bool

	PolicyName, PolicySHA256 string
	Version, Time            string
	SampleIndex              string
	Sites                    *audit.SiteStats
	From                     uint64

	Matrix matrixView

	HasActivity  bool
	ActivityFrom uint64 // the first entry the activity covers
	FlowSVG      template.HTML
	TimelineSVG  template.HTML
	Flows        []activity.Flow
	FlowTotal    uint64
	Collections  []activity.Collection
	Series       seriesView

	Findings  uint64
	Rows      []rowView
	ByKind    []kindCount
	More      uint64
	MaxProofs int
	Proofs    []proofView

	Failure      string
	FailureText  string
	SiteEvidence []audit.SiteEvidence
}

type sigView struct {
	Name, KeyID, Kind, Time, Status string
}

type rowView struct {
	Index  uint64
	Kind   string
	Sample string
	Detail string
}

type kindCount struct {
	Kind string
	N    uint64
}

type proofView struct {
	Index  uint64
	Event  string // the entry as shown to people: its fields
	Text   string // the proof block
	Hashes int
}

type matrixView struct {
	Locations []string
	Rows      []matrixRow
	Totals    []uint64
	Total     uint64
}

type matrixRow struct {
	Region string
	Cells  []uint64
	Total  uint64
}

// build checks in and gathers everything the page shows.
func build(ctx context.Context, in Input) (*view, error) {
	if in.LogKey == "" {
		return nil, errors.New("report: no log key")
	}
	v := &view{Style: template.CSS(style), LogKey: in.LogKey, Version: in.Version, PolicyName: in.PolicyName, Time: in.Time.UTC().Format(time.RFC3339)}
	if in.PolicyName != "" {
		v.PolicySHA256 = hex.EncodeToString(in.PolicySHA256[:])
	}
	if v.Version == "" {
		v.Version = Version()
	}
	if in.Time.IsZero() {
		v.Time = time.Now().UTC().Format(time.RFC3339)
	}
	lv, err := verify.NewVerifier(in.LogKey)
	if err != nil {
		return nil, fmt.Errorf("report: the log key: %w", err)
	}
	v.Origin = lv.Name()
	var cp verify.Checkpoint
	if in.Checkpoint != nil {
		if cp, _, err = verify.OpenCheckpoint(in.Checkpoint, lv.Name(), note.VerifierList(lv)); err != nil {
			return nil, fmt.Errorf("report: the checkpoint does not verify with the log key: %w", err)
		}
		v.HasCP, v.Checkpoint = true, string(in.Checkpoint)
		v.Size, v.Root, v.Extensions = cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:]), cp.Extensions
		v.Sigs = signatures(in.Checkpoint, lv, in.Witnesses)
	}
	if in.Audit == nil {
		ve, ok := verify.IsVerificationError(in.Failure)
		if !ok {
			return nil, errors.New("report: no audit result and no verification failure to report")
		}
		v.Status = StatusFailed
		v.FailureText = in.Failure.Error()
		b, err := jsonIndent(ve.Evidence)
		if err != nil {
			return nil, err
		}
		v.Failure = b
		v.Title = "Audit FAILED: " + v.Origin
		return v, nil
	}
	rep := in.Audit
	if in.Checkpoint == nil {
		return nil, errors.New("report: an audit result without its checkpoint")
	}
	if rep.Origin != cp.Origin || rep.Size != cp.Size || rep.Root != v.Root {
		return nil, fmt.Errorf("report: the audit is of %s at size %d, the checkpoint %s at size %d", rep.Origin, rep.Size, cp.Origin, cp.Size)
	}
	v.SampleIndex, v.Sites, v.From, v.SiteEvidence = rep.SampleIndex, rep.Sites, rep.From, rep.SiteEvidence
	v.Matrix = matrix(rep.Counts)
	if in.Activity != nil {
		v.HasActivity, v.ActivityFrom = true, rep.ActivityFrom
		v.Flows = in.Activity.Flows()
		v.FlowTotal = in.Activity.Transfers()
		v.Collections = in.Activity.Collections()
		v.Series = series(in.Activity)
		fi := svgchart.FlowInput{Flows: v.Flows, Collections: v.Collections, ID: "report-flows"}
		if pol := in.Policy; pol != nil {
			fi.Forbidden = func(e activity.Edge) bool {
				r, ok := pol.Regions[e.Region]
				_, known := pol.Locations[e.To]
				return ok && known && !slices.Contains(r.Allowed, e.To)
			}
		}
		v.FlowSVG = svgchart.Flows(fi)
	}
	v.Findings = max(uint64(len(rep.Findings)), in.TotalFindings)
	v.Status = StatusClean
	v.Title = "Audit report: " + v.Origin
	if v.Findings > 0 {
		v.Status = StatusFindings
	}
	byKind := map[string]uint64{}
	for _, f := range rep.Findings {
		byKind[string(f.Kind)]++
	}
	for k, n := range byKind {
		v.ByKind = append(v.ByKind, kindCount{k, n})
	}
	slices.SortFunc(v.ByKind, func(a, b kindCount) int { return strings.Compare(a.Kind, b.Kind) })
	v.MaxProofs = in.MaxProofs
	if v.MaxProofs <= 0 {
		v.MaxProofs = DefaultMaxProofs
	}
	shown := rep.Findings[:min(len(rep.Findings), v.MaxProofs)]
	v.More = v.Findings - uint64(len(shown))
	var indices []uint64
	samples := map[uint64]string{}
	for _, f := range shown {
		v.Rows = append(v.Rows, rowView{f.Index, string(f.Kind), f.Sample, f.Detail})
		if s, ok := samples[f.Index]; ok && s != f.Sample {
			return nil, fmt.Errorf("report: two findings of entry %d name samples %q and %q", f.Index, s, f.Sample)
		}
		samples[f.Index] = f.Sample
		indices = append(indices, f.Index)
	}
	slices.Sort(indices)
	indices = slices.Compact(indices)
	times := map[uint64]time.Time{} // of the proved events
	if len(indices) > 0 {
		if in.Proofs == nil {
			return nil, errors.New("report: findings but no proof source")
		}
		k := 0
		err := in.Proofs.Prove(ctx, indices, func(index uint64, entry []byte, proof []verify.Hash) error {
			if k >= len(indices) || index != indices[k] {
				return fmt.Errorf("report: the proof source gave entry %d out of order", index)
			}
			k++
			if err := verify.CheckInclusion(index, cp.Size, verify.LeafHash(entry), proof, cp.Root); err != nil {
				return fmt.Errorf("report: the proof source's inclusion proof of entry %d does not verify: %w", index, err)
			}
			pv := proofView{Index: index, Hashes: len(proof), Text: string(MarshalProof(Proof{index, entry, proof}))}
			if record.KindOf(entry) == record.EntryAttestation {
				pv.Event = "a site attestation (not an event)"
			} else {
				ev, err := record.DecodeEntry(entry)
				if err != nil {
					return fmt.Errorf("report: entry %d is not a valid canonical event: %w", index, err)
				}
				if ev.Sample != samples[index] {
					return fmt.Errorf("report: entry %d is of sample %q, its finding names %q", index, ev.Sample, samples[index])
				}
				pv.Event = describe(ev)
				times[index] = ev.Time
			}
			v.Proofs = append(v.Proofs, pv)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if k != len(indices) {
			return nil, fmt.Errorf("report: the proof source gave %d of %d entries", k, len(indices))
		}
	}
	v.TimelineSVG = timeline(in.Activity, v.Rows, times)
	return v, nil
}

// jsonIndent is v as indented JSON.
func jsonIndent(v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return string(b), err
}

// describe is an event's fields for people, one line.
func describe(ev record.Event) string {
	s := fmt.Sprintf("%s %s at %s", ev.Sample, ev.Action, ev.Location)
	if ev.To != "" {
		s += " to " + ev.To
	}
	s += ", region " + ev.Region + ", time " + ev.Time.UTC().Format(time.RFC3339)
	if !ev.Logged.IsZero() {
		s += ", logged " + ev.Logged.UTC().Format(time.RFC3339)
	}
	if ev.Actor != "" {
		s += ", actor " + ev.Actor
	}
	return s
}

// signatures lists the signature lines of a signed note: the log's
// (verified with lv), the witnesses' (cosignature/v1, with their time;
// verified when ws knows the key) and others (not checked).
func signatures(msg []byte, lv note.Verifier, ws []Witness) []sigView {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return nil
	}
	known := []note.Verifier{lv}
	names := map[[2]string]string{}
	for _, w := range ws {
		known = append(known, w.Verifier)
		names[[2]string{w.Verifier.Name(), fmt.Sprintf("%08x", w.Verifier.KeyHash())}] = w.Name
	}
	verified := map[[2]string]bool{}
	if n, err := note.Open(msg, note.VerifierList(known...)); err == nil {
		for _, s := range n.Sigs {
			verified[[2]string{s.Name, fmt.Sprintf("%08x", s.Hash)}] = true
		}
	}
	var out []sigView
	for _, line := range strings.Split(strings.TrimSuffix(string(msg[i+2:]), "\n"), "\n") {
		rest, ok := strings.CutPrefix(line, "— ")
		if !ok {
			continue
		}
		name, b64, ok := strings.Cut(rest, " ")
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) < 4 {
			continue
		}
		s := sigView{Name: name, KeyID: hex.EncodeToString(raw[:4]), Kind: "signature", Status: "not checked (unknown key)"}
		key := [2]string{name, s.KeyID}
		switch {
		case name == lv.Name() && s.KeyID == fmt.Sprintf("%08x", lv.KeyHash()):
			s.Kind = "log signature"
		case len(raw) == 4+8+64:
			s.Kind = "witness cosignature"
			if t, err := verify.CosignatureTime(raw); err == nil {
				s.Time = t.Format(time.RFC3339)
			}
			if w := names[key]; w != "" {
				s.Kind += " (" + w + ")"
			}
		}
		if verified[key] {
			s.Status = "verified"
		}
		out = append(out, s)
	}
	return out
}

// matrix lays out the region × location counts.
func matrix(counts map[string]map[string]uint64) matrixView {
	var m matrixView
	locs := map[string]bool{}
	var regions []string
	for r, row := range counts {
		regions = append(regions, r)
		for l := range row {
			locs[l] = true
		}
	}
	slices.Sort(regions)
	for l := range locs {
		m.Locations = append(m.Locations, l)
	}
	slices.Sort(m.Locations)
	m.Totals = make([]uint64, len(m.Locations))
	for _, r := range regions {
		row := matrixRow{Region: r}
		for i, l := range m.Locations {
			n := counts[r][l]
			row.Cells = append(row.Cells, n)
			row.Total += n
			m.Totals[i] += n
		}
		m.Total += row.Total
		m.Rows = append(m.Rows, row)
	}
	return m
}

// timeline draws the events per data centre over the activity's span,
// with the findings of rows marked at their events' times (times, by entry
// index) and linked to their entries' proofs.
func timeline(a activity.Reader, rows []rowView, times map[uint64]time.Time) template.HTML {
	if a == nil {
		return ""
	}
	first, last, ok := a.Span()
	if !ok {
		return ""
	}
	from := first.Truncate(24 * time.Hour)
	to := last.Truncate(24 * time.Hour).Add(24 * time.Hour)
	res := a.PickResolution(from, to)
	in := svgchart.TimelineInput{From: from, To: to, Bucket: res.Duration(), Counts: a.Series(from, to, res),
		Title: "Events per " + res.String() + " per data centre, findings marked", IDPrefix: "report-timeline"}
	for _, r := range rows {
		t, ok := times[r.Index]
		if !ok {
			continue
		}
		idx := strconv.FormatUint(r.Index, 10)
		in.Markers = append(in.Markers, svgchart.Marker{Time: t, Label: r.Kind, Title: "entry " + idx + ": " + r.Sample + " " + r.Kind + ": " + r.Detail,
			Href: "#entry-" + idx, ID: idx})
	}
	return svgchart.Timeline(in)
}

// seriesDays is how many days of events per data centre the report's
// timeline table shows (the newest).
const seriesDays = 92

type seriesView struct {
	Resolution string
	Locations  []string
	Rows       []seriesRow
	First      string
	Last       string
	Omitted    int // days before the first row shown
}

type seriesRow struct {
	Start string
	Cells []uint64
	Total uint64
}

// series is the daily events per data centre over the newest seriesDays
// days of the activity's span.
func series(a activity.Reader) seriesView {
	first, last, ok := a.Span()
	if !ok {
		return seriesView{}
	}
	from := first.Truncate(24 * time.Hour)
	to := last.Truncate(24 * time.Hour).Add(24 * time.Hour)
	sv := seriesView{Resolution: "day", First: first.Format(time.RFC3339), Last: last.Format(time.RFC3339)}
	if days := int(to.Sub(from) / (24 * time.Hour)); days > seriesDays {
		sv.Omitted = days - seriesDays
		from = to.Add(-seriesDays * 24 * time.Hour)
	}
	bs := a.Series(from, to, activity.Daily)
	locs := map[string]bool{}
	for _, b := range bs {
		locs[b.Location] = true
	}
	for l := range locs {
		sv.Locations = append(sv.Locations, l)
	}
	slices.Sort(sv.Locations)
	col := map[string]int{}
	for i, l := range sv.Locations {
		col[l] = i
	}
	for _, b := range bs {
		s := b.Start.Format("2006-01-02")
		if len(sv.Rows) == 0 || sv.Rows[len(sv.Rows)-1].Start != s {
			sv.Rows = append(sv.Rows, seriesRow{Start: s, Cells: make([]uint64, len(sv.Locations))})
		}
		r := &sv.Rows[len(sv.Rows)-1]
		r.Cells[col[b.Location]] += b.Events
		r.Total += b.Events
	}
	return sv
}
