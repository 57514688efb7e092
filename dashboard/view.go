package dashboard

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/httpapi"
	"github.com/custodylog/custody/internal/svgchart"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/stats"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
)

// funcs are the template helpers.
var funcs = template.FuncMap{
	"num":        num,
	"utc":        utc,
	"hex":        func(b [32]byte) string { return hex.EncodeToString(b[:]) },
	"short":      func(s string) string { return shorten(s, 16) },
	"add":        func(a, b int) int { return a + b },
	"sub":        func(a, b int) int { return a - b },
	"colx":       func(left, w, j int) int { return left + j*w + w/2 },
	"u64":        func(n int) uint64 { return uint64(n) },
	"otherLabel": func() string { return OtherLabel },
}

// num formats n with thousands separators: 1234567 → "1,234,567".
func num(n uint64) string { return svgchart.Num(n) }

// utc formats t as "2006-01-02 15:04:05 UTC"; the zero time as "—".
func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// signature is one signature line of the checkpoint note, as shown.
type signature struct {
	Name     string
	KeyID    string
	Role     string // "log", "witness" or "unknown key"
	Verified bool
	Time     time.Time // cosignature time; zero for the log's signature
}

// checkpointView is the checkpoint panel's data.
type checkpointView struct {
	Origin     string
	Size       uint64
	Root       string // base64, as in the note
	RootHex    string
	Note       string
	Signatures []signature
	Witnessed  int       // verified cosignatures
	Cosigned   time.Time // the newest verified cosignature's time
}

// checkpointView verifies the log signature on cp and describes every
// signature line. A checkpoint whose log signature does not verify is an
// error: the dashboard never shows an unverified tree head as current.
func (d *Dashboard) checkpointView(cp store.Checkpoint) (checkpointView, verify.Checkpoint, error) {
	c, n, err := verify.OpenCheckpoint(cp.Note, d.cfg.Log.Origin(), d.verifiers)
	if err != nil {
		return checkpointView{}, c, fmt.Errorf("dashboard: opening the current checkpoint: %w", err)
	}
	if c.Size != cp.Size || c.Root != cp.Root {
		return checkpointView{}, c, fmt.Errorf("dashboard: the current checkpoint's note says size %d, the log says %d", c.Size, cp.Size)
	}
	v := checkpointView{
		Origin: c.Origin, Size: c.Size,
		Root:    base64.StdEncoding.EncodeToString(c.Root[:]),
		RootHex: hex.EncodeToString(c.Root[:]),
		Note:    string(cp.Note),
	}
	logHash := d.cfg.Verifier.KeyHash()
	logName := d.cfg.Verifier.Name()
	for _, s := range n.Sigs {
		sig := signature{Name: s.Name, KeyID: fmt.Sprintf("%08x", s.Hash), Verified: true}
		if s.Name == logName && s.Hash == logHash {
			sig.Role = "log"
		} else {
			sig.Role = "witness"
			if raw, err := base64.StdEncoding.DecodeString(s.Base64); err == nil {
				if t, err := verify.CosignatureTime(raw); err == nil {
					sig.Time = t
					if t.After(v.Cosigned) {
						v.Cosigned = t
					}
				}
			}
			v.Witnessed++
		}
		v.Signatures = append(v.Signatures, sig)
	}
	for _, s := range n.UnverifiedSigs {
		v.Signatures = append(v.Signatures, signature{Name: s.Name, KeyID: fmt.Sprintf("%08x", s.Hash), Role: "unknown key"})
	}
	return v, c, nil
}

// cell is one region × data centre cell of the chart.
type cell struct {
	Region, Location string
	Count            uint64
	// Allowed is whether the policy allows the region's samples at the
	// location; Known whether there is a policy to say.
	Allowed, Known bool
	// Other is whether the cell is in the "other" row or column: the
	// regions or locations the chart does not show one by one.
	Other bool
	X, Y  int
	Label string // the count, formatted
}

// Class is the cell's CSS class: allowed, forbidden (events outside the
// policy), empty (not allowed, no events) or plain (no policy).
func (c cell) Class() string {
	switch {
	case !c.Known:
		return "plain"
	case c.Allowed:
		return "allowed"
	case c.Count > 0:
		return "forbidden"
	default:
		return "empty"
	}
}

