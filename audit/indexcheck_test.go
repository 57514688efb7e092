package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// refMapRoot is the sample index's map root over entries, written from
// docs/sample-index.md with crypto/sha256 only (no sampleindex code):
// key = SHA-256(sample); list leaf = SHA-256(0x00 || index BE8 || leaf
// hash); list root = RFC 6962 root of the list leaves; map leaf =
// SHA-256(0x10 || key || n BE8 || list root); a subtree holding one key is
// its leaf, two or more SHA-256(0x11 || left || right), none 32 zero bytes.
// skip, if set, leaves out the entries it returns true for.
func refMapRoot(entries [][]byte, skip func(i int) bool) [32]byte {
	lists := map[[32]byte][][32]byte{}
	for i, e := range entries {
		if skip != nil && skip(i) {
			continue
		}
		ev, err := record.DecodeEntry(e)
		if err != nil {
			panic(err)
		}
		k := sha256.Sum256([]byte(ev.Sample))
		var b []byte
		b = append(b, 0)
		b = binary.BigEndian.AppendUint64(b, uint64(i))
		lh := refLeafHash(e)
		b = append(b, lh[:]...)
		lists[k] = append(lists[k], sha256.Sum256(b))
	}
	keys := make([][32]byte, 0, len(lists))
	for k := range lists {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i][:], keys[j][:]) < 0 })
	bitOf := func(k [32]byte, d int) int { return int(k[d/8]>>(7-d%8)) & 1 }
	var rec func(ks [][32]byte, d int) [32]byte
	rec = func(ks [][32]byte, d int) [32]byte {
		switch len(ks) {
		case 0:
			return [32]byte{}
		case 1:
			l := lists[ks[0]]
			var b []byte
			b = append(b, 0x10)
			b = append(b, ks[0][:]...)
			b = binary.BigEndian.AppendUint64(b, uint64(len(l)))
			r := refTreeHash(l)
			b = append(b, r[:]...)
			return sha256.Sum256(b)
		}
		split := sort.Search(len(ks), func(i int) bool { return bitOf(ks[i], d) == 1 })
		l, r := rec(ks[:split], d+1), rec(ks[split:], d+1)
		return sha256.Sum256(append(append([]byte{0x11}, l[:]...), r[:]...))
	}
	return rec(keys, 0)
}

// benchEntries returns the n entries of the benchmark log.
func benchEntries(n int) [][]byte {
	var es [][]byte
	auditBenchEvents(n, func(_ int, ev record.Event) { es = append(es, ev.Canonical()) })
	return es
}

// signIndexed writes the n-entry benchmark log into dir with a checkpoint
// whose extension lines are ext (re-signed with the log's key).
func signIndexed(t *testing.T, dir string, n int, signer note.Signer, ext ...string) {
	t.Helper()
	root, _, err := writeAuditBenchLog(dir, n, signer)
	if err != nil {
		t.Fatal(err)
	}
	cp := verify.Checkpoint{Origin: auditBenchOrigin, Size: uint64(n), Root: root, Extensions: ext}
	signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "checkpoint"), signed, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRefMapRoot holds the test's reference to sampleindex.Map.
func TestRefMapRoot(t *testing.T) {
	for _, n := range []int{0, 1, 2, 17, 700} {
		es := benchEntries(n)
		m := sampleindex.Open(sampleindex.NewMemTiles(), 0, nil)
		var cs []sampleindex.Change
		for i, e := range es {
			ev, _ := record.DecodeEntry(e)
			cs = append(cs, sampleindex.Change{Key: sampleindex.KeyOf(ev.Sample), Index: uint64(i), LeafHash: sampleindex.EntryLeafHash(e)})
		}
		got, err := m.Update(context.Background(), cs)
		if err != nil {
			t.Fatal(err)
		}
		if want := refMapRoot(es, nil); got != want {
			t.Fatalf("n=%d: sampleindex root %x, reference %x", n, got, want)
		}
	}
}

