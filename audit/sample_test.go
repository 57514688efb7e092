package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/verify"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
)

// sampleLog is a log directory whose checkpoint commits the sample index
// of entries, and a prover for it that builds proofs with sampleindex
// directly (as the server does).
type sampleLog struct {
	t       *testing.T
	dir     string
	signer  note.Signer
	vkey    string
	entries [][]byte
	notes   map[int][]byte // signed checkpoint by size
}

func newSampleLog(t *testing.T, entries [][]byte) *sampleLog {
	signer, vkey := auditBenchKey(t)
	l := &sampleLog{t: t, dir: t.TempDir(), signer: signer, vkey: vkey, entries: entries, notes: map[int][]byte{}}
	return l
}

// publish writes the log's first n entries, signed with the index line.
func (l *sampleLog) publish(n int) {
	l.t.Helper()
	root, _, err := writeAuditBenchLogEdited(l.dir, n, l.signer, func(i int, _ []byte) []byte { return l.entries[i] })
	if err != nil {
		l.t.Fatal(err)
	}
	cp := verify.Checkpoint{Origin: auditBenchOrigin, Size: uint64(n), Root: root,
		Extensions: []string{sampleindex.FormatExtension(refMapRoot(l.entries[:n], nil))}}
	signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.dir, "checkpoint"), signed, 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.notes[n] = signed
}

func (l *sampleLog) client() *verify.Client {
	return verify.NewClient(verify.NewDirSource(l.dir), auditBenchOrigin, mustVerifiers(l.t, l.vkey), nil)
}

// prove builds the proof of sample's chain at size since since.
func (l *sampleLog) prove(sample string, size, since uint64) *sampleindex.Proof {
	l.t.Helper()
	ctx := context.Background()
	es := l.entries[:size]
	m := sampleindex.Open(sampleindex.NewMemTiles(), 0, nil)
	var cs []sampleindex.Change
	var idx []uint64
	for i, e := range es {
		ev, err := record.DecodeEntry(e)
		if err != nil {
			l.t.Fatal(err)
		}
		cs = append(cs, sampleindex.Change{Key: sampleindex.KeyOf(ev.Sample), Index: uint64(i), LeafHash: sampleindex.EntryLeafHash(e)})
		if ev.Sample == sample {
			idx = append(idx, uint64(i))
		}
	}
	if _, err := m.Update(ctx, cs); err != nil {
		l.t.Fatal(err)
	}
	mp, err := m.Prove(ctx, sampleindex.KeyOf(sample))
	if err != nil {
		l.t.Fatal(err)
	}
	leaves := make([][32]byte, len(es))
	for i, e := range es {
		leaves[i] = refLeafHash(e)
	}
	p, err := sampleindex.BuildProof(ctx, sampleindex.ProofInput{Sample: sample, Since: since, Size: size, Map: mp, Indexes: idx,
		Entries: func(_ context.Context, ix []uint64) ([][]byte, error) {
			out := make([][]byte, len(ix))
			for i, x := range ix {
				out[i] = es[x]
			}
			return out, nil
		},
		Nodes: func(_ context.Context, ids []compact.NodeID) ([][]byte, error) {
			out := make([][]byte, len(ids))
			for i, id := range ids {
				h := refTreeHash(leaves[id.Index<<id.Level : (id.Index+1)<<id.Level])
				out[i] = h[:]
			}
			return out, nil
		}})
	if err != nil {
		l.t.Fatal(err)
	}
	return p
}

// source serves honest proofs, edited by edit if set.
func (l *sampleLog) source(edit func(p *sampleindex.Proof)) SampleProofSource {
	return func(_ context.Context, sample string, size, since uint64) ([]byte, []byte, error) {
		p := l.prove(sample, size, since)
		if edit != nil {
			edit(p)
		}
		return p.Marshal(), nil, nil
	}
}

// chainOf returns the indexes of sample's events among entries.
func chainOf(entries [][]byte, sample string) []uint64 {
	var out []uint64
	for i, e := range entries {
		if ev, _ := record.DecodeEntry(e); ev.Sample == sample {
			out = append(out, uint64(i))
		}
	}
	return out
}

func reportIndexes(rep *SampleReport) []uint64 {
	var out []uint64
	for _, e := range rep.Events {
		out = append(out, e.Index)
	}
	return out
}