// chartView is the region × data centre chart: an SVG grid and the same
// numbers as a table.
type chartView struct {
	Regions   []string
	Locations []string
	Rows      [][]cell // by region, then location
	RowTotals []uint64
	ColTotals []uint64
	Total     uint64
	Counted   uint64 // entries counted so far (may lag the tree at start-up)
	Outside   uint64 // events at locations the policy does not allow for their region
	HasPolicy bool
	// OtherRegions and OtherLocations are how many named regions and
	// locations with events are folded into the "other" row and column;
	// OtherBeyond says the other bucket also holds events stats.Counter
	// counted only under stats.OtherKey (past its bounds), whose names it
	// did not keep.
	OtherRegions   int
	OtherLocations int
	OtherBeyond    bool
	Width          int
	Height         int
	CellW          int
	CellH          int
	Left, Top      int
}

const (
	chartCellW = 104
	chartCellH = 44
	chartLeft  = 64
	chartTop   = 56
)

// The chart's bound. It shows every region and location the policy names,
// plus the regions and locations with the most events that the policy
// does not name, at most ChartExtraRegions rows and ChartExtraLocations
// columns of them; all others are summed in one "other" row and one
// "other" column. So the chart has at most (policy regions +
// ChartExtraRegions + 1) × (policy locations + ChartExtraLocations + 1)
// cells however many names the log holds (stats.Counter bounds those too).
const (
	ChartExtraRegions   = 8
	ChartExtraLocations = 12
	// OtherLabel names the "other" row and column: stats.OtherKey, which no
	// region or location name can equal.
	OtherLabel = stats.OtherKey
)

func (d *Dashboard) chartView() chartView {
	counts := d.cfg.Stats.Counts()
	p := d.cfg.Policy
	// Totals per region and per location, over every name counted.
	regionTotal := map[string]uint64{}
	locationTotal := map[string]uint64{}
	for r, m := range counts {
		for l, n := range m {
			regionTotal[r] += n
			locationTotal[l] += n
		}
	}
	shownRegions := map[string]bool{}
	shownLocations := map[string]bool{}
	if p != nil {
		for r := range p.Regions {
			shownRegions[r] = true
		}
		for l := range p.Locations {
			shownLocations[l] = true
		}
	}
	topExtra(shownRegions, regionTotal, ChartExtraRegions)
	topExtra(shownLocations, locationTotal, ChartExtraLocations)

	v := chartView{HasPolicy: p != nil, Counted: d.cfg.Stats.Counted(),
		CellW: chartCellW, CellH: chartCellH, Left: chartLeft, Top: chartTop}
	v.Regions = sortedKeys(shownRegions)
	v.Locations = sortedKeys(shownLocations)
	for r, n := range regionTotal {
		switch {
		case n == 0 || shownRegions[r]:
		case r == stats.OtherKey:
			v.OtherBeyond = true
		default:
			v.OtherRegions++
		}
	}
	for l, n := range locationTotal {
		switch {
		case n == 0 || shownLocations[l]:
		case l == stats.OtherKey:
			v.OtherBeyond = true
		default:
			v.OtherLocations++
		}
	}
	// The rows and columns as shown; "" stands for the other bucket.
	rows, cols := v.Regions, v.Locations
	otherRow := v.OtherRegions > 0 || regionTotal[stats.OtherKey] > 0
	otherCol := v.OtherLocations > 0 || locationTotal[stats.OtherKey] > 0
	if otherRow {
		rows = append(slices.Clip(rows), "")
	}
	if otherCol {
		cols = append(slices.Clip(cols), "")
	}
	grid := make([][]uint64, len(rows))
	rowOf := make(map[string]int, len(rows))
	colOf := make(map[string]int, len(cols))
	for i, r := range rows {
		grid[i] = make([]uint64, len(cols))
		rowOf[r] = i
	}
	for j, l := range cols {
		colOf[l] = j
	}
	for r, m := range counts {
		i, ok := rowOf[r]
		if !ok {
			i = rowOf[""]
		}
		for l, n := range m {
			j, ok := colOf[l]
			if !ok {
				j = colOf[""]
			}
			grid[i][j] += n
		}
	}
	v.ColTotals = make([]uint64, len(cols))
	for i, r := range rows {
		var row []cell
		var rowTotal uint64
		for j, l := range cols {
			c := cell{Region: r, Location: l, Count: grid[i][j], Known: p != nil, Other: r == "" || l == "",
				X: chartLeft + j*chartCellW, Y: chartTop + i*chartCellH}
			if c.Region == "" {
				c.Region = OtherLabel
			}
			if c.Location == "" {
				c.Location = OtherLabel
			}
			if p != nil {
				// Every location the policy allows is shown, so the other
				// column holds only locations no region is allowed, and the
				// other row only regions the policy does not name.
				c.Allowed = !c.Other && slices.Contains(p.Regions[r].Allowed, l)
				if !c.Allowed {
					v.Outside += c.Count
				}
			}
			c.Label = num(c.Count)
			row = append(row, c)
			rowTotal += c.Count
			v.ColTotals[j] += c.Count
		}
		v.Rows = append(v.Rows, row)
		v.RowTotals = append(v.RowTotals, rowTotal)
		v.Total += rowTotal
	}
	if otherRow {
		v.Regions = append(v.Regions, OtherLabel)
	}
	if otherCol {
		v.Locations = append(v.Locations, OtherLabel)
	}
	v.Width = chartLeft + len(cols)*chartCellW + 8
	v.Height = chartTop + len(rows)*chartCellH + 8
	return v
}

