package svgchart

import (
	"cmp"
	"html"
	"html/template"
	"slices"
	"strconv"
	"strings"

	"github.com/custodylog/custody/activity"
)

// Bounds of the flow diagram: whatever its input holds, Flows draws at most
// MaxRegions+1 region nodes, MaxNodes+1 nodes in each data-centre column,
// MaxEdges transfer edges and MaxEdges collection edges.
const (
	// DefaultMaxRegions is the most customer regions drawn one by one;
	// the others are drawn as one activity.OtherKey node.
	DefaultMaxRegions = 12
	// DefaultMaxNodes is the most data centres drawn one by one in each
	// of the two data-centre columns; the others are one activity.OtherKey node.
	DefaultMaxNodes = 40
	// DefaultMaxEdges is the most transfer edges (and, apart, the most
	// collection edges) drawn; the rest are summed in one edge between
	// activity.OtherKey nodes.
	DefaultMaxEdges = 200
)

// flowOther names the node (and the edge) that sums what is not drawn one
// by one: activity.OtherKey, which no region or location can be named.
const flowOther = activity.OtherKey

// FlowInput is what Flows draws.
type FlowInput struct {
	// Flows are the transfers per (region, from, to), as activity
	// returns them; each is an edge from its From node (second column) to
	// its To node (third column).
	Flows []activity.Flow
	// Collections are the collected events per (region, location): the
	// edges from a region node (first column) to the data centre where
	// its samples entered custody (second column).
	Collections []activity.Collection
	// Forbidden reports whether the routing policy does not allow
	// e.Region's samples at e.To; Flows calls it once per flow, and once
	// per collection with From "" and To the collection's location. Nil:
	// no policy, nothing is marked.
	Forbidden func(e activity.Edge) bool
	// Link is the address of the page of a flow's samples, "" for none;
	// only an edge drawn for exactly one flow is a link, and only an
	// address starting with "/", "?", "#", "http://" or "https://" is
	// used. Nil: no edge is a link.
	Link func(e activity.Edge) string
	// ID prefixes the ids of the diagram's title and description, so that
	// two diagrams can share a document: [a-z0-9-], 1 to 32 characters;
	// anything else (and "") is "flows".
	ID string
	// MaxRegions, MaxNodes and MaxEdges bound the diagram; 0 (or less)
	// is DefaultMaxRegions, DefaultMaxNodes, DefaultMaxEdges.
	MaxRegions, MaxNodes, MaxEdges int
}

// Flows draws in as a Sankey-style SVG diagram in three columns: customer
// regions, the data centres where their samples were collected or sent
// from, and the data centres they were transferred to. A chain A→B→C is
// drawn as the flows A→B and B→C (B is then in both data-centre columns).
//
// It guarantees:
//   - Edge widths are proportional to their counts, at least 2 px; a
//     node is as tall as the wider of its incoming and outgoing edges.
//   - The layout depends only on the input's contents (names sorted, ties
//     broken by name), so the same input gives the same bytes.
//   - The size is bounded (MaxRegions, MaxNodes, MaxEdges): the regions
//     and data centres with forbidden transfers first, then those with the
//     most events, are drawn one by one; the rest are summed in activity.OtherKey
//     nodes and edges, and a note in the diagram says how many. No event
//     is dropped: the edges drawn add up to the input's counts.
//   - Forbidden edges are drawn dashed and red and labelled "✕ forbidden",
//     so colour is never the only signal; their titles end in
//     ", forbidden".
//   - Each transfer edge drawn for one flow is an SVG link (keyboard
//     focusable) whose <title> reads "EU: de-fra-1 → ch-zrh-1, 12
//     transfers" (", forbidden" when it is), and carries data-region,
//     data-from, data-to, data-count and data-forbidden attributes.
//   - Every colour, stroke and font is a presentation attribute: the
//     diagram renders without any style sheet; classes (flows, node,
//     edge, transfer, collection, forbidden, label, note) are hooks only.
//   - Every name and address is escaped.
func Flows(in FlowInput) template.HTML {
	in.defaults()
	l := layoutFlows(in)
	var b strings.Builder
	l.write(&b, in)
	return template.HTML(b.String())
}

func (in *FlowInput) defaults() {
	if in.MaxRegions <= 0 {
		in.MaxRegions = DefaultMaxRegions
	}
	if in.MaxNodes <= 0 {
		in.MaxNodes = DefaultMaxNodes
	}
	if in.MaxEdges <= 0 {
		in.MaxEdges = DefaultMaxEdges
	}
	if !flowValidID(in.ID) {
		in.ID = "flows"
	}
}

