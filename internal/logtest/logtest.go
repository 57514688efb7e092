// Package logtest holds what the tests of the log and of its HTTP API
// share: a fixed workload of events, and a check of receipts made with
// golang.org/x/mod's note and tlog rather than custody's own verifier, so
// that a bug in the verifier cannot hide one in the log.
package logtest

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Time is the time of every Event.
var Time = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Event returns event i of the workload: sample s-<i>, collected at
// ch-zrh-1 (EU) at Time. Events of different i have different identities.
func Event(i int) record.Event {
	return record.Event{
		Sample:   fmt.Sprintf("s-%06d", i),
		Action:   record.Collected,
		Location: "ch-zrh-1",
		Region:   "EU",
		Time:     Time,
		Actor:    "test-sensor",
	}
}

// Events returns events from to from+n-1.
func Events(from, n int) []record.Event {
	evs := make([]record.Event, n)
	for i := range evs {
		evs[i] = Event(from + i)
	}
	return evs
}

// CheckReceipt verifies r with x/mod's note (the checkpoint's signature by
// the log key vkey) and tlog (leaf hash and inclusion proof), checks that
// its tlog_proof and event views agree with it, and returns the tree it is
// proved against. It fails t on any mismatch.
func CheckReceipt(t testing.TB, vkey string, r verify.Receipt) tlog.Tree {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(r.Checkpoint), note.VerifierList(v))
	if err != nil {
		t.Fatalf("receipt %d: checkpoint does not open with x/mod note: %v", r.Index, err)
	}
	c, err := verify.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		t.Fatal(err)
	}
	tree := tlog.Tree{N: int64(c.Size), Hash: tlog.Hash(c.Root)}
	proof := make(tlog.RecordProof, len(r.Proof))
	for i, p := range r.Proof {
		proof[i] = tlog.Hash(p)
	}
	if got := tlog.RecordHash(r.Entry); got != tlog.Hash(r.LeafHash) {
		t.Fatalf("receipt %d: leaf hash %x, x/mod RecordHash of entry %x", r.Index, r.LeafHash, got)
	}
	if err := tlog.CheckRecord(proof, tree.N, tree.Hash, int64(r.Index), tlog.RecordHash(r.Entry)); err != nil {
		t.Fatalf("receipt %d: x/mod CheckRecord in tree %d: %v", r.Index, tree.N, err)
	}
	tp, err := verify.ParseTLogProof([]byte(r.TLogProof))
	if err != nil {
		t.Fatalf("receipt %d: tlog_proof: %v", r.Index, err)
	}
	if tp.Index != r.Index || string(tp.Checkpoint) != r.Checkpoint || len(tp.Proof) != len(r.Proof) {
		t.Fatalf("receipt %d: tlog_proof disagrees with the receipt", r.Index)
	}
	if string(r.Event) != string(r.Entry) {
		t.Fatalf("receipt %d: event %s != entry %s", r.Index, r.Event, r.Entry)
	}
	return tree
}

// Origin is the origin of the logs Keys makes.
const Origin = "example.com/custody-test"

// Keys returns a new log key pair for Origin: the signer, the verifier and
// the verifier key string.
func Keys(t testing.TB) (note.Signer, note.Verifier, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, Origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v, vkey
}

// CheckCosigned checks with x/mod's note that signed carries the log's
// signature (logKey) and a valid cosignature from each of witnesses, and
// no other signature line.
func CheckCosigned(t testing.TB, signed []byte, logKey note.Verifier, witnesses ...note.Verifier) {
	t.Helper()
	n, err := note.Open(signed, note.VerifierList(append([]note.Verifier{logKey}, witnesses...)...))
	if err != nil {
		t.Fatalf("cosigned checkpoint does not open: %v\n%s", err, signed)
	}
	if len(n.Sigs) != 1+len(witnesses) || len(n.UnverifiedSigs) != 0 {
		t.Fatalf("checkpoint has %d verified and %d unverified signatures, want %d and 0:\n%s", len(n.Sigs), len(n.UnverifiedSigs), 1+len(witnesses), signed)
	}
}

// SampleTrusted opens a signed checkpoint with x/mod's note (the log key
// vkey), reads its size and root with x/mod's tlog.ParseTree and its
// index line with sampleindex.ParseExtension: what a verifier of a sample
// proof trusts. The checkpoint must have exactly the three standard lines
// and the index line.
func SampleTrusted(t testing.TB, vkey string, signed []byte) sampleindex.Trusted {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		t.Fatalf("x/mod note.Open(checkpoint): %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) != 4 || lines[0] != v.Name() {
		t.Fatalf("checkpoint text %q: want origin, size, root and the index line", n.Text)
	}
	tree, err := tlog.ParseTree([]byte("go.sum database tree\n" + lines[1] + "\n" + lines[2] + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	mapRoot, err := sampleindex.ParseExtension(lines[3])
	if err != nil {
		t.Fatal(err)
	}
	return sampleindex.Trusted{Size: uint64(tree.N), LogRoot: sampleindex.Hash(tree.Hash), MapRoot: mapRoot}
}

// EntrySample is sampleindex.Request's EntrySample for custody's events.
func EntrySample(b []byte) (string, error) {
	ev, err := record.DecodeEntry(b)
	return ev.Sample, err
}
