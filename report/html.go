package report

import (
	"html/template"
	"strconv"
)

// The data elements (docs/report.md), written exactly as Parse reads them.

func dataSpan(name, value string) template.HTML {
	return template.HTML(`<span data-custody="` + name + `">` + escape(value) + `</span>`)
}

func dataPre(name, value string) template.HTML {
	return template.HTML(`<pre data-custody="` + name + `">` + escape(value) + `</pre>`)
}

func proofPre(p proofView) template.HTML {
	return template.HTML(`<pre data-custody="proof" id="entry-` + strconv.FormatUint(p.Index, 10) + `">` + escape(p.Text) + `</pre>`)
}

func findingRow(r rowView) template.HTML {
	i := strconv.FormatUint(r.Index, 10)
	return template.HTML(`<tr data-custody="finding"><td>` + i + `</td><td>` + escape(r.Kind) + `</td><td>` + escape(r.Sample) +
		`</td><td>` + escape(r.Detail) + `</td><td><a href="#entry-` + i + `">entry ` + i + `</a></td></tr>`)
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"data": dataSpan, "dataPre": dataPre, "proofPre": proofPre, "findingRow": findingRow,
	"u":   func(n uint64) string { return strconv.FormatUint(n, 10) },
	"sub": func(a, b uint64) uint64 { return a - b },
}).Parse(pageHTML))

