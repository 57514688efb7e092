package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/internal/sitetest"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/site"
	"github.com/custodylog/custody/verify"
)

// sitePolicy is testdata/policy.yaml with the sites of sitetest.World.
func sitePolicy(t testing.TB, w *sitetest.World) *Policy {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(append(b, w.PolicySites()...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// siteLog builds logs of events and attestations for the site tests.
type siteLog struct {
	t       *testing.T
	w       *sitetest.World
	entries [][]byte
	next    int
}

// logged is the logged time of every event of a siteLog.
var siteLogged = logtest.Time.Add(time.Minute)

// events returns n new events at loc, logged at siteLogged.
func (l *siteLog) events(n int, loc string) []record.Event {
	evs := logtest.Events(l.next, n)
	l.next += n
	for i := range evs {
		evs[i].Location, evs[i].Logged = loc, siteLogged
		if loc == "ru-mow-1" {
			evs[i].Region = "ROW"
		}
	}
	return evs
}

func (l *siteLog) add(evs ...record.Event) *siteLog {
	for _, ev := range evs {
		l.entries = append(l.entries, ev.Canonical())
	}
	return l
}

func (l *siteLog) attest(k sitetest.Key, at time.Time, evs ...record.Event) *siteLog {
	l.entries = append(l.entries, sitetest.Sign(l.t, k, auditBenchOrigin, at, evs))
	return l
}

func (l *siteLog) audit(p *Policy) *AuditReport { return l.auditWith(p, false) }

func (l *siteLog) auditWith(p *Policy, require bool) *AuditReport {
	l.t.Helper()
	signer, vkey := auditBenchKey(l.t)
	dir := l.t.TempDir()
	if _, _, err := writeTilesLog(dir, auditBenchOrigin, signer, func(emit func([]byte)) {
		for _, e := range l.entries {
			emit(e)
		}
	}); err != nil {
		l.t.Fatal(err)
	}
	c := verify.NewClient(verify.NewDirSource(dir), auditBenchOrigin, mustVerifiers(l.t, vkey), nil)
	rep, _, err := Audit(context.Background(), c, AuditOptions{Policy: p, RequireSignatures: require})
	if err != nil {
		l.t.Fatal(err)
	}
	return rep
}

type siteWant struct {
	index uint64
	kind  Kind
}

// TestAuditSites: the tamper drills, planted in a log: each is caught with
// the right finding at the right index, the attestations that do not hold
// are kept as evidence, and a clean signed log has no finding.
func TestAuditSites(t *testing.T) {
	w := sitetest.NewWorld(t)
	pol := sitePolicy(t, w)
	now := siteLogged
	cases := []struct {
		name     string
		build    func(l *siteLog)
		want     []siteWant
		evidence []uint64
	}{
		{"clean", func(l *siteLog) {
			a, b := l.events(3, "ch-zrh-1"), l.events(2, "ru-mow-1")
			l.add(a...).attest(w.Zrh, now, a...).add(b...).attest(w.Mow, now, b...)
			l.add(l.events(1, "de-fra-1")...) // no site speaks for it
		}, nil, nil},
		{"event edited after signing", func(l *siteLog) {
			a := l.events(3, "ch-zrh-1")
			att := sitetest.Sign(t, w.Zrh, auditBenchOrigin, now, a)
			a[1].Note = "edited"
			l.add(a...)
			l.entries = append(l.entries, att)
		}, []siteWant{{3, KindBadSiteSignature}}, []uint64{3}},
		{"event moved out of its attestation", func(l *siteLog) {
			a := l.events(3, "ch-zrh-1")
			l.add(a[0], a[1]).attest(w.Zrh, now, a...).add(a[2])
		}, []siteWant{{0, KindUnsigned}, {1, KindUnsigned}, {2, KindBadSiteSignature}, {3, KindUnsigned}}, []uint64{2}},
		{"attestation replayed with another batch", func(l *siteLog) {
			a, b := l.events(2, "ch-zrh-1"), l.events(2, "ch-zrh-1")
			att := sitetest.Sign(t, w.Zrh, auditBenchOrigin, now, a)
			l.add(a...)
			l.entries = append(l.entries, att)
			l.add(b...)
			l.entries = append(l.entries, att)
		}, []siteWant{{5, KindBadSiteSignature}}, []uint64{5}},
		{"key outside its window", func(l *siteLog) {
			a := l.events(2, "ch-zrh-1")
			l.add(a...).attest(w.ZrhOld, now, a...)
		}, []siteWant{{2, KindSiteKeyNotValid}}, []uint64{2}},
		{"site signing for another site's location", func(l *siteLog) {
			a := l.events(2, "ch-zrh-1")
			l.add(a...).attest(w.Mow, now, a...)
		}, []siteWant{{0, KindSiteNotAllowed}, {1, KindSiteNotAllowed}}, nil},
		{"unsigned at a site's location", func(l *siteLog) {
			l.add(l.events(1, "ch-zrh-1")...).add(l.events(1, "de-fra-1")...)
		}, []siteWant{{0, KindUnsigned}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &siteLog{t: t, w: w}
			tc.build(l)
			rep := l.audit(pol)
			var got []siteWant
			for _, f := range rep.Findings {
				got = append(got, siteWant{f.Index, f.Kind})
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("findings %v, want %v", rep.Findings, tc.want)
			}
			var ev []uint64
			for _, e := range rep.SiteEvidence {
				ev = append(ev, e.Index)
				if a, err := record.DecodeAttestation(e.Entry); err != nil && e.Kind != KindBadSiteSignature {
					t.Errorf("evidence %d: %v", e.Index, err)
				} else if err == nil && a.Origin != auditBenchOrigin {
					t.Errorf("evidence %d: origin %q", e.Index, a.Origin)
				}
				if e.Checkpoint == "" || e.Origin != auditBenchOrigin {
					t.Errorf("evidence %d without the checkpoint", e.Index)
				}
			}
			if !slices.Equal(ev, tc.evidence) {
				t.Fatalf("evidence at %v, want %v", ev, tc.evidence)
			}
			if rep.Sites == nil || rep.Sites.Events != uint64(l.next) {
				t.Fatalf("site stats %+v, want %d events", rep.Sites, l.next)
			}
			paths, err := WriteSiteEvidence(t.TempDir(), rep.SiteEvidence)
			if err != nil || len(paths) != len(tc.evidence) {
				t.Fatalf("WriteSiteEvidence: %v %v", paths, err)
			}
			for _, p := range paths {
				var se SiteEvidence
				if b, err := os.ReadFile(p); err != nil || json.Unmarshal(b, &se) != nil || len(se.Entry) == 0 {
					t.Fatalf("evidence file %s: %v", p, err)
				}
			}
		})
	}
	// Without sites in the policy attestations are skipped and nothing
	// about signatures is reported.
	l := &siteLog{t: t, w: w}
	a := l.events(2, "ch-zrh-1")
	l.add(a...).attest(w.Mow, now, a...)
	plain, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if rep := l.audit(plain); len(rep.Findings) != 0 || rep.Sites != nil || rep.Size != 3 {
		t.Fatalf("policy without sites: %+v", rep)
	}
	// With RequireSignatures every uncovered event is unsigned, at
	// locations no site speaks for too.
	l.add(l.events(1, "de-fra-1")...)
	rep := l.auditWith(pol, true)
	if len(rep.Findings) != 3 || rep.Findings[2].Kind != KindUnsigned || rep.Findings[2].Index != 3 {
		t.Fatalf("required: %v, want entries 0 and 1 site-not-allowed, 3 unsigned", rep.Findings)
	}
	if rep := l.audit(pol); len(rep.Findings) != 2 || rep.Findings[1].Kind != KindSiteNotAllowed {
		t.Fatalf("not required: %v, want only the mow signatures for zrh", rep.Findings)
	}
}

// TestCheckReceiptSites: a receipt's event is checked against the
// policy's sites through its attestation and path.
func TestCheckReceiptSites(t *testing.T) {
	w := sitetest.NewWorld(t)
	l := &siteLog{t: t, w: w}
	evs := l.events(3, "ch-zrh-1")
	ids := make([][32]byte, len(evs))
	for i := range evs {
		ids[i] = evs[i].Identity()
	}
	receipt := func(att []byte, m int) verify.Receipt {
		r := verify.Receipt{Index: 10 + uint64(m)}
		if att != nil {
			r.Attestation = &verify.ReceiptAttestation{Index: 13, Entry: att}
			for _, h := range record.AttestationPath(ids, m) {
				r.Attestation.Path = append(r.Attestation.Path, append([]byte(nil), h[:]...))
			}
		}
		return r
	}
	good := sitetest.Sign(t, w.Zrh, auditBenchOrigin, siteLogged, evs)
	for m := range evs {
		if err := CheckReceiptSites(receipt(good, m), evs[m], auditBenchOrigin, w.Set); err != nil {
			t.Fatalf("event %d: %v", m, err)
		}
	}
	edited := evs[1]
	edited.Note = "edited"
	fra := l.events(1, "de-fra-1")[0]
	for _, tc := range []struct {
		name string
		r    verify.Receipt
		ev   record.Event
		kind string
	}{
		{"edited event", receipt(good, 1), edited, "bad-site-signature"},
		{"another event's place", receipt(good, 1), evs[2], "bad-site-signature"},
		{"old key", receipt(sitetest.Sign(t, w.ZrhOld, auditBenchOrigin, siteLogged, evs), 0), evs[0], "site-key-not-valid"},
		{"another site", receipt(sitetest.Sign(t, w.Mow, auditBenchOrigin, siteLogged, evs), 0), evs[0], "site-not-allowed"},
		{"another log", receipt(sitetest.Sign(t, w.Zrh, "other.example/log", siteLogged, evs), 0), evs[0], "bad-site-signature"},
		{"unsigned at a site's location", receipt(nil, 0), evs[0], "unsigned"},
		{"unsigned elsewhere", receipt(nil, 0), fra, ""},
	} {
		err := CheckReceiptSites(tc.r, tc.ev, auditBenchOrigin, w.Set)
		var f *site.Finding
		if tc.kind == "" && err != nil || tc.kind != "" && (!errors.As(err, &f) || string(f.Kind) != tc.kind) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.kind)
		}
	}
}

// FuzzCheckReceiptFileSites: any receipts file gives, without panicking,
// at most one ReceiptSite per line and no more findings than receipts.
func FuzzCheckReceiptFileSites(f *testing.F) {
	w := sitetest.NewWorld(f)
	l := &siteLog{w: w}
	evs := l.events(2, "ch-zrh-1")
	att := sitetest.Sign(f, w.Zrh, auditBenchOrigin, siteLogged, evs)
	ids := [][32]byte{evs[0].Identity(), evs[1].Identity()}
	r := verify.Receipt{Index: 0, Entry: evs[0].Canonical(), Attestation: &verify.ReceiptAttestation{Index: 2, Entry: att}}
	for _, h := range record.AttestationPath(ids, 0) {
		r.Attestation.Path = append(r.Attestation.Path, append([]byte(nil), h[:]...))
	}
	line, _ := json.Marshal(r)
	f.Add(append(line, '\n'))
	f.Add([]byte(`{"index":1,"entry":"e30=","attestation":{"index":0,"entry":"","path":["AA=="]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sites, bad := CheckReceiptFileSites(data, auditBenchOrigin, w.Set)
		if bad > len(sites) || len(sites) > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d findings among %d receipts of %d lines", bad, len(sites), bytes.Count(data, []byte("\n"))+1)
		}
	})
}
