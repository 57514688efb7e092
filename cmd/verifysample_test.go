package cmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// sampleEvents returns n events of sample (collected, then stored again
// and again at de-fra-1, region EU), a second apart from start.
func sampleEvents(sample string, n int, start time.Time) []record.Event {
	evs := make([]record.Event, n)
	for i := range evs {
		t := start.Add(time.Duration(i) * time.Second)
		evs[i] = record.Event{Sample: sample, Action: record.Stored, Location: "de-fra-1", Region: "EU", Actor: "t", Time: t, Logged: t.Add(time.Second)}
		if i == 0 {
			evs[i].Action = record.Collected
		}
	}
	return evs
}

// verifySampleJSON runs custody verify sample --json and decodes its report.
func verifySampleJSON(t *testing.T, args ...string) (int, audit.SampleReport, string) {
	t.Helper()
	code, out, stderr := run(t, "", append([]string{"verify", "sample", "--json"}, args...)...)
	var rep audit.SampleReport
	if code == exitOK || code == exitFailure {
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("verify sample --json output %q: %v", out, err)
		}
	}
	return code, rep, stderr
}

// TestVerifySample: custody verify sample against a real log (SQLite
// store, log.Log, httpapi) for samples with 1, 2, 255, 256 and 257
// events interleaved with others: membership, absence and since-M chains
// are complete and verified; a lying HTTP front that drops, adds or
// swaps events, or serves a proof for another size, makes it exit 2 with
// an evidence file.
func TestVerifySample(t *testing.T) {
	key := fixedKey(t, auditOrigin, 7)
	a := newAuditLog(t, key)
	counts := []int{1, 2, 255, 256, 257}
	start := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	var queues [][]record.Event
	for i, n := range counts {
		queues = append(queues, sampleEvents(fmt.Sprintf("smp-n%d", n), n, start.Add(time.Duration(i)*time.Hour)))
	}
	// Interleave the samples' events, one of each in turn; stop halfway
	// (by count) for a checkpoint to verify "since" against.
	var all []record.Event
	for len(all) < 771 {
		for i := range queues {
			if len(queues[i]) > 0 {
				all = append(all, queues[i][0])
				queues[i] = queues[i][1:]
			}
		}
	}
	slices.SortStableFunc(all, func(x, y record.Event) int { return x.Logged.Compare(y.Logged) })
	half := len(all) / 2
	entries := a.add(t, all[:half])
	checkpointFile := filepath.Join(t.TempDir(), "checkpoint")
	writeFile(t, checkpointFile, httpGet(t, a.url+"/checkpoint"))
	entries = append(entries, a.add(t, all[half:])...)
	if !bytes.Contains(a.Checkpoint().Note, []byte("\n"+sampleindex.ExtensionKeyword+" ")) {
		t.Fatalf("the log's checkpoint has no index line:\n%s", a.Checkpoint().Note)
	}
	indexesOf := func(sample string, from int) []uint64 {
		var out []uint64
		for i, e := range entries {
			if ev, _ := record.DecodeEntry(e); ev.Sample == sample && i >= from {
				out = append(out, uint64(i))
			}
		}
		return out
	}
	got := func(rep audit.SampleReport) []uint64 {
		var out []uint64
		for _, e := range rep.Events {
			out = append(out, e.Index)
		}
		return out
	}
	size := uint64(len(entries))
	for _, n := range counts {
		sample := fmt.Sprintf("smp-n%d", n)
		code, rep, stderr := verifySampleJSON(t, sample, "--log", a.url, "--key", a.pub)
		if code != exitOK || rep.Size != size || rep.ListSize != uint64(n) || !slices.Equal(got(rep), indexesOf(sample, 0)) {
			t.Fatalf("%s: exit %d, size %d, list %d, chain %v; want %d events %v; stderr:\n%s", sample, code, rep.Size, rep.ListSize, got(rep), n, indexesOf(sample, 0), stderr)
		}
		code, rep, stderr = verifySampleJSON(t, sample, "--log", a.url, "--key", a.pub, "--since", checkpointFile)
		if code != exitOK || rep.Since != uint64(half) || !slices.Equal(got(rep), indexesOf(sample, half)) {
			t.Fatalf("%s since %d: exit %d, chain %v, want %v; stderr:\n%s", sample, half, code, got(rep), indexesOf(sample, half), stderr)
		}
	}
	code, rep, stderr := verifySampleJSON(t, "smp-never", "--log", a.url, "--key", a.pub)
	if code != exitOK || !rep.Absent || len(rep.Events) != 0 {
		t.Fatalf("absent sample: exit %d %+v; stderr:\n%s", code, rep, stderr)
	}
	// The text output.
	code, out, stderr := run(t, "", "verify", "sample", "smp-n2", "--log", a.url, "--key", a.pub, "--policy", auditPolicy(t))
	if code != exitOK || !strings.Contains(out, "sample smp-n2: 2 events in log "+auditOrigin+"\n") ||
		!strings.Contains(out, fmt.Sprintf("\ncomplete as of checkpoint %d\nno findings for this sample\n", size)) ||
		!strings.Contains(out, "collected    de-fra-1              EU") {
		t.Errorf("text output (exit %d):\n%s\nstderr:\n%s", code, out, stderr)
	}
	golden(t, "verify-sample.txt", out)
	// --trust: a checkpoint without the witness quorum fails (exit 2,
	// quorum evidence), whatever the proof.
	w := newWitness(t, "witness.example/w1", 3)
	trust := filepath.Join(t.TempDir(), "trust.policy")
	writeFile(t, trust, []byte("log "+key.vkey+"\nwitness w1 "+w.vkey+"\nquorum w1\n"))
	evDir := t.TempDir()
	code, _, stderr = run(t, "", "verify", "sample", "smp-n2", "--log", a.url, "--trust", trust, "--evidence-dir", evDir)
	wantFailure(t, code, stderr, evDir, verify.EvidenceQuorum)
	// A directory log cannot serve sample proofs.
	if code, _, stderr := run(t, "", "verify", "sample", "smp-n2", "--log", t.TempDir(), "--key", a.pub); code != exitUsageIO || !strings.Contains(stderr, "need the log's URL") {
		t.Errorf("directory log: exit %d, stderr:\n%s", code, stderr)
	}

	// A lying front: the log's own proofs, edited.
	honest := a.handler.Load()
	lie := func(edit func(p *sampleindex.Proof) []byte) {
		h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/proof") {
				(*honest).ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			(*honest).ServeHTTP(rec, r)
			p, err := sampleindex.ParseProof(rec.Body.Bytes())
			if err != nil {
				t.Errorf("the log's own proof does not parse: %v", err)
				return
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			b := edit(p)
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.WriteHeader(rec.Code)
			w.Write(b)
		}))
		a.handler.Store(&h)
	}
	defer a.handler.Store(honest)
	for _, tc := range []struct {
		name string
		edit func(p *sampleindex.Proof) []byte
	}{
		{"dropped", func(p *sampleindex.Proof) []byte {
			p.Entries = append(p.Entries[:100:100], p.Entries[101:]...)
			return p.Marshal()
		}},
		{"added", func(p *sampleindex.Proof) []byte {
			p.Entries = append(p.Entries, sampleindex.Entry{Index: p.Entries[0].Index + 1, Data: p.Entries[0].Data})
			return p.Marshal()
		}},
		{"swapped", func(p *sampleindex.Proof) []byte {
			p.Entries[3].Data, p.Entries[4].Data = p.Entries[4].Data, p.Entries[3].Data
			return p.Marshal()
		}},
		{"reordered", func(p *sampleindex.Proof) []byte {
			p.Entries[3], p.Entries[4] = p.Entries[4], p.Entries[3]
			return p.Marshal()
		}},
		{"another size", func(p *sampleindex.Proof) []byte {
			p.Size--
			return p.Marshal()
		}},
	} {
		lie(tc.edit)
		evDir := t.TempDir()
		code, _, stderr := run(t, "", "verify", "sample", "smp-n257", "--log", a.url, "--key", a.pub, "--evidence-dir", evDir)
		ev := wantFailure(t, code, stderr, evDir, audit.EvidenceBadSampleProof)
		if ev.NewSize != size || len(ev.Proof) != 1 {
			t.Errorf("%s: evidence %+v", tc.name, ev)
		}
	}
	// A proof of an older tree, with its (genuine) older checkpoint.
	a.handler.Store(honest)
	old := httpGet(t, a.url+"/v1/samples/smp-n1/proof")
	a.add(t, sampleEvents("smp-later", 1, start.Add(10*time.Hour)))
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/proof") {
			w.Write(old)
			return
		}
		(*honest).ServeHTTP(w, r)
	}))
	a.handler.Store(&h)
	evDir = t.TempDir()
	code, _, stderr = run(t, "", "verify", "sample", "smp-n1", "--log", a.url, "--key", a.pub, "--evidence-dir", evDir)
	ev := wantFailure(t, code, stderr, evDir, audit.EvidenceBadSampleProof)
	if !strings.Contains(ev.What, "smp-n1") {
		t.Errorf("old proof: evidence %+v", ev)
	}
}