// style is the report's only style sheet: readable on screen, and printed
// on A4 or Letter with tables that break between rows, long hashes that
// wrap, and nothing wider than the page.
const style = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111; background: #fff; margin: 2rem auto; max-width: 62rem; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #888; margin: 2rem 0 .6rem; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
p { margin: .4rem 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
th, td { border: 1px solid #aaa; padding: .25rem .45rem; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: #eee; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85em; }
.mono { overflow-wrap: anywhere; word-break: break-all; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-all; background: #f6f6f6; border: 1px solid #ccc; padding: .5rem .6rem; margin: .3rem 0 .8rem; max-width: 100%; }
.status { border: 3px solid; padding: .6rem .8rem; margin: 1rem 0; font-weight: 600; }
.status.clean { border-color: #176b1f; background: #eef9ee; }
.status.findings { border-color: #9a5a00; background: #fff3df; }
.status.failed { border-color: #a00; background: #fde8e8; }
.zero { color: #888; }
figure { margin: .5rem 0 1rem; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: .9em; color: #333; }
.entry { margin: 0 0 1rem; }
.entry h3 { margin-bottom: .2rem; }
nav ol { columns: 2; margin: .3rem 0; }
.kv th { width: 14rem; }
.note { font-size: .9em; color: #333; }
@page { margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 9.5pt; }
  nav { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  h3 { break-after: avoid; page-break-after: avoid; }
  table { table-layout: fixed; }
  thead { display: table-header-group; }
  tr, .status, .kv { break-inside: avoid; page-break-inside: avoid; }
  pre { font-size: 7.5pt; background: none; }
  .entry, figure { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  .kv th { width: 30%; }
}
`

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="custody">
<title>{{.Title}}</title>
<style>{{.Style}}</style>
</head>
<body>
<header>
<h1>{{.Title}}</h1>
<p class="note">Report format {{data "format" "custody-report/v1"}}, status {{data "status" .Status}}. Written by custody {{.Version}} at {{.Time}}.
Check every proof in it, offline, with the log's public key: <code>custody verify report FILE.html --key LOG.pub</code> (see the last section).</p>
{{if eq .Status "clean"}}<div class="status clean">The log verified, and every one of its {{u .Size}} entries follows the routing policy: no findings.</div>
{{else if eq .Status "findings"}}<div class="status findings">The log verified; the audit of its {{u .Size}} entries found {{u .Findings}} findings{{if .More}} ({{len .Rows}} listed here with their proofs, {{u .More}} more not listed){{end}}.</div>
{{else}}<div class="status failed">The log FAILED verification: {{.FailureText}}</div>{{end}}
</header>
<nav aria-label="Contents"><ol>
<li><a href="#audited">What was audited</a></li>
{{if ne .Status "failed"}}<li><a href="#matrix">Events per region and data centre</a></li>
<li><a href="#flows">Flows</a></li>
<li><a href="#timeline">Timeline</a></li>
<li><a href="#findings">Findings</a></li>{{end}}
{{if or .Failure .SiteEvidence}}<li><a href="#failure">Evidence of verification failures</a></li>{{end}}
{{if .HasCP}}<li><a href="#checkpoint">The signed checkpoint</a></li>{{end}}
{{if .Proofs}}<li><a href="#proofs">Entries and inclusion proofs</a></li>{{end}}
<li><a href="#verify">How to check this report</a></li>
</ol></nav>
<main>
<section id="audited">
<h2>What was audited</h2>
<table class="kv">
<caption>The log, its checkpoint and the audit</caption>
<tbody>
<tr><th scope="row">Log origin</th><td class="mono">{{if ne .Status "failed"}}{{data "origin" .Origin}}{{else}}{{.Origin}}{{end}}</td></tr>
<tr><th scope="row">Log key (verifier key)</th><td class="mono">{{if ne .Status "failed"}}{{data "key" .LogKey}}{{else}}{{.LogKey}}{{end}}</td></tr>
{{if .HasCP}}<tr><th scope="row">Checkpoint tree size (entries)</th><td class="mono">{{if ne .Status "failed"}}{{data "size" (u .Size)}}{{else}}{{u .Size}}{{end}}</td></tr>
<tr><th scope="row">Checkpoint root hash (base64)</th><td class="mono">{{if ne .Status "failed"}}{{data "root" .Root}}{{else}}{{.Root}}{{end}}</td></tr>
{{range .Extensions}}<tr><th scope="row">Checkpoint extension line</th><td class="mono">{{.}}</td></tr>
{{end}}{{end}}
{{if .PolicyName}}<tr><th scope="row">Routing policy file</th><td class="mono">{{.PolicyName}}</td></tr>
<tr><th scope="row">Policy SHA-256</th><td class="mono">{{.PolicySHA256}}</td></tr>{{end}}
{{if ne .Status "failed"}}<tr><th scope="row">Entries audited in this run</th><td>{{if .From}}from {{u .From}} (earlier entries were audited by earlier runs kept in the audit state) to {{u .Size}}{{else}}all {{u .Size}}{{end}}</td></tr>
<tr><th scope="row">Sample index</th><td>{{if eq .SampleIndex "verified"}}verified: the map recomputed from the entries matches the checkpoint's custody-sample-index line{{else}}not checked: the checkpoint commits no sample index{{end}}</td></tr>
{{with .Sites}}<tr><th scope="row">Site signatures</th><td>{{u .Signed}} of {{u .Events}} events covered by a valid site attestation ({{u .Attestations}} attestations, {{u .Invalid}} that do not hold)</td></tr>{{end}}{{end}}
<tr><th scope="row">custody version</th><td class="mono">{{.Version}}</td></tr>
<tr><th scope="row">Audit time (UTC)</th><td class="mono">{{.Time}}</td></tr>
</tbody>
</table>
{{if .HasCP}}<table>
<caption>Signatures on the checkpoint</caption>
<thead><tr><th scope="col">Signer (key name)</th><th scope="col">Key ID</th><th scope="col">Kind</th><th scope="col">Cosignature time (UTC)</th><th scope="col">Checked here</th></tr></thead>
<tbody>
{{range .Sigs}}<tr><td class="mono">{{.Name}}</td><td class="mono">{{.KeyID}}</td><td>{{.Kind}}</td><td class="mono">{{.Time}}</td><td>{{.Status}}</td></tr>
{{end}}</tbody>
</table>
<p class="note">A witness cosignature says the witness saw this tree and checked it extends every earlier tree the witness saw; its time bounds when the checkpoint existed. Signatures by keys this report's writer did not know are listed but not checked.</p>{{end}}
</section>
{{if ne .Status "failed"}}
<section id="matrix">
<h2>Events per region and data centre</h2>
<p>Every event in the log, counted by its sample's customer region (rows) and the data centre where it happened (columns).</p>
<table>
<caption>Events per region × data centre ({{u .Matrix.Total}} events)</caption>
<thead><tr><th scope="col">Region</th>{{range .Matrix.Locations}}<th scope="col" class="n">{{.}}</th>{{end}}<th scope="col" class="n">Total</th></tr></thead>
<tbody>
{{range .Matrix.Rows}}<tr><th scope="row">{{.Region}}</th>{{range .Cells}}<td class="n{{if not .}} zero{{end}}">{{if .}}{{u .}}{{else}}–{{end}}</td>{{end}}<td class="n">{{u .Total}}</td></tr>
{{end}}<tr><th scope="row">Total</th>{{range .Matrix.Totals}}<td class="n">{{u .}}</td>{{end}}<td class="n">{{u .Matrix.Total}}</td></tr>
</tbody>
</table>
</section>
<section id="flows">
<h2>Flows</h2>
{{if and .HasActivity .ActivityFrom}}<p>The flows and the timeline cover the events of entries {{u .ActivityFrom}} to {{u .Size}} only: the audit continued from a state kept before custody kept them (audit with --full for the whole log).</p>{{end}}
{{if .HasActivity}}<figure id="flows-chart">{{.FlowSVG}}<figcaption>Where samples went: customer regions, the data centres where their samples were collected or sent from, and where they were transferred to. Edge width is the number of events; transfers the policy forbids are dashed and marked ✕. The tables below hold the same numbers.</figcaption></figure>
<table>
<caption>Transfers per region, from data centre, to data centre ({{u .FlowTotal}} transfers)</caption>
<thead><tr><th scope="col">Region</th><th scope="col">From</th><th scope="col">To</th><th scope="col" class="n">Transfers</th></tr></thead>
<tbody>
{{range .Flows}}<tr><td>{{.Region}}</td><td>{{.From}}</td><td>{{.To}}</td><td class="n">{{u .Events}}</td></tr>
{{else}}<tr><td colspan="4">No transfers.</td></tr>
{{end}}</tbody>
</table>
<table>
<caption>Where samples entered custody: collections per region and data centre</caption>
<thead><tr><th scope="col">Region</th><th scope="col">Data centre</th><th scope="col" class="n">Collected</th></tr></thead>
<tbody>
{{range .Collections}}<tr><td>{{.Region}}</td><td>{{.Location}}</td><td class="n">{{u .Events}}</td></tr>
{{else}}<tr><td colspan="3">No collections.</td></tr>
{{end}}</tbody>
</table>
{{else}}<p>The flows are not available: the audit that wrote this report kept no activity data.</p>{{end}}
</section>
<section id="timeline">
<h2>Timeline</h2>
{{if .HasActivity}}{{if .TimelineSVG}}<figure id="timeline-chart">{{.TimelineSVG}}<figcaption>Events over time per data centre (UTC); the listed findings are marked on the time axis at their events' times and link to their entries' proofs.</figcaption></figure>{{end}}{{with .Series}}{{if .Rows}}
<p>Events per day (UTC, by the time the event says it happened) per data centre; events from {{.First}} to {{.Last}}.{{if .Omitted}} The {{.Omitted}} earliest days are not shown.{{end}}</p>
<table>
<caption>Events per {{.Resolution}} per data centre</caption>
<thead><tr><th scope="col">Day</th>{{range .Locations}}<th scope="col" class="n">{{.}}</th>{{end}}<th scope="col" class="n">Total</th></tr></thead>
<tbody>
{{range .Rows}}<tr><th scope="row" class="mono">{{.Start}}</th>{{range .Cells}}<td class="n{{if not .}} zero{{end}}">{{if .}}{{u .}}{{else}}–{{end}}</td>{{end}}<td class="n">{{u .Total}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p>No events.</p>{{end}}{{end}}
{{else}}<p>The timeline is not available: the audit that wrote this report kept no activity data.</p>{{end}}
</section>
<section id="findings">
<h2>Findings</h2>
{{if .Findings}}
<p>The audit found {{u .Findings}} findings.{{if .More}} {{len .Rows}} are listed, in entry order, with their entries' inclusion proofs; {{u .More}} more are not listed (run <code>custody audit --json</code> for all of them).{{else}} Every one is listed, with its entry's inclusion proof.{{end}}
This report lists {{data "proved" (u (sub .Findings .More))}} of {{data "findings" (u .Findings)}} findings.</p>
<table>
<caption>Findings by kind</caption>
<thead><tr><th scope="col">Kind</th><th scope="col" class="n">Findings</th></tr></thead>
<tbody>{{range .ByKind}}<tr><td>{{.Kind}}</td><td class="n">{{u .N}}</td></tr>{{end}}</tbody>
</table>
<table class="findings">
<caption>Every finding: the entry's index in the log, what is wrong, the sample, and the auditor's detail</caption>
<colgroup><col style="width:9%"><col style="width:13%"><col style="width:18%"><col style="width:48%"><col style="width:12%"></colgroup>
<thead><tr><th scope="col">Entry</th><th scope="col">Kind</th><th scope="col">Sample</th><th scope="col">Detail</th><th scope="col">Proof</th></tr></thead>
<tbody>
{{range .Rows}}{{findingRow .}}
{{end}}</tbody>
</table>
{{else}}<p>No findings: every event follows the routing policy and every sample's custody is unbroken. This report lists {{data "proved" "0"}} of {{data "findings" "0"}} findings.</p>{{end}}
</section>
{{end}}
{{if or .Failure .SiteEvidence}}
<section id="failure">
<h2>Evidence of verification failures</h2>
{{if .Failure}}<p>The log failed verification. The evidence below (as the audit wrote it to its evidence file) holds the signed data that shows it; publish or send it.</p>
{{dataPre "failure" .Failure}}{{end}}
{{if .SiteEvidence}}<h3>Site signatures that do not hold</h3>
<table>
<caption>Site attestations or signed events that do not hold ({{len .SiteEvidence}})</caption>
<thead><tr><th scope="col">Entry</th><th scope="col">Kind</th><th scope="col">Site</th><th scope="col">Detail</th></tr></thead>
<tbody>
{{range .SiteEvidence}}<tr><td>{{.Index}}</td><td>{{.Kind}}</td><td>{{.Site}}</td><td>{{.Detail}}</td></tr>
{{end}}</tbody>
</table>{{end}}
</section>
{{end}}
{{if .HasCP}}
<section id="checkpoint">
<h2>The signed checkpoint</h2>
<p>The log's signed checkpoint (C2SP signed note, verbatim): origin, tree size, root hash{{if .Extensions}}, extension lines{{end}}, a blank line, then the signatures. Every proof below is checked against its root.</p>
{{dataPre "checkpoint" .Checkpoint}}
</section>
{{end}}
{{if .Proofs}}
<section id="proofs">
<h2>Entries and inclusion proofs</h2>
<p>For each entry a finding names: its index, the entry's exact bytes (<code>entry</code>, or <code>entry-base64</code> for bytes that are not printable ASCII), then its RFC 6962 inclusion proof in the checkpoint's tree, one base64 hash a line, from the leaf's sibling up.</p>
{{range .Proofs}}<div class="entry">
<h3>Entry {{.Index}}</h3>
<p>{{.Event}}. Proof of {{.Hashes}} hashes.</p>
{{proofPre .}}
</div>
{{end}}
</section>
{{end}}
<section id="verify">
<h2>How to check this report</h2>
<p>Obtain the log's public key from its operator (not from this report), then run:</p>
<pre>custody verify report FILE.html --key LOG.pub [--trust TRUST-POLICY]</pre>
<p>It checks, without the network, that the checkpoint is signed by the log's key (and, with a trust policy, cosigned by its quorum of witnesses); that the origin, size, root and key shown above are the checkpoint's; that every entry above is in the log at its index, by its inclusion proof; and that each finding row names an entry proved here, of the sample it names. It does not prove that the findings are complete or correctly judged, nor the counts, flows and timeline: audit the log again for that. The data format is specified in custody's docs/report.md.</p>
</section>
</main>
</body>
</html>
`
