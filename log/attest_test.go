package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/internal/sitetest"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/site"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// signNow is the log's clock in these tests (testLog.open).
var signNow = testTime.Add(time.Minute)

func mowEvents(from, n int) []record.Event {
	evs := logtest.Events(from, n)
	for i := range evs {
		evs[i].Location = "ru-mow-1"
		evs[i].Region = "ROW"
	}
	return evs
}

func allEntries(t *testing.T, tl *testLog) []store.Entry {
	t.Helper()
	es, err := tl.st.Entries(context.Background(), 0, tl.Checkpoint().Size)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestSubmitSigned: a signed batch lands as its events followed by its
// attestation; each receipt carries the attestation, which x/mod note and
// tlog verify, and the site Checker accepts the whole log.
func TestSubmitSigned(t *testing.T) {
	w := sitetest.NewWorld(t)
	tl := newTestLog(t, Config{Sites: w.Set})
	ctx := context.Background()
	if _, err := tl.AddMany(ctx, logtest.Events(0, 2)); err != nil { // unsigned first
		t.Fatal(err)
	}
	evs := logtest.Events(10, 5)
	att := sitetest.Sign(t, w.Zrh, tl.Origin(), signNow, evs)
	unsigned := logtest.Events(20, 1)
	rs, err := tl.SubmitGroups(ctx, []Group{{Events: evs, Attestation: att}, {Events: unsigned}})
	if err != nil {
		t.Fatal(err)
	}
	es := allEntries(t, tl)
	if len(es) != 2+5+1+1 {
		t.Fatalf("log has %d entries, want 9", len(es))
	}
	if !bytes.Equal(es[7].Data, att) || es[7].Sample != "" || record.KindOf(es[7].Data) != record.EntryAttestation {
		t.Fatalf("entry 7 is %q, want the attestation", es[7].Data)
	}
	for i := 0; i < rs.Len(); i++ {
		r, err := rs.Receipt(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		logtest.CheckReceipt(t, tl.vkey, r)
		if _, _, err := verify.CheckReceipt(r, tl.Origin(), tl.verifiers(), nil); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
		if i == 5 {
			if r.Attestation != nil || r.Index != 8 {
				t.Fatalf("unsigned event's receipt: index %d, attestation %v", r.Index, r.Attestation)
			}
			continue
		}
		if r.Index != uint64(2+i) || r.Attestation == nil || r.Attestation.Index != 7 {
			t.Fatalf("receipt %d: index %d, attestation %+v", i, r.Index, r.Attestation)
		}
		sitetest.CheckAttestation(t, w.Zrh.VKey, r, evs[i])
	}
	checkSites(t, w.Set, tl, false, 0, 1, 8)
	waitCounted(t, tl)
	if got := tl.counter.Total(); got != 8 {
		t.Errorf("stats counted %d events, want 8 (the attestation is not one)", got)
	}
	if tl.SiteMode() != SitesOptional {
		t.Errorf("site mode %q, want optional", tl.SiteMode())
	}
}

// checkSites runs the site Checker over the whole log and fails t on any
// finding but unsigned ones at the indexes unsigned.
func checkSites(t *testing.T, set *site.Set, tl *testLog, require bool, unsigned ...uint64) site.CheckerStats {
	t.Helper()
	c := site.NewChecker(set, tl.Origin(), require)
	var fs []site.Finding
	for _, e := range allEntries(t, tl) {
		if record.KindOf(e.Data) == record.EntryAttestation {
			fs = append(fs, c.AddAttestation(e.Index, e.Data)...)
			continue
		}
		ev, err := record.DecodeEntry(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, c.AddEvent(e.Index, &ev)...)
	}
	fs = append(fs, c.Finish()...)
	for _, f := range fs {
		if len(unsigned) > 0 && f.Kind == site.KindUnsigned && f.Index == unsigned[0] {
			unsigned = unsigned[1:]
			continue
		}
		t.Errorf("site finding at %d: %v", f.Index, &f)
	}
	if len(unsigned) > 0 {
		t.Errorf("no unsigned finding at %v", unsigned)
	}
	return c.Stats()
}

func (tl *testLog) verifiers() note.Verifiers { return note.VerifierList(tl.verifier) }

// TestSubmitSignedContiguous: concurrent signed and unsigned requests are
// batched together, and every signed request's events and attestation
// still land as one contiguous run, in order.
func TestSubmitSignedContiguous(t *testing.T) {
	w := sitetest.NewWorld(t)
	tl := newTestLog(t, Config{Sites: w.Set, MaxWait: 20 * time.Millisecond, MaxBatch: 4096})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for r := 0; r < 40; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs := logtest.Events(1000*r, 3+r%5)
			var gs []Group
			if r%2 == 0 {
				k := w.Zrh
				if r%4 == 0 {
					evs = mowEvents(1000*r, 3+r%5)
					k = w.Mow
				}
				gs = []Group{{Events: evs, Attestation: sitetest.Sign(t, k, tl.Origin(), signNow, evs)}}
			} else {
				for i := range evs {
					evs[i].Location = "de-fra-1" // no site's
				}
				gs = []Group{{Events: evs}}
			}
			_, err := tl.SubmitGroups(ctx, gs)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := checkSites(t, w.Set, tl, false)
	if st.Attestations != 20 || st.Invalid != 0 {
		t.Fatalf("checker stats %+v, want 20 valid attestations", st)
	}
}

// TestSubmitSignedRejected: the tamper drills at append. Each is refused
// with ErrRejected naming the event and the reason, and nothing of the
// request is written.
func TestSubmitSignedRejected(t *testing.T) {
	w := sitetest.NewWorld(t)
	tl := newTestLog(t, Config{Sites: w.Set})
	ctx := context.Background()
	origin := tl.Origin()
	evs := logtest.Events(0, 4)
	good := sitetest.Sign(t, w.Zrh, origin, signNow, evs)
	edited := append([]record.Event(nil), evs...)
	edited[2].Note = "edited after signing"
	other := logtest.Events(100, 4)
	mow := mowEvents(200, 3)
	cases := []struct {
		name  string
		gs    []Group
		kind  site.Kind
		event int
	}{
		{"event edited after signing", []Group{{Events: edited, Attestation: good}}, site.KindBadSignature, -1},
		{"event moved out of its attestation", []Group{{Events: evs[:3], Attestation: good}, {Events: evs[3:]}}, site.KindBadSignature, -1},
		{"events reordered", []Group{{Events: []record.Event{evs[1], evs[0], evs[2], evs[3]}, Attestation: good}}, site.KindBadSignature, -1},
		{"attestation replayed with another batch", []Group{{Events: other, Attestation: good}}, site.KindBadSignature, -1},
		{"key outside its window", []Group{{Events: evs, Attestation: sitetest.Sign(t, w.ZrhOld, origin, signNow, evs)}}, site.KindKeyNotValid, -1},
		{"attestation too old", []Group{{Events: evs, Attestation: sitetest.Sign(t, w.Zrh, origin, signNow.Add(-time.Hour), evs)}}, site.KindKeyNotValid, -1},
		{"site signing for another site's location", []Group{{Events: evs, Attestation: sitetest.Sign(t, w.Mow, origin, signNow, evs)}}, site.KindNotAllowed, 0},
		{"mixed batch, second event not the site's", []Group{{Events: []record.Event{mow[0], evs[0]}, Attestation: sitetest.Sign(t, w.Mow, origin, signNow, []record.Event{mow[0], evs[0]})}}, site.KindNotAllowed, 1},
		{"attestation for another log", []Group{{Events: evs, Attestation: sitetest.Sign(t, w.Zrh, "other.example/log", signNow, evs)}}, site.KindBadSignature, -1},
		{"unknown site key", []Group{{Events: evs, Attestation: sitetest.Sign(t, sitetest.NewKey(t, "zrh", 9), origin, signNow, evs)}}, site.KindBadSignature, -1},
		{"not an attestation", []Group{{Events: evs, Attestation: []byte("custody-attestation/v1\nnonsense\n")}}, site.KindBadSignature, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tl.Checkpoint().Size
			_, err := tl.SubmitGroups(ctx, tc.gs)
			var re *RejectedError
			var f *site.Finding
			if !errors.Is(err, ErrRejected) || !errors.As(err, &re) || !errors.As(err, &f) {
				t.Fatalf("got %v, want a rejection with a site finding", err)
			}
			if f.Kind != tc.kind || re.Event != tc.event {
				t.Fatalf("got %v (event %d, kind %s), want kind %s for event %d", err, re.Event, f.Kind, tc.kind, tc.event)
			}
			if got := tl.Checkpoint().Size; got != before {
				t.Fatalf("log grew from %d to %d entries", before, got)
			}
		})
	}
	if tl.Checkpoint().Size != 0 {
		t.Fatalf("log has %d entries after rejected requests only", tl.Checkpoint().Size)
	}
}

// TestSubmitSignedRequired: in required mode unsigned events are refused,
// signed ones accepted; a log without sites refuses signed batches.
func TestSubmitSignedRequired(t *testing.T) {
	w := sitetest.NewWorld(t)
	ctx := context.Background()
	tl := newTestLog(t, Config{Sites: w.Set, RequireSignatures: true})
	if tl.SiteMode() != SitesRequired {
		t.Errorf("site mode %q, want required", tl.SiteMode())
	}
	evs := logtest.Events(0, 3)
	_, err := tl.SubmitGroups(ctx, []Group{{Events: evs[:1]}, {Events: evs[1:], Attestation: sitetest.Sign(t, w.Zrh, tl.Origin(), signNow, evs[1:])}})
	var re *RejectedError
	if !errors.As(err, &re) || re.Event != 0 || re.Sample != evs[0].Sample {
		t.Fatalf("unsigned event in required mode: got %v, want event 0 rejected", err)
	}
	if _, err := tl.Add(ctx, evs[0]); !errors.Is(err, ErrRejected) {
		t.Fatalf("Add in required mode: got %v, want ErrRejected", err)
	}
	if tl.Checkpoint().Size != 0 {
		t.Fatalf("log has %d entries", tl.Checkpoint().Size)
	}
	if _, err := tl.SubmitGroups(ctx, []Group{{Events: evs, Attestation: sitetest.Sign(t, w.Zrh, tl.Origin(), signNow, evs)}}); err != nil {
		t.Fatal(err)
	}
	checkSites(t, w.Set, tl, true)

	plain := newTestLog(t, Config{})
	if plain.SiteMode() != SitesOff {
		t.Errorf("site mode %q, want off", plain.SiteMode())
	}
	if _, err := plain.SubmitGroups(ctx, []Group{{Events: evs, Attestation: sitetest.Sign(t, w.Zrh, plain.Origin(), signNow, evs)}}); !errors.Is(err, ErrRejected) {
		t.Fatalf("signed batch to a log without sites: got %v, want ErrRejected", err)
	}
}

// TestSubmitSignedRetry: sending a signed request again returns the
// original indexes and writes nothing; a signed batch including an event
// already logged without its attestation is refused.
func TestSubmitSignedRetry(t *testing.T) {
	w := sitetest.NewWorld(t)
	tl := newTestLog(t, Config{Sites: w.Set})
	ctx := context.Background()
	evs := logtest.Events(0, 3)
	gs := []Group{{Events: evs, Attestation: sitetest.Sign(t, w.Zrh, tl.Origin(), signNow, evs)}}
	first, err := tl.SubmitGroups(ctx, gs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := tl.SubmitGroups(ctx, gs)
	if err != nil {
		t.Fatal(err)
	}
	if tl.Checkpoint().Size != 4 {
		t.Fatalf("size %d after a retry, want 4", tl.Checkpoint().Size)
	}
	for i := 0; i < 3; i++ {
		a, _ := first.Receipt(ctx, i)
		b, err := again.Receipt(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if a.Index != b.Index || b.Attestation == nil || b.Attestation.Index != 3 {
			t.Fatalf("retried receipt %d: index %d attestation %+v, want index %d attestation 3", i, b.Index, b.Attestation, a.Index)
		}
		sitetest.CheckAttestation(t, w.Zrh.VKey, b, evs[i])
	}

	if _, err := tl.Add(ctx, logtest.Event(50)); err != nil {
		t.Fatal(err)
	}
	mixed := []record.Event{logtest.Event(51), logtest.Event(50)}
	_, err = tl.SubmitGroups(ctx, []Group{{Events: mixed, Attestation: sitetest.Sign(t, w.Zrh, tl.Origin(), signNow, mixed)}})
	var re *RejectedError
	if !errors.As(err, &re) || re.Event != 1 {
		t.Fatalf("signed batch with an event logged unsigned: got %v, want event 1 rejected", err)
	}
	if tl.Checkpoint().Size != 5 {
		t.Fatalf("size %d, want 5: nothing of the refused request may be written", tl.Checkpoint().Size)
	}
	dup := []record.Event{logtest.Event(60), logtest.Event(60)}
	if _, err := tl.SubmitGroups(ctx, []Group{{Events: dup, Attestation: sitetest.Sign(t, w.Zrh, tl.Origin(), signNow, dup)}}); !errors.Is(err, ErrRejected) {
		t.Fatalf("signed batch with an event twice: got %v, want ErrRejected", err)
	}
}

// TestAttPath: the receipts' attestation paths are record.AttestationPath.
func TestAttPath(t *testing.T) {
	for n := 1; n <= 37; n++ {
		ids := make([]store.Hash, n)
		raw := make([][32]byte, n)
		for i := range ids {
			copy(ids[i][:], fmt.Sprintf("leaf %d", i))
			raw[i] = ids[i]
		}
		tree := attTree(ids)
		if tree.Root() != record.AttestationRoot(raw) {
			t.Fatalf("n=%d: root differs from record.AttestationRoot", n)
		}
		for m := 0; m < n; m++ {
			want := record.AttestationPath(raw, m)
			got := attPath(tree, m)
			if len(got) != len(want) {
				t.Fatalf("n=%d m=%d: path of %d hashes, want %d", n, m, len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i][:]) {
					t.Fatalf("n=%d m=%d: hash %d differs", n, m, i)
				}
			}
		}
	}
}
