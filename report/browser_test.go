package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/custodylog/custody/internal/browsertest"
)

// longReport writes a report of 1,200 events with 300 findings (many
// pages) to a new file and returns its path and the number of findings.
func longReport(t *testing.T) (string, int) {
	t.Helper()
	entries, fs := synthetic(t, 1200)
	m := newMemLog(t, entries)
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, write(t, m.input(t, fs)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, len(fs)
}

// media emulates a CSS media type ("print", or "" for none).
func media(m string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: m})
		return err
	})
}

// viewport sets the page's width in CSS pixels.
func viewport(width int64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: 900, DeviceScaleFactor: 1})
		return err
	})
}

// tooWide lists the tables, pre blocks and charts wider than their
// container (their content scrolls or sticks out).
const tooWide = `Array.from(document.querySelectorAll("table, pre, figure, svg")).filter(e =>
	e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().width > e.parentElement.getBoundingClientRect().width + 1 ||
	e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
).map(e => e.tagName + (e.id ? "#" + e.id : "") + " " + e.scrollWidth + "/" + e.clientWidth + "/" + Math.round(e.getBoundingClientRect().width))`

// TestBrowserReport opens a long report in headless Chromium from a file:
// no console errors, with and without JavaScript every finding is there;
// on screen and under print media at a page's width no table, proof or
// chart is wider than its container.
func TestBrowserReport(t *testing.T) {
	path, n := longReport(t)
	b := browsertest.New(t)
	rows := `document.querySelectorAll("tr[data-custody=finding]").length`
	b.Do(t, chromedp.Navigate("file://"+path), chromedp.WaitReady(chromedp.CSS(`#verify`)))
	if got := browsertest.Value(t, b, chromedp.Evaluate[int](rows)); got != n {
		t.Errorf("%d finding rows rendered, want %d", got, n)
	}
	if svgs := browsertest.Value(t, b, chromedp.Evaluate[int](`document.querySelectorAll("#flows-chart svg, #timeline-chart svg").length`)); svgs != 2 {
		t.Errorf("%d charts, want the flow diagram and the timeline", svgs)
	}
	if wide := browsertest.Value(t, b, chromedp.Evaluate[[]string](tooWide)); len(wide) > 0 {
		t.Errorf("on screen, wider than their containers: %v", wide)
	}
	b.NoErrors(t)

	// A screenshot of the report of the audit data set, for people.
	entries, fs := auditData(t)
	short := filepath.Join(t.TempDir(), "short.html")
	if err := os.WriteFile(short, write(t, newMemLog(t, entries).input(t, fs)), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Do(t, chromedp.Navigate("file://"+short), chromedp.WaitReady(chromedp.CSS(`#verify`)))
	b.Screenshot(t, "report")
	b.NoErrors(t)

	b.Do(t, browsertest.Scripts(false), chromedp.Navigate("file://"+path), chromedp.WaitReady(chromedp.CSS(`#verify`)))
	if got := browsertest.Value(t, b, chromedp.Evaluate[int](rows)); got != n {
		t.Errorf("without JavaScript, %d finding rows rendered, want %d", got, n)
	}
	b.Do(t, browsertest.Scripts(true))

	// An A4 page less its margins is about 700 CSS pixels wide.
	b.Do(t, media("print"), viewport(700), chromedp.Navigate("file://"+path), chromedp.WaitReady(chromedp.CSS(`#verify`)))
	if wide := browsertest.Value(t, b, chromedp.Evaluate[[]string](tooWide)); len(wide) > 0 {
		t.Errorf("under print media at 700 px, wider than their containers: %v", wide)
	}
	if nav := browsertest.Value(t, b, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("nav")).display`)); nav != "none" {
		t.Errorf("the contents list is printed (display %q)", nav)
	}
	if br := browsertest.Value(t, b, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("tr[data-custody=finding]")).breakInside`)); br != "avoid" {
		t.Errorf("a finding row may break across pages (break-inside %q)", br)
	}
	b.NoErrors(t)
}

// TestPrintToPDF prints a long report with chromium --headless
// --print-to-pdf: a PDF of several pages.
func TestPrintToPDF(t *testing.T) {
	path, _ := longReport(t)
	browsertest.New(t) // skips (or fails in CI) without Chromium
	chromium := "/usr/bin/chromium"
	if p := os.Getenv("CUSTODY_CHROMIUM"); p != "" {
		chromium = p
	}
	out := filepath.Join(t.TempDir(), "out.pdf")
	args := []string{"--headless", "--disable-gpu", "--no-pdf-header-footer", "--user-data-dir=" + t.TempDir(), "--print-to-pdf=" + out, "file://" + path}
	if os.Geteuid() == 0 {
		args = append([]string{"--no-sandbox"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if msg, err := exec.CommandContext(ctx, chromium, args...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --print-to-pdf: %v\n%s", err, msg)
	}
	pdf, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", pdf[:min(len(pdf), 16)])
	}
	pages := strings.Count(string(pdf), "/Type /Page") - strings.Count(string(pdf), "/Type /Pages")
	if pages < 2 {
		t.Errorf("the PDF of a report of 300 findings has %d pages", pages)
	}
	t.Logf("%s: %d bytes, %d pages", out, len(pdf), pages)
}