// TestDemoVerifySample: in `custody demo --violations`, custody verify
// sample of a rerouted sample reports the reroute from its proven chain
// alone (exit 1), and the chain holds every event the audit saw.
func TestDemoVerifySample(t *testing.T) {
	var out, errb syncBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := filepath.Join(t.TempDir(), "demo")
	var sample, vout, verr string
	code := -1
	o := demoOptions{events: 300, seed: 7, violations: true, dir: dir, listen: "127.0.0.1:0"}
	o.reported = func(base string) {
		defer cancel()
		m := regexp.MustCompile(`(?m)^\d+\s+(smp-\S+)\s+reroute\s`).FindStringSubmatch(out.String())
		if m == nil {
			return
		}
		sample = m[1]
		code, vout, verr = run(t, "", "verify", "sample", sample, "--log", base, "--key", filepath.Join(dir, "log.pub"),
			"--policy", filepath.Join(dir, "policy.yaml"))
	}
	if err := e.demo(ctx, o); err != nil {
		t.Fatalf("demo: %v\n%s", err, errb.String())
	}
	if sample == "" {
		t.Fatalf("no reroute in the demo's report:\n%s", out.String())
	}
	if code != exitFailure || !strings.Contains(vout, "reroute") || !regexp.MustCompile(`\ncomplete as of checkpoint \d+\n`).MatchString(vout) {
		t.Fatalf("verify sample %s: exit %d\n%s\nstderr:\n%s", sample, code, vout, verr)
	}
	t.Logf("custody verify sample %s:\n%s", sample, vout)
	// Every finding the audit reported for the sample is in the chain's.
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[1] == sample {
			if !strings.Contains(vout, f[0]) || !strings.Contains(vout, f[2]) {
				t.Errorf("audit finding %q is not in the sample's report:\n%s", line, vout)
			}
		}
	}
}

