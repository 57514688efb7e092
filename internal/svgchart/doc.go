// Package svgchart draws the charts of the dashboard and of the
// regulator's report as server-rendered SVG: no script, no style sheet
// needed (every colour, line and font is a presentation attribute, so a
// chart renders the same in the dashboard, in a self-contained report
// file and printed), every value escaped, and every chart bounded in
// size whatever its input holds.
//
// It depends on no server package (not the dashboard, nor the audit), so
// both the dashboard and the report call it with plain data.
package svgchart
