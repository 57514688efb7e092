package dashboard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/internal/svgchart"
	"github.com/custodylog/custody/record"
)

// Bounds of the flows pages.
const (
	// FlowSamplesPerPage is how many transfers one page of a flow's
	// samples lists (and so the most entries it reads).
	FlowSamplesPerPage = 50
	// MaxCollectionRows is the most (region, data centre) rows the
	// collections table lists one by one; the rest are summed in one
	// OtherLabel row. An activity.Aggregate keeps no more than that
	// (activity.MaxCollections, activity.MaxOther), nor more flows than
	// activity.MaxEdges + activity.MaxOther + 1: the tables list them all.
	MaxCollectionRows = activity.MaxCollections + activity.MaxOther + 1
)

// serveFlows serves /flows: the flow diagram and its table, or, with
// region, from and to (and page), the samples on one flow.
func (d *Dashboard) serveFlows(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("region") || q.Has("from") || q.Has("to") || q.Has("page") {
		d.render(w, r, "flowsamples.html", func(ctx context.Context) (any, int, error) {
			return d.flowSamplesPage(ctx, q)
		})
		return
	}
	d.render(w, r, "flows.html", func(ctx context.Context) (any, int, error) {
		return d.flowsPage(), http.StatusOK, nil
	})
}

// flowRow is one flow of the table. (Its fields are not embedded: the
// template reads promoted fields by a slow reflective search, which made
// a table of 2,000 flows take 100 ms.)
type flowRow struct {
	Region, From, To string
	Events           uint64
	Count            string // Events, formatted
	Policy           string // "allowed", "forbidden", "unknown" (an OtherLabel bucket) or "" (no policy)
	Link             string // its samples page
}

// collectionRow is one (region, data centre) of the collections table.
type collectionRow struct {
	Region, Location string
	Events           uint64
	Count            string // Events, formatted
	Policy           string // as flowRow.Policy
}

// flowsPage is the data of /flows.
type flowsPage struct {
	Page
	HasActivity bool
	HasPolicy   bool
	Diagram     template.HTML
	Flows       []flowRow
	Collections []collectionRow
	// Transfers is the sum of the flows (which activity keeps equal to
	// its count of transferred events); Collected the sum of the
	// collections.
	Transfers, Collected uint64
	// ForbiddenTransfers are the transfers on the ForbiddenFlows.
	ForbiddenTransfers uint64
	ForbiddenFlows     int
	// OtherCollections is how many (region, data centre) pairs the
	// collections table sums in its OtherLabel row (MaxCollectionRows).
	OtherCollections int
	// Counted and Size: the counts cover Counted of the tree's Size
	// entries (they lag the tree at start-up).
	Counted, Size uint64
	// Bounds says how much the diagram draws one by one.
	Bounds string
	// FlowRows and CollectionRows are the tables' bodies (flowRowsHTML).
	FlowRows, CollectionRows template.HTML
}