func TestVerifySample(t *testing.T) {
	ctx := context.Background()
	const n1, n2 = 300, 700
	entries := benchEntries(n2)
	l := newSampleLog(t, entries)
	l.publish(n1)
	// A sample with two events or more before n1 and one after.
	sample := ""
	for _, e := range entries {
		ev, _ := record.DecodeEntry(e)
		c := chainOf(entries, ev.Sample)
		if len(c) >= 3 && c[1] < n1 && c[len(c)-1] >= n1 {
			sample = ev.Sample
			break
		}
	}
	if sample == "" {
		t.Fatal("no sample with events on both sides of n1")
	}
	rep, err := VerifySample(ctx, l.client(), l.source(nil), SampleOptions{Sample: sample})
	if err != nil {
		t.Fatal(err)
	}
	want := chainOf(entries[:n1], sample)
	if len(want) < 2 || !slices.Equal(reportIndexes(rep), want) || rep.Absent || rep.ListSize != uint64(len(want)) || rep.Size != n1 {
		t.Fatalf("chain %v (absent %v, list %d, size %d), want %v", reportIndexes(rep), rep.Absent, rep.ListSize, rep.Size, want)
	}
	for _, e := range rep.Events {
		if string(e.Entry) != string(entries[e.Index]) || e.Event.Sample != sample {
			t.Fatalf("event %d is not the log's entry", e.Index)
		}
	}
	// Absence.
	rep, err = VerifySample(ctx, l.client(), l.source(nil), SampleOptions{Sample: "never-logged"})
	if err != nil || !rep.Absent || len(rep.Events) != 0 {
		t.Fatalf("absent sample: %v %+v", err, rep)
	}

	// The log grows; since the first checkpoint, with the list state
	// verified then.
	first, err := VerifySample(ctx, l.client(), l.source(nil), SampleOptions{Sample: sample})
	if err != nil {
		t.Fatal(err)
	}
	l.publish(n2)
	all := chainOf(entries, sample)
	var newer []uint64
	for _, x := range all {
		if x >= n1 {
			newer = append(newer, x)
		}
	}
	if len(newer) == 0 {
		t.Fatalf("sample %s has no event after %d: pick another", sample, n1)
	}
	for _, pol := range []*Policy{nil, mustPolicy(t)} {
		rep, err = VerifySample(ctx, l.client(), l.source(nil), SampleOptions{Sample: sample, SinceNote: l.notes[n1], Prev: &first.List, Policy: pol})
		if err != nil {
			t.Fatalf("since (policy %v): %v", pol != nil, err)
		}
		if !slices.Equal(reportIndexes(rep), newer) || rep.Since != n1 || rep.ListSize != uint64(len(all)) {
			t.Fatalf("since (policy %v): chain %v since %d, want %v", pol != nil, reportIndexes(rep), rep.Since, newer)
		}
		wrong := first.List
		wrong.Size++
		_, err = VerifySample(ctx, l.client(), l.source(nil), SampleOptions{Sample: sample, SinceNote: l.notes[n1], Prev: &wrong, Policy: pol})
		if ve, ok := verify.IsVerificationError(err); !ok || ve.Evidence.Kind != EvidenceBadSampleProof || !errors.Is(err, sampleindex.ErrBadConsistency) {
			t.Errorf("since with another earlier list (policy %v): %v", pol != nil, err)
		}
	}

	// The log grew between the checkpoint and the proof: the proof comes
	// with the newer signed checkpoint, which must verify and extend.
	if err := os.WriteFile(filepath.Join(l.dir, "checkpoint"), l.notes[n1], 0o644); err != nil {
		t.Fatal(err)
	}
	grown := func(note []byte) SampleProofSource {
		return func(_ context.Context, sample string, _, since uint64) ([]byte, []byte, error) {
			return l.prove(sample, n2, since).Marshal(), note, nil
		}
	}
	rep, err = VerifySample(ctx, l.client(), grown(l.notes[n2]), SampleOptions{Sample: sample})
	if err != nil || rep.Size != n2 || !slices.Equal(reportIndexes(rep), all) {
		t.Fatalf("proof of a newer checkpoint: %v %+v", err, rep)
	}
	forged := slices.Clone(l.notes[n2])
	forged[len(forged)-5] ^= 1
	if _, err := VerifySample(ctx, l.client(), grown(forged), SampleOptions{Sample: sample}); err == nil {
		t.Fatal("accepted a proof with a forged newer checkpoint")
	}
	if _, err := VerifySample(ctx, l.client(), grown(nil), SampleOptions{Sample: sample}); !errors.Is(err, sampleindex.ErrWrongSize) {
		t.Fatalf("proof of a newer size without its checkpoint: %v", err)
	}
	l.publish(n2)

	// Lying proofs.
	other := l.prove(sample, n1, 0).Marshal()
	otherSample := func() string {
		for _, e := range entries {
			if ev, _ := record.DecodeEntry(e); ev.Sample != sample {
				return ev.Sample
			}
		}
		return ""
	}()
	for _, tc := range []struct {
		name string
		edit func(p *sampleindex.Proof)
		want error
	}{
		{"dropped", func(p *sampleindex.Proof) { p.Entries = p.Entries[1:] }, sampleindex.ErrDroppedEntry},
		{"added", func(p *sampleindex.Proof) { p.Entries = append(p.Entries, p.Entries[0]) }, sampleindex.ErrAddedEntry},
		{"swapped", func(p *sampleindex.Proof) { p.Entries[0], p.Entries[1] = p.Entries[1], p.Entries[0] }, sampleindex.ErrReorderedEntries},
		{"other size", func(p *sampleindex.Proof) {
			q, _ := sampleindex.ParseProof(other)
			*p = *q
		}, sampleindex.ErrWrongSize},
		{"other sample", func(p *sampleindex.Proof) { *p = *l.prove(otherSample, n2, 0) }, sampleindex.ErrWrongSample},
		{"claims absence", func(p *sampleindex.Proof) { *p = *l.prove("never-logged", n2, 0); p.Sample = sample }, nil},
	} {
		_, err := VerifySample(ctx, l.client(), l.source(tc.edit), SampleOptions{Sample: sample})
		ve, ok := verify.IsVerificationError(err)
		if !ok || ve.Evidence.Kind != EvidenceBadSampleProof || ve.Evidence.NewCheckpoint == "" || len(ve.Evidence.Proof) != 1 {
			t.Errorf("%s: %v, want %s evidence", tc.name, err, EvidenceBadSampleProof)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	_, err = VerifySample(ctx, l.client(), func(context.Context, string, uint64, uint64) ([]byte, []byte, error) {
		return []byte("garbage"), nil, nil
	}, SampleOptions{Sample: sample})
	if ve, ok := verify.IsVerificationError(err); !ok || ve.Evidence.Kind != EvidenceBadSampleProof || !errors.Is(err, sampleindex.ErrMalformedProof) {
		t.Errorf("garbage proof: %v", err)
	}

	// A log without the index line.
	signIndexed(t, l.dir, n2, l.signer)
	if _, err := VerifySample(ctx, l.client(), l.source(nil), SampleOptions{Sample: sample}); !errors.Is(err, ErrNoSampleIndex) {
		t.Errorf("log without an index: %v", err)
	}
}

func mustPolicy(t *testing.T) *Policy {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// TestVerifySamplePolicy: the findings of a sample's proven chain are the
// ones a full audit reports for that sample.
func TestVerifySamplePolicy(t *testing.T) {
	ctx := context.Background()
	const n = 400
	entries := benchEntries(n)
	// Reroute one event of a sample to ru-mow-1.
	ev, _ := record.DecodeEntry(entries[200])
	ev.Location = "ru-mow-1"
	if ev.To == "ru-mow-1" {
		ev.Location = "sg-sin-1"
	}
	entries[200] = ev.Canonical()
	l := newSampleLog(t, entries)
	l.publish(n)
	pol := mustPolicy(t)
	full, _, err := Audit(ctx, l.client(), AuditOptions{Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	var want []Finding
	for _, f := range full.Findings {
		if f.Sample == ev.Sample {
			want = append(want, f)
		}
	}
	if len(want) == 0 {
		t.Fatalf("the audit found nothing for %s: %v", ev.Sample, full.Findings)
	}
	rep, err := VerifySample(ctx, l.client(), l.source(nil), SampleOptions{Sample: ev.Sample, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Findings) != fmt.Sprint(want) {
		t.Errorf("sample findings %v, audit's %v", rep.Findings, want)
	}
}

// TestHTTPSampleProofs: the URL asked and the handling of statuses.
func TestHTTPSampleProofs(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.RequestURI()
		switch r.URL.Query().Get("size") {
		case "9":
			http.Error(w, "no such size\x1b[31m", http.StatusConflict)
			return
		case "7":
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		w.Header().Set(SampleCheckpointHeader, base64.StdEncoding.EncodeToString([]byte("cp")))
		w.Write([]byte("proof"))
	}))
	defer srv.Close()
	src := HTTPSampleProofs(srv.URL+"/", nil)
	b, cp, err := src(context.Background(), "smp:1", 5, 3)
	if err != nil || string(b) != "proof" || string(cp) != "cp" || got != "/v1/samples/smp:1/proof?size=5&since=3" {
		t.Errorf("got %q %q %v for %s", b, cp, err, got)
	}
	if _, _, err := src(context.Background(), "smp-1", 5, 0); err != nil || got != "/v1/samples/smp-1/proof?size=5" {
		t.Errorf("since 0: %v, %s", err, got)
	}
	// 409: asked again without size.
	if b, _, err := src(context.Background(), "smp-1", 9, 4); err != nil || string(b) != "proof" || got != "/v1/samples/smp-1/proof?since=4" {
		t.Errorf("409: %q %v, then %s", b, err, got)
	}
	if _, _, err := src(context.Background(), "smp-1", 7, 0); err == nil || !containsAll(err.Error(), "500", "broken") {
		t.Errorf("500: %v", err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
