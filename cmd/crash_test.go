package cmd

import (
	"context"
	"fmt"
	"github.com/custodylog/custody/client"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestCrashKeepsEveryReceipt SIGKILLs the server while clients append, then
// restarts it and checks that every receipt handed out before the kill is in
// the tree at its index with its bytes, that no index was given to two
// events, and that every checkpoint seen before is consistent with the one
// after, that the events received just before a kill (the tail the on-disk
// index re-indexes after the crash) are still de-duplicated exactly: sent
// again, each gets its original index. fsck then finds the stored log
// whole. 20 kills by default (CUSTODY_CRASH_KILLS changes it); the kill
// moments are seeded, so a failure can be replayed.
//
// CUSTODY_CRASH_DIR=DIR runs the drill on an existing log directory (made
// by custody init and grown by custody prefill, say to 10 M entries) instead
// of a fresh one; fsck then runs once, at the end. The directory is
// appended to.
func TestCrashKeepsEveryReceipt(t *testing.T) {
	kills := 20
	if s := os.Getenv("CUSTODY_CRASH_KILLS"); s != "" {
		fmt.Sscan(s, &kills)
	}
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	bigDir := os.Getenv("CUSTODY_CRASH_DIR")
	var v note.Verifier
	if bigDir != "" {
		logDir = bigDir
		v = readLogVerifier(t, logDir)
	} else {
		v = initLog(t, logDir, "example.com/crash")
	}
	tokens := writeTokens(t, dir)
	rng := rand.New(rand.NewPCG(2026, 11))

	book := newReceiptBook(v)
	checked, resent := 0, 0
	for k := 0; k < kills; k++ {
		srv := startServer(t, "--dir", logDir, "--token-file", tokens, "--max-wait", "1ms")
		// After a restart: every earlier receipt and checkpoint still holds,
		// and fsck finds the stored log whole.
		checked += checkAfterRestart(t, srv.url, v, book.receipts, book.checkpoints)
		if bigDir == "" {
			if code, out, stderr := run(t, "", "fsck", "--dir", logDir); code != 0 {
				t.Fatalf("fsck after kill %d: exit %d\n%s%s", k, code, out, stderr)
			}
		}
		cl, err := client.NewUnverified(srv.url, testToken, client.WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		resent += book.resendTail(t, cl)
		ctx, cancel := context.WithCancel(context.Background())
		killAfter := 100 + rng.IntN(700) // receipts before the kill
		got := make(chan int, 1024)
		var wg sync.WaitGroup
		for c := 0; c < 6; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				book.load(t, ctx, func() *client.Client { return cl }, "crash", got)
			}()
		}
		for n := 0; n < killAfter; {
			n += <-got
		}
		srv.kill(t)
		cancel()
		wg.Wait()
	}
	receipts, checkpoints := book.receipts, book.checkpoints
	srv := startServer(t, "--dir", logDir, "--token-file", tokens)
	checked += checkAfterRestart(t, srv.url, v, receipts, checkpoints)
	cl, err := client.NewUnverified(srv.url, testToken, client.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	resent += book.resendTail(t, cl)
	if code, out, stderr := run(t, "", "fsck", "--dir", logDir); code != 0 {
		t.Fatalf("fsck after the last restart: exit %d\n%s%s", code, out, stderr)
	}
	t.Logf("%d kills; %d receipts and %d checkpoints checked after restarts, %d events re-sent after restarts got their old index; 0 lost",
		kills, len(receipts), len(checkpoints), resent)
	if len(receipts) == 0 || checked == 0 || resent == 0 {
		t.Fatal("no receipt was checked or re-sent")
	}
}

// resendTail sends again, after a restart, the last events that got a
// receipt before the kill (the ones most likely past the index's durable
// watermark), and fails the test unless each gets its original index: a
// duplicate must never get a second one. It returns how many it sent.
func (b *receiptBook) resendTail(t *testing.T, cl *client.Client) int {
	t.Helper()
	b.mu.Lock()
	indexes := make([]uint64, 0, len(b.receipts))
	for i := range b.receipts {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	indexes = indexes[max(0, len(indexes)-200):]
	lines := make([][]byte, len(indexes))
	for j, i := range indexes {
		lines[j] = b.sent[i]
	}
	b.mu.Unlock()
	if len(lines) == 0 {
		return 0
	}
	rs, err := cl.AppendJSON(context.Background(), lines)
	if err != nil {
		t.Fatalf("re-sending %d events received before the kill: %v", len(lines), err)
	}
	for j, r := range rs {
		if r.Index != indexes[j] {
			t.Fatalf("event first logged at index %d, sent again after the restart, got index %d: de-duplication lost it", indexes[j], r.Index)
		}
	}
	return len(rs)
}

// readLogVerifier returns the verifier of the log in logDir (its log.pub).
func readLogVerifier(t *testing.T, logDir string) note.Verifier {
	t.Helper()
	pub, err := os.ReadFile(filepath.Join(logDir, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// receiptBook collects, from clients appending concurrently, every receipt
// handed out (index → entry bytes) and every checkpoint a receipt carried
// (size → root), and fails the test on an index handed out for two events
// or two roots for one size (a fork).
type receiptBook struct {
	v           note.Verifier
	mu          sync.Mutex
	seq         int
	receipts    map[uint64][]byte
	sent        map[uint64][]byte // index → the event line as submitted
	checkpoints map[uint64][32]byte
}

func newReceiptBook(v note.Verifier) *receiptBook {
	return &receiptBook{v: v, receipts: map[uint64][]byte{}, sent: map[uint64][]byte{}, checkpoints: map[uint64][32]byte{}}
}

// load appends batches of 20 new events until ctx is done, each through the
// client pick returns, records the receipts, and sends the number received
// to got (if it has room). Failed requests are skipped: the server may be
// being killed.
func (b *receiptBook) load(t *testing.T, ctx context.Context, pick func() *client.Client, prefix string, got chan<- int) {
	for ctx.Err() == nil {
		b.mu.Lock()
		base := b.seq
		b.seq += 20
		b.mu.Unlock()
		lines := make([][]byte, 20)
		for i := range lines {
			lines[i] = []byte(eventLine(fmt.Sprintf("%s-%d", prefix, base+i), "collected", base+i))
		}
		rs, err := pick().AppendJSON(ctx, lines)
		if err != nil {
			continue
		}
		b.mu.Lock()
		for j, r := range rs {
			if old, ok := b.receipts[r.Index]; ok && string(old) != string(r.Entry) {
				t.Errorf("index %d handed out twice: %s and %s", r.Index, old, r.Entry)
			}
			b.receipts[r.Index] = r.Entry
			b.sent[r.Index] = lines[j]
			c, _, err := verify.OpenCheckpoint([]byte(r.Checkpoint), b.v.Name(), note.VerifierList(b.v))
			if err != nil {
				t.Errorf("receipt checkpoint: %v", err)
			} else if old, ok := b.checkpoints[c.Size]; ok && old != c.Root {
				t.Errorf("two roots for size %d: a fork", c.Size)
			} else {
				b.checkpoints[c.Size] = c.Root
			}
		}
		b.mu.Unlock()
		select {
		case got <- len(rs):
		default:
		}
	}
}

// checkAfterRestart checks every receipt and checkpoint seen so far against
// the restarted server. It returns the number of receipts checked.
func checkAfterRestart(t *testing.T, url string, v note.Verifier, receipts map[uint64][]byte, cps map[uint64][32]byte) int {
	t.Helper()
	ctx := context.Background()
	cl, _ := newAPIClient(url)
	b, err := cl.Get(ctx, "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	now, _, err := verify.OpenCheckpoint(b, v.Name(), note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint after restart: %v", err)
	}
	for i, want := range receipts {
		if i >= now.Size {
			t.Fatalf("receipt %d handed out, but the restarted log has size %d", i, now.Size)
		}
		var e struct{ Entry []byte }
		if err := cl.GetJSON(ctx, "/v1/entries/"+itoa(i), &e); err != nil {
			t.Fatalf("entry %d after restart: %v", i, err)
		}
		if string(e.Entry) != string(want) {
			t.Fatalf("entry %d after restart is %s, the receipt said %s", i, e.Entry, want)
		}
	}
	for size, root := range cps {
		var p struct{ Proof [][]byte }
		if err := cl.GetJSON(ctx, fmt.Sprintf("/v1/proof/consistency?from=%d&to=%d", size, now.Size), &p); err != nil {
			t.Fatal(err)
		}
		proof := make(tlog.TreeProof, len(p.Proof))
		for i := range p.Proof {
			proof[i] = tlog.Hash(p.Proof[i])
		}
		if err := tlog.CheckTree(proof, int64(now.Size), tlog.Hash(now.Root), int64(size), tlog.Hash(root)); err != nil {
			t.Fatalf("checkpoint %d seen before the kill is not consistent with %d after: %v", size, now.Size, err)
		}
	}
	return len(receipts)
}