func (d *Dashboard) flowsPage() flowsPage {
	p := flowsPage{Page: d.page("Transfers between data centres"), HasPolicy: d.cfg.Policy != nil,
		Bounds: fmt.Sprintf("%d regions, %d data centres per column and %d transfer edges", svgchart.DefaultMaxRegions, svgchart.DefaultMaxNodes, svgchart.DefaultMaxEdges)}
	a := d.cfg.Activity
	if a == nil {
		return p
	}
	p.HasActivity = true
	p.Size, p.Counted = d.cfg.Log.Checkpoint().Size, d.cfg.Stats.Counted()
	flows, colls := a.Flows(), a.Collections()
	p.Flows = make([]flowRow, len(flows))
	for i, f := range flows {
		p.Flows[i] = flowRow{Region: f.Region, From: f.From, To: f.To, Events: f.Events, Count: num(f.Events),
			Policy: d.policyAt(f.Region, f.To), Link: flowLink(f.Edge, 0)}
		p.Transfers += f.Events
		if p.Flows[i].Policy == "forbidden" {
			p.ForbiddenTransfers += f.Events
			p.ForbiddenFlows++
		}
	}
	var other activity.Collection
	for i, c := range colls {
		p.Collected += c.Events
		if i >= MaxCollectionRows-1 && len(colls) > MaxCollectionRows {
			other.Events += c.Events
			p.OtherCollections++
			continue
		}
		p.Collections = append(p.Collections, collectionRow{Region: c.Region, Location: c.Location, Events: c.Events,
			Count: num(c.Events), Policy: d.policyAt(c.Region, c.Location)})
	}
	if p.OtherCollections > 0 {
		p.Collections = append(p.Collections, collectionRow{Region: OtherLabel, Location: OtherLabel, Events: other.Events,
			Count: num(other.Events), Policy: d.policyAt(OtherLabel, OtherLabel)})
	}
	p.FlowRows, p.CollectionRows = flowRowsHTML(p.Flows, p.HasPolicy), collectionRowsHTML(p.Collections, p.HasPolicy)
	in := svgchart.FlowInput{Flows: flows, Collections: colls, ID: "flow-diagram",
		Link: func(e activity.Edge) string { return flowLink(e, 0) }}
	if d.cfg.Policy != nil {
		in.Forbidden = func(e activity.Edge) bool { return d.policyAt(e.Region, e.To) == "forbidden" }
	}
	p.Diagram = svgchart.Flows(in)
	return p
}

// flowRowsHTML is the flows table's body. It is written here rather than
// by the template, whose per-value escaping took 60 ms for the 2,000 and
// more rows of a busy log; every value is escaped all the same.
func flowRowsHTML(rows []flowRow, hasPolicy bool) template.HTML {
	var b strings.Builder
	b.Grow(len(rows) * 400)
	for _, r := range rows {
		region, from, to := html.EscapeString(r.Region), html.EscapeString(r.From), html.EscapeString(r.To)
		b.WriteString(`<tr class="` + r.Policy + `" data-region="` + region + `" data-from="` + from + `" data-to="` + to +
			`" data-count="` + strconv.FormatUint(r.Events, 10) + `" data-policy="` + r.Policy + `">`)
		b.WriteString(`<th scope="row">` + region + `</th><td>` + from + `</td><td>` + to + `</td><td class="n">` + r.Count + `</td>`)
		if hasPolicy {
			b.WriteString(`<td>` + policyText(r.Policy, true) + `</td>`)
		}
		b.WriteString(`<td><a href="` + html.EscapeString(r.Link) + `">list<span class="sr"> the samples on ` + region + `: ` + from + ` → ` + to + "</span></a></td></tr>\n")
	}
	return template.HTML(b.String())
}

// collectionRowsHTML is the collections table's body (as flowRowsHTML).
func collectionRowsHTML(rows []collectionRow, hasPolicy bool) template.HTML {
	var b strings.Builder
	b.Grow(len(rows) * 250)
	for _, r := range rows {
		region, loc := html.EscapeString(r.Region), html.EscapeString(r.Location)
		b.WriteString(`<tr class="` + r.Policy + `" data-region="` + region + `" data-location="` + loc +
			`" data-count="` + strconv.FormatUint(r.Events, 10) + `" data-policy="` + r.Policy + `">`)
		b.WriteString(`<th scope="row">` + region + `</th><td>` + loc + `</td><td class="n">` + r.Count + `</td>`)
		if hasPolicy {
			b.WriteString(`<td>` + policyText(r.Policy, false) + `</td>`)
		}
		b.WriteString("</tr>\n")
	}
	return template.HTML(b.String())
}

// policyText is a verdict of policyAt as shown in the tables.
func policyText(policy string, flow bool) string {
	switch policy {
	case "forbidden":
		return `<strong class="bad">✕ forbidden</strong>`
	case "allowed":
		return "allowed"
	case "unknown":
		if flow {
			return "unknown (names past the server&#39;s limits)"
		}
		return "unknown"
	}
	return ""
}