func flowValidID(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Geometry, in SVG user units (px).
const (
	flMarginLeft  = 150.0 // region labels
	flMarginRight = 250.0 // destination labels
	flMarginTop   = 44.0  // column headings
	flNodeW       = 14.0
	flColGap      = 300.0
	flPlotH       = 440.0 // the tallest column, before minimum sizes
	flNodeGap     = 10.0
	flMinEdgeW    = 2.0
	flMinNodeH    = 6.0
	flLabelMinW   = 14.0 // an edge this wide carries its count as a label
	flLineH       = 18.0 // a line of the notes under the diagram
)

// The columns.
const (
	flColRegion = iota
	flColFrom
	flColTo
)

var flColX = [3]float64{flMarginLeft, flMarginLeft + flNodeW + flColGap, flMarginLeft + 2*(flNodeW+flColGap)}

var flColHeading = [3]string{"Customer region", "Collected at / sent from", "Transferred to"}

type flowNode struct {
	col       int
	name      string
	in, out   uint64  // events of the edges drawn into and out of it
	inW, outW float64 // their summed widths
	y, h      float64
	edgesIn   []*flowEdge
	edgesOut  []*flowEdge
}

type flowEdgeKind int

const (
	flowCollection flowEdgeKind = iota
	flowTransfer
)

type flowEdgeKey struct {
	kind             flowEdgeKind
	region, from, to string // from is "" for a collection
}

type flowEdge struct {
	key       flowEdgeKey
	events    uint64
	forbidden uint64 // events of it on forbidden flows
	flows     int    // flows (or collections) summed in it
	orig      activity.Edge
	href      string
	from, to  *flowNode
	w         float64
	y0, y1    float64 // centre of its band at each end
}

// flowBucket is one name's score when the nodes of a column are picked.
type flowBucket struct {
	name      string
	events    uint64
	forbidden bool
}

// flowLayout is the diagram as drawn.
type flowLayout struct {
	nodes      [3][]*flowNode
	edges      [2][]*flowEdge // by kind
	width      float64
	height     float64
	notes      []string
	transfers  uint64 // in the input
	collected  uint64
	nflows     int
	hasPolicy  bool
	folded     [3]int // names folded into activity.OtherKey per column
	foldedEdge [2]int // edges (after folding names) summed into the other edge, by kind
}

func layoutFlows(in FlowInput) *flowLayout {
	l := &flowLayout{hasPolicy: in.Forbidden != nil, nflows: len(in.Flows)}
	forbidden := func(e activity.Edge) bool { return in.Forbidden != nil && in.Forbidden(e) }

	// Score every name of every column, and remember which inputs are
	// forbidden (Forbidden is called once per input).
	score := [3]map[string]*flowBucket{{}, {}, {}}
	add := func(col int, name string, n uint64, bad bool) {
		s := score[col][name]
		if s == nil {
			s = &flowBucket{name: name}
			score[col][name] = s
		}
		s.events += n
		s.forbidden = s.forbidden || bad
	}
	collBad := make([]bool, len(in.Collections))
	for i, c := range in.Collections {
		collBad[i] = forbidden(activity.Edge{Region: c.Region, To: c.Location})
		add(flColRegion, c.Region, c.Events, collBad[i])
		add(flColFrom, c.Location, c.Events, collBad[i])
		l.collected += c.Events
	}
	flowBad := make([]bool, len(in.Flows))
	for i, flowF := range in.Flows {
		flowBad[i] = forbidden(flowF.Edge)
		add(flColRegion, flowF.Region, flowF.Events, flowBad[i])
		add(flColFrom, flowF.From, flowF.Events, flowBad[i])
		add(flColTo, flowF.To, flowF.Events, flowBad[i])
		l.transfers += flowF.Events
	}
	limit := [3]int{in.MaxRegions, in.MaxNodes, in.MaxNodes}
	var shown [3]map[string]bool
	for col := range score {
		shown[col], l.folded[col] = flowPick(score[col], limit[col])
	}
	name := func(col int, s string) string {
		if shown[col][s] {
			return s
		}
		return flowOther
	}

	// Edges between the nodes shown, summed when names were folded.
	merged := [2]map[flowEdgeKey]*flowEdge{{}, {}}
	put := func(k flowEdgeKey, orig activity.Edge, n uint64, bad bool) {
		e := merged[k.kind][k]
		if e == nil {
			e = &flowEdge{key: k, orig: orig}
			merged[k.kind][k] = e
		}
		e.events += n
		e.flows++
		if bad {
			e.forbidden += n
		}
	}
	for i, c := range in.Collections {
		k := flowEdgeKey{kind: flowCollection, region: name(flColRegion, c.Region), to: name(flColFrom, c.Location)}
		put(k, activity.Edge{Region: c.Region, To: c.Location}, c.Events, collBad[i])
	}
	for i, flowF := range in.Flows {
		k := flowEdgeKey{kind: flowTransfer, region: name(flColRegion, flowF.Region), from: name(flColFrom, flowF.From), to: name(flColTo, flowF.To)}
		put(k, flowF.Edge, flowF.Events, flowBad[i])
	}
	nodes := [3]map[string]*flowNode{{}, {}, {}}
	getNode := func(col int, s string) *flowNode {
		n := nodes[col][s]
		if n == nil {
			n = &flowNode{col: col, name: s}
			nodes[col][s] = n
		}
		return n
	}
	for kind := range merged {
		es := make([]*flowEdge, 0, len(merged[kind]))
		for _, e := range merged[kind] {
			es = append(es, e)
		}
		slices.SortFunc(es, flowRankEdges)
		if len(es) > in.MaxEdges {
			es, l.foldedEdge[kind] = flowFoldEdges(es, in.MaxEdges, flowEdgeKind(kind)), len(es)-(in.MaxEdges-1)
		}
		for _, e := range es {
			if e.flows == 1 && e.key.kind == flowTransfer && e.key.region == e.orig.Region && e.key.from == e.orig.From && e.key.to == e.orig.To && in.Link != nil {
				e.href = flowSafeLink(in.Link(e.orig))
			}
			if e.key.kind == flowCollection {
				e.from, e.to = getNode(flColRegion, e.key.region), getNode(flColFrom, e.key.to)
			} else {
				e.from, e.to = getNode(flColFrom, e.key.from), getNode(flColTo, e.key.to)
			}
			e.from.out += e.events
			e.to.in += e.events
			e.from.edgesOut = append(e.from.edgesOut, e)
			e.to.edgesIn = append(e.to.edgesIn, e)
		}
		l.edges[kind] = es
	}
	for col := range nodes {
		for _, n := range nodes[col] {
			l.nodes[col] = append(l.nodes[col], n)
		}
		slices.SortFunc(l.nodes[col], func(a, b *flowNode) int { return flowCompareNames(a.name, b.name) })
	}
	l.place()
	return l
}

// flowPick returns the names to draw one by one: all when they are at most
// limit (activity.OtherKey aside), else the limit names with forbidden events
// first, then the most events, then by name; and how many were left out.
func flowPick(score map[string]*flowBucket, limit int) (map[string]bool, int) {
	var cand []*flowBucket
	for _, s := range score {
		if s.name != flowOther {
			cand = append(cand, s)
		}
	}
	shown := make(map[string]bool, min(limit, len(cand)))
	if len(cand) > limit {
		slices.SortFunc(cand, func(a, b *flowBucket) int {
			if a.forbidden != b.forbidden {
				if a.forbidden {
					return -1
				}
				return 1
			}
			return cmp.Or(cmp.Compare(b.events, a.events), cmp.Compare(a.name, b.name))
		})
	}
	for _, s := range cand[:min(limit, len(cand))] {
		shown[s.name] = true
	}
	return shown, len(cand) - len(shown)
}

// flowRankEdges orders edges for the cut at MaxEdges: forbidden first, then the
// most events, then by key.
func flowRankEdges(a, b *flowEdge) int {
	if (a.forbidden > 0) != (b.forbidden > 0) {
		if a.forbidden > 0 {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(b.events, a.events), flowCompareKeys(a.key, b.key))
}

func flowCompareKeys(a, b flowEdgeKey) int {
	return cmp.Or(cmp.Compare(a.kind, b.kind), flowCompareNames(a.region, b.region), flowCompareNames(a.from, b.from), flowCompareNames(a.to, b.to))
}

// flowCompareNames sorts names, activity.OtherKey last.
func flowCompareNames(a, b string) int {
	if (a == flowOther) != (b == flowOther) {
		if a == flowOther {
			return 1
		}
		return -1
	}
	return cmp.Compare(a, b)
}

// flowFoldEdges keeps the first max-1 of the ranked edges and sums the rest into
// the edge between activity.OtherKey nodes (kept once, whether it was among the first
// or not).
func flowFoldEdges(es []*flowEdge, max int, kind flowEdgeKind) []*flowEdge {
	k := flowEdgeKey{kind: kind, region: flowOther, to: flowOther}
	if kind == flowTransfer {
		k.from = flowOther
	}
	other := &flowEdge{key: k}
	kept := make([]*flowEdge, 0, max)
	for i, e := range es {
		if e.key == k || i >= max-1 {
			other.events += e.events
			other.forbidden += e.forbidden
			other.flows += e.flows
			continue
		}
		kept = append(kept, e)
	}
	return append(kept, other)
}

// flowSafeLink is href if it is a relative or http(s) address, else "".
func flowSafeLink(href string) string {
	switch {
	case strings.HasPrefix(href, "//"):
		return ""
	case strings.HasPrefix(href, "/"), strings.HasPrefix(href, "?"), strings.HasPrefix(href, "#"),
		strings.HasPrefix(href, "https://"), strings.HasPrefix(href, "http://"):
		return href
	}
	return ""
}

// place sizes and positions the nodes and edges.
func (l *flowLayout) place() {
	// One scale for all: the fullest column fits plotH (gaps aside), but
	// never below a quarter of it for many nodes.
	scale := 0.0
	for _, ns := range l.nodes {
		var total uint64
		for _, n := range ns {
			total += max(n.in, n.out)
		}
		if total == 0 {
			continue
		}
		room := max(flPlotH-flNodeGap*float64(len(ns)-1), flPlotH/4)
		if s := room / float64(total); scale == 0 || s < scale {
			scale = s
		}
	}
	for _, es := range l.edges {
		for _, e := range es {
			e.w = max(flMinEdgeW, float64(e.events)*scale)
			e.from.outW += e.w
			e.to.inW += e.w
		}
	}
	colH := 0.0
	for _, ns := range l.nodes {
		y := flMarginTop
		for _, n := range ns {
			n.h = max(flMinNodeH, n.inW, n.outW)
			n.y = y
			y += n.h + flNodeGap
		}
		colH = max(colH, y-flMarginTop)
	}
	// Stack each node's edges in the order of the nodes at their other
	// end, so that bands cross as little as they can.
	for _, ns := range l.nodes {
		for _, n := range ns {
			slices.SortFunc(n.edgesOut, func(a, b *flowEdge) int {
				return cmp.Or(cmp.Compare(a.to.y, b.to.y), flowCompareKeys(a.key, b.key))
			})
			y := n.y + (n.h-n.outW)/2
			for _, e := range n.edgesOut {
				e.y0 = y + e.w/2
				y += e.w
			}
			slices.SortFunc(n.edgesIn, func(a, b *flowEdge) int {
				return cmp.Or(cmp.Compare(a.from.y, b.from.y), flowCompareKeys(a.key, b.key))
			})
			y = n.y + (n.h-n.inW)/2
			for _, e := range n.edgesIn {
				e.y1 = y + e.w/2
				y += e.w
			}
		}
	}
	// Notes under the diagram.
	if l.hasPolicy {
		l.notes = append(l.notes, "Dashed red edges marked ✕ are forbidden: the routing policy does not allow the region's samples at their destination.")
	}
	if l.folded != [3]int{} || l.foldedEdge != [2]int{} {
		var parts []string
		if n := l.folded[flColRegion]; n > 0 {
			parts = append(parts, flowPlural(n, "region", "regions"))
		}
		if n := l.folded[flColFrom]; n > 0 {
			parts = append(parts, flowPlural(n, "source data centre", "source data centres"))
		}
		if n := l.folded[flColTo]; n > 0 {
			parts = append(parts, flowPlural(n, "destination", "destinations"))
		}
		if n := l.foldedEdge[flowTransfer] + l.foldedEdge[flowCollection]; n > 0 {
			parts = append(parts, flowPlural(n, "edge", "edges"))
		}
		l.notes = append(l.notes, "“"+flowOther+"” sums what is not drawn one by one: "+strings.Join(parts, ", ")+". The table lists every flow.")
	}
	l.width = flColX[flColTo] + flNodeW + flMarginRight
	l.height = flMarginTop + max(colH, 40) + 24 + flLineH*float64(len(l.notes))
}

func flowPlural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return Num(uint64(n)) + " " + many
}

// Colours (WCAG AA on white for text).
const (
	flInk             = "#1b1f24"
	flMuted           = "#4a5563"
	flTransferColour  = "#5b7db1"
	flCollectColour   = "#8c959f"
	flForbiddenColour = "#b3261e"
	flForbiddenText   = "#7a1410"
)

func (l *flowLayout) write(b *strings.Builder, in FlowInput) {
	id := in.ID
	w := func(parts ...string) {
		for _, p := range parts {
			b.WriteString(p)
		}
	}
	w(`<svg xmlns="http://www.w3.org/2000/svg" class="flows" role="group" aria-labelledby="`, id, `-title `, id, `-desc" viewBox="0 0 `, flowF(l.width), " ", flowF(l.height),
		`" width="`, flowF(l.width), `" height="`, flowF(l.height), `" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="13" fill="`, flInk,
		`" data-transfers="`, flowU(l.transfers), `" data-collected="`, flowU(l.collected), `" data-flows="`, strconv.Itoa(l.nflows),
		`" data-edges="`, strconv.Itoa(len(l.edges[flowTransfer])), `">`, "\n")
	w(`<title id="`, id, `-title">Transfers of samples between data centres</title>`, "\n")
	desc := "Three columns: customer regions; the data centres where their samples were collected or sent from; the data centres they were transferred to. Edge widths are proportional to the number of events; each transfer edge links to the samples on it."
	if l.hasPolicy {
		desc += " Transfers the routing policy does not allow are drawn dashed and marked ✕ forbidden."
	}
	w(`<desc id="`, id, `-desc">`, flowEsc(desc), " The same numbers are in the table with the diagram.</desc>\n")
	for col, h := range flColHeading {
		anchor, x := "start", flColX[col]
		if col == flColRegion {
			anchor, x = "end", flColX[col]+flNodeW
		}
		w(`<text class="heading" x="`, flowF(x), `" y="20" text-anchor="`, anchor, `" font-weight="700">`, h, "</text>\n")
	}
	if len(l.edges[flowTransfer]) == 0 && len(l.edges[flowCollection]) == 0 {
		w(`<text class="note" x="`, flowF(flMarginLeft), `" y="`, flowF(flMarginTop+20), `" fill="`, flMuted, `">No collections or transfers counted yet.</text>`, "\n")
	}

	// Edges first, nodes and labels over them.
	for _, e := range l.edges[flowCollection] {
		l.writeEdge(b, e)
	}
	for _, e := range l.edges[flowTransfer] {
		l.writeEdge(b, e)
	}
	for col, ns := range l.nodes {
		for _, n := range ns {
			flowWriteNode(b, col, n)
		}
	}
	y := l.height - flLineH*float64(len(l.notes)) - 6
	for _, n := range l.notes {
		y += flLineH
		w(`<text class="note" x="8" y="`, flowF(y), `" fill="`, flMuted, `">`, flowEsc(n), "</text>\n")
	}
	b.WriteString("</svg>")
}

func (l *flowLayout) writeEdge(b *strings.Builder, e *flowEdge) {
	x0 := flColX[e.from.col] + flNodeW
	x1 := flColX[e.to.col]
	xm := (x0 + x1) / 2
	bad := e.forbidden > 0
	cls, stroke, opacity, dash := "edge collection", flCollectColour, "0.45", ""
	if e.key.kind == flowTransfer {
		cls, stroke, opacity = "edge transfer", flTransferColour, "0.5"
	}
	if bad {
		cls += " forbidden"
		stroke, opacity, dash = flForbiddenColour, "0.75", ` stroke-dasharray="8 4"`
	}
	open, shut := `<g`, `</g>`
	if e.href != "" {
		open, shut = `<a href="`+flowEsc(e.href)+`"`, `</a>`
	}
	b.WriteString(open)
	b.WriteString(` class="` + cls + `" data-region="` + flowEsc(e.key.region) + `" data-from="` + flowEsc(e.key.from) + `" data-to="` + flowEsc(e.key.to) +
		`" data-count="` + flowU(e.events) + `" data-forbidden="` + flowU(e.forbidden) + `">`)
	b.WriteString(`<title>` + flowEsc(flowEdgeTitle(e, l.hasPolicy)) + `</title>`)
	b.WriteString(`<path d="M` + flowF(x0) + " " + flowF(e.y0) + "C" + flowF(xm) + " " + flowF(e.y0) + " " + flowF(xm) + " " + flowF(e.y1) + " " + flowF(x1) + " " + flowF(e.y1) +
		`" fill="none" stroke="` + stroke + `" stroke-opacity="` + opacity + `" stroke-width="` + flowF(e.w) + `"` + dash + `/>`)
	label := ""
	switch {
	case bad:
		label = "✕ forbidden · " + Num(e.events)
	case e.w >= flLabelMinW && e.key.kind == flowTransfer:
		// (A collection's count is in its region's label.)
		label = Num(e.events)
	}
	if label != "" {
		fill := flInk
		if bad {
			fill = flForbiddenText
		}
		// With a white halo: a count on the middle of the curve; a
		// forbidden mark where the band reaches its destination (where
		// bands have drawn apart, and away from the counts).
		lx, ly, anchor := xm, (e.y0+e.y1)/2, "middle"
		if bad {
			lx, ly, anchor = x1-6, e.y1, "end"
		}
		b.WriteString(`<text class="label" x="` + flowF(lx) + `" y="` + flowF(ly+4) + `" text-anchor="` + anchor + `" fill="` + fill +
			`" font-weight="700" stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke">` + flowEsc(label) + `</text>`)
	}
	b.WriteString(shut + "\n")
}

func flowEdgeTitle(e *flowEdge, hasPolicy bool) string {
	var s string
	if e.key.kind == flowTransfer {
		s = e.key.region + ": " + e.key.from + " → " + e.key.to + ", " + flowCount(e.events, "transfer", "transfers")
	} else {
		s = e.key.region + ": " + Num(e.events) + " collected at " + e.key.to
	}
	if e.flows > 1 {
		what := "flows"
		if e.key.kind == flowCollection {
			what = "region and data centre pairs"
		}
		s += " (" + strconv.Itoa(e.flows) + " " + what + ")"
	}
	switch {
	case e.forbidden == 0:
	case e.forbidden == e.events:
		s += ", forbidden"
	default:
		s += ", " + Num(e.forbidden) + " of them forbidden"
	}
	return s
}

func flowWriteNode(b *strings.Builder, col int, n *flowNode) {
	fill := flInk
	if col == flColRegion {
		fill = flMuted
	}
	var label, title string
	switch col {
	case flColRegion:
		label = n.name + " (" + Num(n.out) + ")"
		title = "region " + n.name + ": " + Num(n.out) + " collected"
	case flColFrom:
		var parts []string
		if n.in > 0 {
			parts = append(parts, Num(n.in)+" collected")
		}
		if n.out > 0 {
			parts = append(parts, Num(n.out)+" sent")
		}
		label = n.name + " (" + strings.Join(parts, ", ") + ")"
		title = n.name + ": " + strings.Join(parts, ", ")
	default:
		label = n.name + " (" + Num(n.in) + ")"
		title = n.name + ": " + flowCount(n.in, "transfer", "transfers") + " received"
	}
	b.WriteString(`<g class="node" data-column="` + strconv.Itoa(col) + `" data-name="` + flowEsc(n.name) + `" data-in="` + flowU(n.in) + `" data-out="` + flowU(n.out) + `">`)
	b.WriteString(`<title>` + flowEsc(title) + `</title>`)
	b.WriteString(`<rect x="` + flowF(flColX[col]) + `" y="` + flowF(n.y) + `" width="` + flowF(flNodeW) + `" height="` + flowF(n.h) + `" fill="` + fill + `"/>`)
	x, anchor := flColX[col]-6, "end"
	if col == flColTo {
		x, anchor = flColX[col]+flNodeW+6, "start"
	}
	b.WriteString(`<text class="label" x="` + flowF(x) + `" y="` + flowF(n.y+n.h/2+4) + `" text-anchor="` + anchor +
		`" stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke">` + flowEsc(label) + `</text>`)
	b.WriteString("</g>\n")
}

func flowCount(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return Num(n) + " " + many
}

// flowF formats a coordinate with at most one decimal.
func flowF(x float64) string {
	s := strconv.FormatFloat(x, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}

func flowU(n uint64) string { return strconv.FormatUint(n, 10) }

func flowEsc(s string) string { return html.EscapeString(s) }