// topExtra adds to shown the n names with the largest totals (ties: by
// name) that are not shown yet. stats.OtherKey, a bucket rather than a name,
// is never picked.
func topExtra(shown map[string]bool, totals map[string]uint64, n int) {
	var cand []string
	for k, c := range totals {
		if !shown[k] && k != stats.OtherKey && c > 0 {
			cand = append(cand, k)
		}
	}
	sort.Slice(cand, func(i, j int) bool {
		if totals[cand[i]] != totals[cand[j]] {
			return totals[cand[i]] > totals[cand[j]]
		}
		return cand[i] < cand[j]
	})
	for _, k := range cand[:min(n, len(cand))] {
		shown[k] = true
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// eventView is one event as listed.
type eventView struct {
	Index   uint64
	Event   record.Event
	Where   string // "de-fra-1" or "de-fra-1 → ch-zrh-1"
	Outside bool   // the policy does not allow Location (or To) for Region
	// Signature is the event's site signature status on the front page
	// (markSignatures): "signed by site S", "site signature fails: KIND",
	// "unsigned", or "" when the log has no site signing.
	Signature string
}

func (d *Dashboard) eventView(index uint64, ev record.Event) eventView {
	v := eventView{Index: index, Event: ev, Where: ev.Location}
	if ev.To != "" {
		v.Where += " → " + ev.To
	}
	if p := d.cfg.Policy; p != nil {
		allowed := p.Regions[ev.Region].Allowed
		v.Outside = !slices.Contains(allowed, ev.Location) || (ev.To != "" && !slices.Contains(allowed, ev.To))
	}
	return v
}

// indexPage is the front page's data.
type indexPage struct {
	Page
	Checkpoint checkpointView
	Chart      chartView
	Recent     []eventView
	Findings   *findingsView
	HasPolicy  bool
	Sites      []siteView // the policy's sites (sites.go)
	SiteMode   string     // the log's site mode: off, optional or required
}

func (d *Dashboard) indexPage(ctx context.Context) (indexPage, error) {
	cp := d.cfg.Log.Checkpoint()
	p := indexPage{Page: d.page("Chain of custody"), HasPolicy: d.cfg.Policy != nil}
	var err error
	if p.Checkpoint, _, err = d.checkpointView(cp); err != nil {
		return p, err
	}
	p.Chart = d.chartView()
	start := uint64(0)
	if cp.Size > uint64(d.cfg.Recent) {
		start = cp.Size - uint64(d.cfg.Recent)
	}
	es, err := d.cfg.Log.Entries(ctx, start, cp.Size)
	if err != nil {
		return p, fmt.Errorf("dashboard: reading entries %d to %d: %w", start, cp.Size, err)
	}
	evs := make([]*record.Event, len(es))
	views := map[uint64]*eventView{}
	for i, e := range es {
		if record.KindOf(e.Data) == record.EntryAttestation {
			continue // shown through the events it covers
		}
		ev, err := record.DecodeEntry(e.Data)
		if err != nil {
			return p, fmt.Errorf("entry %d: %w", e.Index, err)
		}
		evs[i] = &ev
	}
	for i := len(es) - 1; i >= 0; i-- {
		if evs[i] != nil {
			p.Recent = append(p.Recent, d.eventView(es[i].Index, *evs[i]))
		}
	}
	for i := range p.Recent {
		views[p.Recent[i].Index] = &p.Recent[i]
	}
	markSignatures(views, es, evs, d.cfg.Log.Sites(), d.cfg.Log.Origin())
	p.Sites, p.SiteMode = sitesView(d.cfg.Policy, time.Now()), string(d.cfg.Log.SiteMode())
	if d.auditor != nil {
		p.Findings = d.auditor.view(cp.Size)
	}
	return p, nil
}

// link is one event of a sample's chain with its inclusion proof.
type link struct {
	eventView
	LeafHex   string
	ProofHex  []string
	ProofJoin string // the proof as space-separated hex, for the script
	Included  bool   // the proof leads to the checkpoint's root
	Problem   string // why it does not
	Findings  []audit.Finding
}

// samplePage is the sample lookup's data.
type samplePage struct {
	Page
	Sample     string
	Problem    string // a bad or unknown sample ID, said for people
	Checkpoint checkpointView
	Chain      []link
	AllOK      bool
	Truncated  bool
	Total      int    // events of the sample in the checkpoint
	More       string // with Truncated: the API page with the events after those shown
	HasPolicy  bool
	Findings   int
	Index      *indexView   // nil when the log keeps no sample index
	Journey    *journeyView // the chain drawn across data-centre lanes (journey.go)
}

func (d *Dashboard) samplePage(ctx context.Context, id string) (samplePage, int, error) {
	p := samplePage{Page: d.page("Sample " + id), Sample: id, HasPolicy: d.cfg.Policy != nil}
	cp := d.cfg.Log.Checkpoint()
	cpv, c, err := d.checkpointView(cp)
	if err != nil {
		return p, 0, err
	}
	p.Checkpoint = cpv
	if id == "" {
		p.Title = "Look up a sample"
		return p, 200, nil
	}
	if err := record.CheckSample(id); err != nil {
		p.Problem = "That is not a valid sample ID (" + err.Error() + ")."
		return p, 400, nil
	}
	idx, err := d.cfg.Log.SampleIndexes(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return p, 0, fmt.Errorf("dashboard: looking up sample %q: %w", id, err)
	}
	var known []uint64
	for _, i := range idx {
		if i < c.Size {
			known = append(known, i)
		}
	}
	p.Index = d.sampleIndexView(ctx, id, idx)
	if len(known) == 0 {
		p.Problem = fmt.Sprintf("No events of sample %q are in the log (tree size %s).", id, num(c.Size))
		return p, 404, nil
	}
	p.Total = len(known)
	if len(known) > MaxChain {
		known, p.Truncated = known[:MaxChain], true
		p.More = fmt.Sprintf("%s?after=%d&size=%d", httpapi.SamplePath(id), known[len(known)-1], c.Size)
	}
	var eng *audit.Engine
	if d.cfg.Policy != nil {
		// A sample's findings depend only on its own events (and the
		// policy), so an engine fed just this chain reports exactly what
		// the full audit reports for it.
		eng = audit.NewEngine(d.cfg.Policy)
	}
	p.AllOK = true
	for _, i := range known {
		es, err := d.cfg.Log.Entries(ctx, i, i+1)
		if err != nil {
			return p, 0, fmt.Errorf("dashboard: reading entry %d of sample %q: %w", i, id, err)
		} else if len(es) != 1 {
			return p, 0, fmt.Errorf("dashboard: entry %d of sample %q is not in the store", i, id)
		}
		ev, err := record.DecodeEntry(es[0].Data)
		if err != nil {
			return p, 0, fmt.Errorf("dashboard: entry %d: %w", i, err)
		}
		leaf := leafHash(es[0].Data)
		l := link{eventView: d.eventView(i, ev), LeafHex: hex.EncodeToString(leaf[:])}
		proof, err := d.cfg.Log.InclusionProof(ctx, i, c.Size)
		var hashes [][32]byte
		if err == nil {
			for _, h := range proof {
				if len(h) != 32 {
					err = fmt.Errorf("proof hash of %d bytes", len(h))
					break
				}
				hashes = append(hashes, [32]byte(h))
				l.ProofHex = append(l.ProofHex, hex.EncodeToString(h))
			}
		}
		if err == nil {
			err = verify.CheckInclusion(i, c.Size, leaf, hashes, c.Root)
		}
		if err != nil {
			l.Problem = err.Error()
			p.AllOK = false
		} else {
			l.Included = true
		}
		l.ProofJoin = strings.Join(l.ProofHex, " ")
		if eng != nil {
			eng.Skip(i)
			l.Findings = eng.Add(i, ev)
			p.Findings += len(l.Findings)
		}
		p.Chain = append(p.Chain, l)
	}
	p.Journey = newJourney(&p, d.cfg.Policy)
	return p, 200, nil
}
