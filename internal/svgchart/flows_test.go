package svgchart

import (
	"encoding/xml"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/internal/depstest"
)

var updateFlows = flag.Bool("update-flows", false, "rewrite the golden flow diagram testdata/flows.golden.svg")

// xnode is any SVG element, parsed with encoding/xml: the diagram must be
// well-formed XML (it is also served inside HTML).
type xnode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []xnode    `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (n xnode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n xnode) child(name string) *xnode {
	for i := range n.Children {
		if n.Children[i].XMLName.Local == name {
			return &n.Children[i]
		}
	}
	return nil
}

// walk calls fn on n and every element under it, in document order.
func (n xnode) walk(fn func(xnode)) {
	fn(n)
	for _, c := range n.Children {
		c.walk(fn)
	}
}

func parseSVG(t *testing.T, s string) xnode {
	t.Helper()
	var root xnode
	if err := xml.Unmarshal([]byte(s), &root); err != nil {
		t.Fatalf("the diagram is not well-formed XML: %v\n%s", err, s)
	}
	if root.XMLName.Local != "svg" {
		t.Fatalf("root element %q, want svg", root.XMLName.Local)
	}
	return root
}

// drawnEdge is one edge as drawn.
type drawnEdge struct {
	tag, class, region, from, to, title, href, dash, label string
	count, forbidden                                       uint64
	width                                                  float64
}

func edgesOf(t *testing.T, root xnode) []drawnEdge {
	t.Helper()
	var out []drawnEdge
	root.walk(func(n xnode) {
		if !strings.Contains(" "+n.attr("class")+" ", " edge ") {
			return
		}
		e := drawnEdge{tag: n.XMLName.Local, class: n.attr("class"), region: n.attr("data-region"), from: n.attr("data-from"),
			to: n.attr("data-to"), href: n.attr("href")}
		var err error
		if e.count, err = strconv.ParseUint(n.attr("data-count"), 10, 64); err != nil {
			t.Fatalf("edge %v: data-count: %v", n.Attrs, err)
		}
		if e.forbidden, err = strconv.ParseUint(n.attr("data-forbidden"), 10, 64); err != nil {
			t.Fatalf("edge %v: data-forbidden: %v", n.Attrs, err)
		}
		if c := n.child("title"); c != nil {
			e.title = c.Text
		}
		p := n.child("path")
		if p == nil {
			t.Fatalf("edge %v has no path", n.Attrs)
		}
		e.dash = p.attr("stroke-dasharray")
		if e.width, err = strconv.ParseFloat(p.attr("stroke-width"), 64); err != nil {
			t.Fatalf("edge %v: stroke-width: %v", n.Attrs, err)
		}
		if c := n.child("text"); c != nil {
			e.label = c.Text
		}
		out = append(out, e)
	})
	return out
}

func isTransfer(e drawnEdge) bool { return strings.Contains(e.class, "transfer") }

// sample is a small network: EU and US samples collected at their edges,
// sent to the lab, some EU samples on to a second lab (a chain
// de-fra-1 → ch-zrh-1 → us-ash-1), which the policy forbids for EU.
func sample() FlowInput {
	return FlowInput{
		Collections: []activity.Collection{
			{Region: "EU", Location: "de-fra-1", Events: 40},
			{Region: "US", Location: "us-ash-1", Events: 20},
		},
		Flows: []activity.Flow{
			{Edge: activity.Edge{Region: "EU", From: "ch-zrh-1", To: "us-ash-1"}, Events: 3},
			{Edge: activity.Edge{Region: "EU", From: "de-fra-1", To: "ch-zrh-1"}, Events: 40},
			{Edge: activity.Edge{Region: "US", From: "us-ash-1", To: "ch-zrh-1"}, Events: 20},
		},
		Forbidden: func(e activity.Edge) bool { return e.Region == "EU" && e.To == "us-ash-1" },
		Link: func(e activity.Edge) string {
			return "/flows?region=" + e.Region + "&from=" + e.From + "&to=" + e.To
		},
	}
}

func TestFlowsEdges(t *testing.T) {
	in := sample()
	root := parseSVG(t, string(Flows(in)))
	edges := edgesOf(t, root)
	byKey := map[string]drawnEdge{}
	for _, e := range edges {
		byKey[e.region+" "+e.from+" "+e.to] = e
	}
	tests := []struct {
		key, title, href string
		count            uint64
		forbidden        bool
	}{
		{"EU de-fra-1 ch-zrh-1", "EU: de-fra-1 → ch-zrh-1, 40 transfers", "/flows?region=EU&from=de-fra-1&to=ch-zrh-1", 40, false},
		{"EU ch-zrh-1 us-ash-1", "EU: ch-zrh-1 → us-ash-1, 3 transfers, forbidden", "/flows?region=EU&from=ch-zrh-1&to=us-ash-1", 3, true},
		{"US us-ash-1 ch-zrh-1", "US: us-ash-1 → ch-zrh-1, 20 transfers", "/flows?region=US&from=us-ash-1&to=ch-zrh-1", 20, false},
		{"EU  de-fra-1", "EU: 40 collected at de-fra-1", "", 40, false},
		{"US  us-ash-1", "US: 20 collected at us-ash-1", "", 20, false},
	}
	if len(edges) != len(tests) {
		t.Fatalf("%d edges drawn, want %d: %+v", len(edges), len(tests), edges)
	}
	for _, tt := range tests {
		e, ok := byKey[tt.key]
		if !ok {
			t.Errorf("no edge %q", tt.key)
			continue
		}
		if e.title != tt.title || e.href != tt.href || e.count != tt.count {
			t.Errorf("edge %q: title %q, href %q, count %d; want %q, %q, %d", tt.key, e.title, e.href, e.count, tt.title, tt.href, tt.count)
		}
		// A transfer edge is a link (keyboard-focusable); a collection is not.
		if wantTag := map[bool]string{true: "a", false: "g"}[tt.href != ""]; e.tag != wantTag {
			t.Errorf("edge %q is a <%s>, want <%s>", tt.key, e.tag, wantTag)
		}
		// Forbidden: class, dashed stroke and a text marker, not colour alone.
		isBad := strings.Contains(" "+e.class+" ", " forbidden ")
		if isBad != tt.forbidden || (e.dash != "") != tt.forbidden || strings.Contains(e.label, "✕ forbidden") != tt.forbidden {
			t.Errorf("edge %q: class %q, dash %q, label %q; forbidden should be %v", tt.key, e.class, e.dash, e.label, tt.forbidden)
		}
		if tt.forbidden && e.forbidden != e.count {
			t.Errorf("edge %q: data-forbidden %d, want %d", tt.key, e.forbidden, e.count)
		}
	}
	// Widths are proportional to counts (above the minimum).
	a, b := byKey["EU de-fra-1 ch-zrh-1"], byKey["US us-ash-1 ch-zrh-1"]
	if r := a.width / b.width; r < 1.95 || r > 2.05 {
		t.Errorf("widths %.1f and %.1f for 40 and 20 transfers: ratio %.2f, want 2", a.width, b.width, r)
	}
	if w := byKey["EU ch-zrh-1 us-ash-1"].width; w < flMinEdgeW {
		t.Errorf("the 3-transfer edge is %.1f wide, under the minimum %.1f", w, flMinEdgeW)
	}
	// The chain's middle data centre is in both data-centre columns.
	var cols []string
	root.walk(func(n xnode) {
		if n.attr("class") == "node" && n.attr("data-name") == "ch-zrh-1" {
			cols = append(cols, n.attr("data-column")+":"+n.attr("data-in")+"/"+n.attr("data-out"))
		}
	})
	if !slices.Equal(cols, []string{"1:0/3", "2:60/0"}) {
		t.Errorf("ch-zrh-1 nodes (column:in/out) %q, want [1:0/3 2:60/0]", cols)
	}
	if got := root.attr("data-transfers"); got != "63" {
		t.Errorf("data-transfers %q, want 63", got)
	}
	// A policy note explains the style in words.
	if s := string(Flows(in)); !strings.Contains(s, "Dashed red edges marked ✕ are forbidden") {
		t.Error("no note explaining the forbidden style")
	}
}

// TestFlowsRendersWithoutCSS checks every edge and node carries its own
// presentation attributes (the report has no style sheet).
func TestFlowsRendersWithoutCSS(t *testing.T) {
	root := parseSVG(t, string(Flows(sample())))
	if root.attr("font-family") == "" || root.attr("font-size") == "" {
		t.Error("the svg has no font presentation attributes")
	}
	root.walk(func(n xnode) {
		switch n.XMLName.Local {
		case "path":
			for _, a := range []string{"stroke", "stroke-width", "fill", "stroke-opacity"} {
				if n.attr(a) == "" {
					t.Errorf("path %v has no %s", n.Attrs, a)
				}
			}
		case "rect":
			if n.attr("fill") == "" {
				t.Errorf("rect %v has no fill", n.Attrs)
			}
		}
		if n.attr("style") != "" {
			t.Errorf("element %s has a style attribute (the CSP forbids inline styles)", n.XMLName.Local)
		}
	})
}

func TestFlowsNoPolicy(t *testing.T) {
	in := sample()
	in.Forbidden, in.Link = nil, nil
	s := string(Flows(in))
	root := parseSVG(t, s)
	for _, e := range edgesOf(t, root) {
		if strings.Contains(e.class, "forbidden") || e.dash != "" || e.tag != "g" || e.href != "" {
			t.Errorf("without a policy and links: edge %+v", e)
		}
	}
	if strings.Contains(s, "✕") || strings.Contains(s, " forbidden") {
		t.Error("without a policy the diagram marks something forbidden")
	}
}

func TestFlowsEmpty(t *testing.T) {
	s := string(Flows(FlowInput{}))
	root := parseSVG(t, s)
	if n := len(edgesOf(t, root)); n != 0 {
		t.Errorf("%d edges for no input", n)
	}
	if !strings.Contains(s, "No collections or transfers counted yet.") {
		t.Error("the empty diagram does not say it is empty")
	}
}

func TestFlowsEscapes(t *testing.T) {
	tests := []struct{ link, want string }{
		{"javascript:alert(1)", ""},
		{"//evil.example/x", ""},
		{"data:text/html,x", ""},
		{`/flows?a="b"&c=<d>`, `/flows?a="b"&c=<d>`}, // escaped in the markup, read back by the parser
		{"https://log.example/flows", "https://log.example/flows"},
	}
	for _, tt := range tests {
		in := FlowInput{
			Flows: []activity.Flow{{Edge: activity.Edge{Region: "EU", From: "de-fra-1", To: activity.OtherKey}, Events: 2}},
			Link:  func(activity.Edge) string { return tt.link },
			ID:    `x" onload="alert(1)`,
		}
		s := string(Flows(in))
		root := parseSVG(t, s)
		es := edgesOf(t, root)
		if len(es) != 1 || es[0].href != tt.want {
			t.Errorf("link %q: edges %+v, want href %q", tt.link, es, tt.want)
		}
		if strings.Contains(s, "onload") || !strings.Contains(s, `aria-labelledby="flows-title flows-desc"`) {
			t.Errorf("a bad ID was used: %s", s[:200])
		}
		if len(es) == 1 && es[0].title != "EU: de-fra-1 → (other), 2 transfers" {
			t.Errorf("title %q", es[0].title)
		}
	}
}

// manyFlows is a network of n regions and m data centres with every
// transfer between them (n·m·(m−1) flows), counts varying.
func manyFlows(n, m int, seed uint64) FlowInput {
	r := rand.New(rand.NewPCG(seed, 1))
	var in FlowInput
	for i := 0; i < n; i++ {
		region := regionName(i)
		for a := 0; a < m; a++ {
			in.Collections = append(in.Collections, activity.Collection{Region: region, Location: dcName(a), Events: 1 + r.Uint64N(1000)})
			for b := 0; b < m; b++ {
				if a != b {
					in.Flows = append(in.Flows, activity.Flow{Edge: activity.Edge{Region: region, From: dcName(a), To: dcName(b)}, Events: 1 + r.Uint64N(1000)})
				}
			}
		}
	}
	return in
}

func regionName(i int) string { return string(rune('A'+i/26)) + string(rune('A'+i%26)) }
func dcName(i int) string     { return fmt.Sprintf("dc-%03d", i) }

func TestFlowsBounded(t *testing.T) {
	in := manyFlows(20, 60, 1) // 70,800 flows, 1,200 collections
	// One rare forbidden flow between small data centres: it is drawn
	// one by one all the same.
	bad := activity.Edge{Region: "AA", From: "dc-058", To: "dc-059"}
	for i := range in.Flows {
		if in.Flows[i].Edge == bad {
			in.Flows[i].Events = 1
		}
	}
	in.Forbidden = func(e activity.Edge) bool { return e == bad }
	in.Link = func(e activity.Edge) string { return "/f?" + e.Region + e.From + e.To }
	s := string(Flows(in))
	root := parseSVG(t, s)
	var total, collected uint64
	for _, f := range in.Flows {
		total += f.Events
	}
	for _, c := range in.Collections {
		collected += c.Events
	}
	var drawnT, drawnC uint64
	var nT, nC int
	foundBad := false
	for _, e := range edgesOf(t, root) {
		if isTransfer(e) {
			drawnT += e.count
			nT++
		} else {
			drawnC += e.count
			nC++
		}
		if e.region == bad.Region && e.from == bad.From && e.to == bad.To {
			foundBad = e.forbidden == 1 && e.href != "" && strings.HasSuffix(e.title, ", forbidden")
		}
	}
	if drawnT != total || drawnC != collected {
		t.Errorf("edges drawn sum to %d transfers and %d collections, want %d and %d", drawnT, drawnC, total, collected)
	}
	if nT > DefaultMaxEdges || nC > DefaultMaxEdges {
		t.Errorf("%d transfer and %d collection edges drawn, more than %d", nT, nC, DefaultMaxEdges)
	}
	cols := map[string]int{}
	root.walk(func(n xnode) {
		if n.attr("class") == "node" {
			cols[n.attr("data-column")]++
		}
	})
	if cols["0"] > DefaultMaxRegions+1 || cols["1"] > DefaultMaxNodes+1 || cols["2"] > DefaultMaxNodes+1 {
		t.Errorf("nodes per column %v, over the bounds", cols)
	}
	if !foundBad {
		t.Error("the forbidden flow is not drawn one by one as a forbidden link")
	}
	if !strings.Contains(s, "sums what is not drawn one by one") {
		t.Error("no note on what (other) sums")
	}
	if len(s) > 400_000 {
		t.Errorf("the diagram is %d bytes", len(s))
	}
}

// TestFlowsDeterministic: the same flows in any order give the same bytes.
func TestFlowsDeterministic(t *testing.T) {
	in := manyFlows(8, 15, 2)
	want := Flows(in)
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3; i++ {
		r.Shuffle(len(in.Flows), func(a, b int) { in.Flows[a], in.Flows[b] = in.Flows[b], in.Flows[a] })
		r.Shuffle(len(in.Collections), func(a, b int) { in.Collections[a], in.Collections[b] = in.Collections[b], in.Collections[a] })
		if got := Flows(in); got != want {
			t.Fatal("shuffled input gives a different diagram")
		}
	}
}

// TestFlowsGolden compares the sample's diagram with
// testdata/flows.golden.svg (go test -run FlowsGolden -update-flows rewrites it).
func TestFlowsGolden(t *testing.T) {
	got := string(Flows(sample())) + "\n"
	path := filepath.Join("testdata", "flows.golden.svg")
	if *updateFlows {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/svgchart -run FlowsGolden -update-flows)", err)
	}
	if got != string(want) {
		t.Errorf("the diagram differs from %s (go test -run FlowsGolden -update-flows, then look at the diff):\n%s", path, got)
	}
}

// BenchmarkFlows draws 6 regions × 20 data centres with every transfer
// between them (2,280 flows).
func BenchmarkFlows(b *testing.B) {
	in := manyFlows(6, 20, 5)
	in.Forbidden = func(e activity.Edge) bool { return e.To == "dc-007" }
	in.Link = func(e activity.Edge) string { return "/flows?region=" + e.Region }
	var n int
	for b.Loop() {
		n = len(Flows(in))
	}
	b.ReportMetric(float64(n), "bytes")
}

// TestFlowsDependencies enforces that the flow diagram, which the dashboard
// and the regulator's report both draw, depends on no server package: only
// the standard library and activity (with what activity depends on).
func TestFlowsDependencies(t *testing.T) {
	depstest.Check(t, "svgchart", []string{
		"github.com/custodylog/custody/internal/svgchart",
		"github.com/custodylog/custody/activity",
		"github.com/custodylog/custody/record",
		"github.com/custodylog/custody/internal/tiles",
		"github.com/custodylog/custody/internal/bindec",
		"github.com/transparency-dev/merkle",
	}, []string{"database/sql", "net/http", "os/exec"})
}