// TestAuditSampleIndex: the audit recomputes the map and accepts the
// honest index line, catches a committed root that omits one event, adds
// one, or reorders two (the log's key signs each), and a malformed line,
// and accepts a checkpoint without a line, saying so.
func TestAuditSampleIndex(t *testing.T) {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey := auditBenchKey(t)
	ctx := context.Background()
	const n = 3*verify.TileWidth + 41
	es := benchEntries(n)
	honest := refMapRoot(es, nil)
	run := func(ext ...string) (*AuditReport, error) {
		dir := t.TempDir()
		signIndexed(t, dir, n, signer, ext...)
		c := verify.NewClient(verify.NewDirSource(dir), auditBenchOrigin, mustVerifiers(t, vkey), nil)
		rep, _, err := Audit(ctx, c, AuditOptions{Policy: pol})
		return rep, err
	}
	rep, err := run(sampleindex.FormatExtension(honest), "other-extension 1")
	if err != nil || rep.SampleIndex != SampleIndexVerified {
		t.Fatalf("honest index line: %v, %+v", err, rep)
	}
	var out bytes.Buffer
	WriteReport(&out, rep)
	if !bytes.Contains(out.Bytes(), []byte("\nsample index: the map recomputed from the entries matches")) {
		t.Errorf("report does not say the index was verified:\n%s", out.String())
	}
	rep, err = run()
	if err != nil || rep.SampleIndex != SampleIndexNotCommitted {
		t.Fatalf("no index line: %v, %+v", err, rep)
	}
	out.Reset()
	WriteReport(&out, rep)
	if !bytes.Contains(out.Bytes(), []byte("\nsample index: not checked (the checkpoint has no custody-sample-index line)\n")) {
		t.Errorf("report does not say the index was not checked:\n%s", out.String())
	}

	// Lying roots: one event omitted; one event added (entry 5 again, as
	// another index of its sample); two events of one sample swapped.
	omit := refMapRoot(es, func(i int) bool { return i == 500 })
	added := func() [32]byte {
		es2 := slices.Clone(es)
		es2 = append(es2, es[5])
		return refMapRoot(es2, nil)
	}()
	swapped := func() [32]byte {
		first := map[string]int{}
		for j, e := range es {
			ev, _ := record.DecodeEntry(e)
			if i, ok := first[ev.Sample]; ok {
				es2 := slices.Clone(es)
				es2[i], es2[j] = es2[j], es2[i]
				return refMapRoot(es2, nil)
			}
			first[ev.Sample] = j
		}
		panic("no sample with two events")
	}()
	for name, root := range map[string][32]byte{"omitted": omit, "added": added, "swapped": swapped} {
		if root == honest {
			t.Fatalf("%s: the lying root is the honest one", name)
		}
		_, err := run(sampleindex.FormatExtension(root))
		ve, ok := verify.IsVerificationError(err)
		if !ok || ve.Evidence.Kind != EvidenceSampleIndexMismatch || ve.Evidence.Expected != b64(root) || ve.Evidence.Computed != b64(honest) || ve.Evidence.NewCheckpoint == "" {
			t.Errorf("%s: audit error %v, want %s evidence", name, err, EvidenceSampleIndexMismatch)
		}
	}
	for _, bad := range [][]string{
		{sampleindex.ExtensionKeyword + " notbase64"},
		{sampleindex.FormatExtension(honest), sampleindex.FormatExtension(honest)},
	} {
		_, err := run(bad...)
		if ve, ok := verify.IsVerificationError(err); !ok || ve.Evidence.Kind != EvidenceSampleIndexMismatch {
			t.Errorf("index lines %q: audit error %v, want %s evidence", bad, err, EvidenceSampleIndexMismatch)
		}
	}
}

// TestAuditSampleIndexResume: an audit that continues from a state keeps
// its recomputed index in the state directory and continues it; with the
// index file missing or stale it rebuilds it from the entries; either way
// it reaches the honest root and catches a lying one.
func TestAuditSampleIndexResume(t *testing.T) {
	pol, err := LoadPolicy(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey := auditBenchKey(t)
	ctx := context.Background()
	const n1, n2, n3 = 2*verify.TileWidth + 7, 6*verify.TileWidth + 100, 7 * verify.TileWidth
	state := t.TempDir()
	logDir := t.TempDir()
	step := func(n int, root [32]byte) (*AuditReport, error) {
		signIndexed(t, logDir, n, signer, sampleindex.FormatExtension(root))
		c := verify.NewClient(verify.NewDirSource(logDir), auditBenchOrigin, mustVerifiers(t, vkey), nil)
		return (&Auditor{Client: c, Policy: pol, StateDir: state}).Run(ctx)
	}
	es := benchEntries(n3)
	if rep, err := step(n1, refMapRoot(es[:n1], nil)); err != nil || rep.SampleIndex != SampleIndexVerified {
		t.Fatalf("first audit: %v", err)
	}
	fi, err := os.Stat(filepath.Join(state, SampleIndexFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("index file: %v %v", fi, err)
	}
	if rep, err := step(n2, refMapRoot(es[:n2], nil)); err != nil || rep.From != n1 || rep.SampleIndex != SampleIndexVerified {
		t.Fatalf("continued audit: %v %+v", err, rep)
	}
	// A lying root at n3 is caught by the continued index, and the
	// state is not advanced.
	if _, err := step(n3, refMapRoot(es[:n3], func(i int) bool { return i == n2+3 })); err == nil {
		t.Fatal("continued audit accepted a root that omits an event")
	}
	// The index file is now ahead of the state (n3 vs n2): stale, rebuilt.
	if rep, err := step(n3, refMapRoot(es[:n3], nil)); err != nil || rep.From != n2 || rep.SampleIndex != SampleIndexVerified {
		t.Fatalf("audit with a stale index file: %v %+v", err, rep)
	}
	os.Remove(filepath.Join(state, SampleIndexFile))
	if rep, err := step(n3, refMapRoot(es[:n3], nil)); err != nil || rep.SampleIndex != SampleIndexVerified {
		t.Fatalf("audit with the index file removed: %v %+v", err, rep)
	}
}