// policyAt says whether the policy allows region's samples at location:
// "allowed", "forbidden", "unknown" for an OtherLabel bucket (names past
// the counts' bounds, which may be either), "" without a policy.
func (d *Dashboard) policyAt(region, location string) string {
	p := d.cfg.Policy
	switch {
	case p == nil:
		return ""
	case region == OtherLabel || location == OtherLabel:
		return "unknown"
	case slices.Contains(p.Regions[region].Allowed, location):
		return "allowed"
	}
	return "forbidden"
}

// flowLink is the address of a flow's samples page (page 0: the first).
func flowLink(e activity.Edge, page int) string {
	s := "/flows?region=" + url.QueryEscape(e.Region) + "&from=" + url.QueryEscape(e.From) + "&to=" + url.QueryEscape(e.To)
	if page > 1 {
		s += "&page=" + strconv.Itoa(page)
	}
	return s
}

// flowSample is one transfer on a flow, as listed.
type flowSample struct {
	Index    uint64
	Sample   string
	Time     time.Time
	From, To string
	Problem  string // the entry is not this flow's transfer (or is unreadable)
}

// flowSamplesPage is the data of /flows?region=R&from=A&to=B&page=N.
type flowSamplesPage struct {
	Page
	Problem     string // a bad request or an unknown flow, said for people
	HasActivity bool
	HasPolicy   bool
	Edge        activity.Edge
	Policy      string   // as flowRow.Policy
	Allowed     []string // the policy's locations for Edge.Region
	// Total is the flow's transfers; Kept how many of the newest the
	// server keeps the entries of (at most activity.MaxRecent).
	Total uint64
	Kept  int
	// PageNo of Pages; First and Last are the 1-based positions listed.
	PageNo, Pages, First, Last int
	Samples                    []flowSample
	Newer, Older               string // links to the neighbouring pages
	Size                       uint64 // the tree size the entries were read at
}

// parseFlowQuery reads the parameters of a flow's samples page: region,
// from and to, each a name an event can have or OtherLabel, and page, a
// whole number from 1 (1 when absent). Its errors say, for people, what is
// wrong and quote at most 40 bytes of the input.
func parseFlowQuery(q url.Values) (activity.Edge, int, error) {
	e := activity.Edge{Region: q.Get("region"), From: q.Get("from"), To: q.Get("to")}
	if !q.Has("region") || !q.Has("from") || !q.Has("to") {
		return e, 0, errors.New("A flow is named by three parameters, region, from and to (for example /flows?region=EU&from=de-fra-1&to=ch-zrh-1); this address lacks some. The flows page links to every flow.")
	}
	if err := checkFlowName("region", e.Region, isRegion); err != nil {
		return e, 0, err
	}
	if err := checkFlowName("from", e.From, isLocation); err != nil {
		return e, 0, err
	}
	if err := checkFlowName("to", e.To, isLocation); err != nil {
		return e, 0, err
	}
	page := 1
	if s := q.Get("page"); q.Has("page") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return e, 0, fmt.Errorf("The page number %q is not a whole number of 1 or more.", clip(s))
		}
		page = n
	}
	return e, page, nil
}