// TestMonitorSamples: custody monitor --sample/--sample-file reports each
// new event of the watched samples once (since=M proofs), with the
// policy's findings, and nothing of other samples.
func TestMonitorSamples(t *testing.T) {
	key := fixedKey(t, auditOrigin, 8)
	a := newAuditLog(t, key)
	start := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	a.add(t, sampleEvents("smp-w1", 3, start))
	a.add(t, sampleEvents("smp-other", 2, start.Add(time.Hour)))
	sampleFile := filepath.Join(t.TempDir(), "samples.txt")
	writeFile(t, sampleFile, []byte("# watched\nsmp-w2\n\n"))

	state := t.TempDir()
	cmd := exec.Command(os.Args[0], "monitor", "--log", a.url, "--key", a.pub, "--policy", auditPolicy(t), "--state", state,
		"--every", "100ms", "--json", "--sample", "smp-w1", "--sample-file", sampleFile)
	cmd.Env = append(os.Environ(), "CUSTODY_TEST_AS_MAIN=1")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	type line struct {
		Kind    string        `json:"kind"`
		Size    uint64        `json:"size"`
		Finding audit.Finding `json:"finding"`
	}
	lines := func() []line {
		var out []line
		for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var x line
			if l != "" && json.Unmarshal([]byte(l), &x) == nil {
				out = append(out, x)
			}
		}
		return out
	}
	events := func() []string {
		var out []string
		for _, l := range lines() {
			out = append(out, fmt.Sprintf("%s %d %s", l.Finding.Sample, l.Finding.Index, l.Finding.Kind))
		}
		return out
	}
	waitFor(t, 20*time.Second, "the first events", func() bool { return len(lines()) >= 3 })
	// smp-w2 appears, smp-w1 gets an event at a forbidden location.
	a.add(t, sampleEvents("smp-w2", 1, start.Add(2*time.Hour)))
	bad := sampleEvents("smp-w1", 4, start.Add(3*time.Hour))[3]
	bad.Location = "ru-mow-1"
	a.add(t, []record.Event{bad})
	want := []string{"smp-w1 0 event", "smp-w1 1 event", "smp-w1 2 event", "smp-w1 6 continuity", "smp-w1 6 event", "smp-w1 6 reroute", "smp-w2 5 event"}
	waitFor(t, 20*time.Second, "the new events", func() bool { return len(lines()) >= len(want) })
	// Rounds after the new events report nothing again.
	waitFor(t, 20*time.Second, "a round after the new events", func() bool {
		b, err := os.ReadFile(filepath.Join(state, audit.SampleWatchFile))
		return err == nil && strings.Count(string(b), `"size": 7`) == 2
	})
	// The two new events may come in one round or two: compare as sets
	// (each once).
	if got := slices.Sorted(slices.Values(events())); !slices.Equal(got, want) {
		t.Fatalf("monitor reported %q, want %q\nstderr:\n%s", got, want, stderr.String())
	}
	for _, l := range lines() {
		if l.Kind != "finding" || l.Size == 0 {
			t.Errorf("line %+v", l)
		}
	}
}