// clip is s cut to 40 bytes, for quoting input in a message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func (d *Dashboard) flowSamplesPage(ctx context.Context, q url.Values) (flowSamplesPage, int, error) {
	e := activity.Edge{Region: q.Get("region"), From: q.Get("from"), To: q.Get("to")}
	p := flowSamplesPage{Page: d.page("Transfers " + e.Region + ": " + e.From + " → " + e.To), Edge: e, HasPolicy: d.cfg.Policy != nil}
	e, pageNo, err := parseFlowQuery(q)
	if err != nil {
		p.Title, p.Problem = "Bad request", err.Error()
		return p, http.StatusBadRequest, nil
	}
	bad := func(msg string) (flowSamplesPage, int, error) {
		p.Title, p.Problem = "Bad request", msg
		return p, http.StatusBadRequest, nil
	}
	a := d.cfg.Activity
	if a == nil {
		p.Title = "No flows kept"
		return p, http.StatusOK, nil
	}
	p.HasActivity = true
	flows := a.Flows()
	i, found := slices.BinarySearchFunc(flows, e, func(f activity.Flow, e activity.Edge) int {
		return cmp.Or(cmp.Compare(f.Region, e.Region), cmp.Compare(f.From, e.From), cmp.Compare(f.To, e.To))
	})
	if !found {
		p.Title = "No such flow"
		p.Problem = fmt.Sprintf("No transfers of %s samples from %s to %s have been counted.", e.Region, e.From, e.To)
		return p, http.StatusNotFound, nil
	}
	p.Total = flows[i].Events
	p.Policy = d.policyAt(e.Region, e.To)
	if d.cfg.Policy != nil {
		p.Allowed = d.cfg.Policy.Regions[e.Region].Allowed
	}
	recent := a.Recent(e)
	p.Kept = len(recent)
	p.Pages = max(1, (len(recent)+FlowSamplesPerPage-1)/FlowSamplesPerPage)
	if pageNo > p.Pages {
		return bad(fmt.Sprintf("There is no page %d: this flow's samples fill %d page%s.", pageNo, p.Pages, map[bool]string{true: "", false: "s"}[p.Pages == 1]))
	}
	p.PageNo = pageNo
	if pageNo > 1 {
		p.Newer = flowLink(e, pageNo-1)
	}
	if pageNo < p.Pages {
		p.Older = flowLink(e, pageNo+1)
	}
	lo := (pageNo - 1) * FlowSamplesPerPage
	hi := min(lo+FlowSamplesPerPage, len(recent))
	p.First, p.Last = lo+1, hi
	p.Size = d.cfg.Log.Checkpoint().Size
	// Read only the entries listed, one by one (they are seldom adjacent).
	for _, idx := range recent[lo:hi] {
		s := flowSample{Index: idx, From: e.From, To: e.To}
		es, err := d.cfg.Log.Entries(ctx, idx, idx+1)
		if err != nil {
			return p, 0, fmt.Errorf("dashboard: reading entry %d of flow %s %s→%s: %w", idx, e.Region, e.From, e.To, err)
		}
		switch {
		case len(es) != 1:
			s.Problem = fmt.Sprintf("not in the published tree of size %s yet", num(p.Size))
		default:
			ev, err := record.DecodeEntry(es[0].Data)
			switch {
			case err != nil:
				s.Problem = "not an event: " + err.Error()
			case ev.Action != record.Transferred || ev.Region != e.Region && e.Region != OtherLabel ||
				ev.Location != e.From && e.From != OtherLabel || ev.To != e.To && e.To != OtherLabel:
				s.Sample = ev.Sample
				s.Problem = fmt.Sprintf("this entry is not a transfer on this flow (it is %s %s at %s%s): the server's counts disagree with its log", ev.Region, ev.Action, ev.Location, arrowTo(ev.To))
				d.logger.Error("dashboard: flow entry mismatch", "index", idx, "region", e.Region, "from", e.From, "to", e.To)
			default:
				s.Sample, s.Time, s.From, s.To = ev.Sample, ev.Time, ev.Location, ev.To
			}
		}
		p.Samples = append(p.Samples, s)
	}
	return p, http.StatusOK, nil
}

func arrowTo(to string) string {
	if to == "" {
		return ""
	}
	return " → " + to
}

// checkFlowName checks a region or location parameter: a name valid for
// events (ok) or OtherLabel.
func checkFlowName(param, s string, ok func(string) bool) error {
	if s == OtherLabel || ok(s) {
		return nil
	}
	what := "a data centre name: 2 to 32 characters a-z, 0-9 and -"
	if param == "region" {
		what = "a region name: 2 to 8 letters A-Z"
	}
	return fmt.Errorf("The %s parameter %q is not %s (or %q).", param, clip(s), what, OtherLabel)
}

func isRegion(s string) bool {
	if len(s) < 2 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func isLocation(s string) bool {
	if len(s) < 2 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