// TestAuditSampleIndexMismatch: a log (signing with its own key) whose
// checkpoint commits a sample index that omits an event fails custody
// audit with sample-index-mismatch evidence (exit 2), while its tree and
// entries are honest.
func TestAuditSampleIndexMismatch(t *testing.T) {
	key := fixedKey(t, auditOrigin, 9)
	a := newAuditLog(t, key)
	start := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	a.add(t, sampleEvents("smp-m1", 3, start))
	a.add(t, sampleEvents("smp-m2", 2, start.Add(time.Hour)))
	// The root of the map without the last event of smp-m2.
	ctx := context.Background()
	m := sampleindex.Open(sampleindex.NewMemTiles(), 0, nil)
	var cs []sampleindex.Change
	for i := uint64(0); i < 4; i++ {
		es, err := a.st.Entries(ctx, i, i+1)
		if err != nil || len(es) != 1 {
			t.Fatal(err)
		}
		ev, _ := record.DecodeEntry(es[0].Data)
		cs = append(cs, sampleindex.Change{Key: sampleindex.KeyOf(ev.Sample), Index: i, LeafHash: sampleindex.EntryLeafHash(es[0].Data)})
	}
	wrong, err := m.Update(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	signed := a.Checkpoint().Note
	cp, err := verify.ParseCheckpoint(signed[:bytes.LastIndex(signed, []byte("\n\n"))+1])
	if err != nil {
		t.Fatal(err)
	}
	cp.Extensions = []string{sampleindex.FormatExtension(wrong)}
	lying, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, key.signer)
	if err != nil {
		t.Fatal(err)
	}
	honest := a.handler.Load()
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/checkpoint" {
			w.Write(lying)
			return
		}
		(*honest).ServeHTTP(w, r)
	}))
	a.handler.Store(&h)
	state := t.TempDir()
	code, _, stderr := run(t, "", "audit", "--log", a.url, "--key", a.pub, "--policy", auditPolicy(t), "--state", state)
	ev := wantFailure(t, code, stderr, state, audit.EvidenceSampleIndexMismatch)
	if ev.Expected != base64.StdEncoding.EncodeToString(wrong[:]) || ev.NewCheckpoint != string(lying) {
		t.Errorf("evidence %+v", ev)
	}
	// The honest checkpoint passes.
	a.handler.Store(honest)
	if code, out, stderr := run(t, "", "audit", "--log", a.url, "--key", a.pub, "--policy", auditPolicy(t), "--no-state"); code != exitOK ||
		!strings.Contains(out, "\nsample index: the map recomputed from the entries matches") {
		t.Errorf("honest log: exit %d\n%s\n%s", code, out, stderr)
	}
}
