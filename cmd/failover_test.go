package cmd

import (
	"context"
	"github.com/custodylog/custody/client"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/custodylog/custody/store/postgres/pgtest"
)

// leaseHeld reads custody_sequencer_lease_held from a server's /metrics.
func leaseHeld(t *testing.T, url string) bool {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), "\ncustody_sequencer_lease_held 1\n")
}

// TestFailoverPostgres is the failover drill: two servers on one
// PostgreSQL database, clients writing through both; SIGKILL the lease
// holder under load; the other takes over; every receipt handed out is in
// the tree at its index with its bytes, every checkpoint seen is consistent
// with the final one (no fork), fsck finds the log whole, and the killed
// server, restarted, follows the new sequencer.
func TestFailoverPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	v := initLog(t, logDir, "example.com/failover", "--store", dsn)
	tokens := writeTokens(t, dir)
	args := []string{"--dir", logDir, "--store", dsn, "--token-file", tokens, "--lease-ttl", "1500ms"}
	a := startServer(t, args...)
	b := startServer(t, args...)
	if !leaseHeld(t, a.url) || leaseHeld(t, b.url) {
		t.Fatalf("the first server should hold the lease: a %v, b %v", leaseHeld(t, a.url), leaseHeld(t, b.url))
	}

	clA, err := client.NewUnverified(a.url, testToken, client.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	clB, err := client.NewUnverified(b.url, testToken, client.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	var aDead atomic.Bool
	var turn atomic.Uint64
	pick := func() *client.Client { // both servers in turn, then only the survivor
		if !aDead.Load() && turn.Add(1)%2 == 0 {
			return clA
		}
		return clB
	}
	book := newReceiptBook(v)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan int, 1024)
	var wg sync.WaitGroup
	for c := 0; c < 6; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			book.load(t, ctx, pick, "failover", got)
		}()
	}
	for n := 0; n < 600; {
		n += <-got
	}
	a.kill(t) // SIGKILL: no lease release, batches in flight lost
	aDead.Store(true)
	killed := time.Now()
	deadline := time.After(30 * time.Second)
	for !leaseHeld(t, b.url) {
		select {
		case <-deadline:
			t.Fatalf("the survivor did not take the lease within 30s:\n%s", b.logs)
		case <-got:
		}
	}
	takeover := time.Since(killed)
	for n := 0; n < 600; {
		select {
		case k := <-got:
			n += k
		case <-deadline:
			t.Fatalf("the survivor did not accept writes after taking over:\n%s", b.logs)
		}
	}
	cancel()
	wg.Wait()
	t.Logf("lease taken over %s after the SIGKILL; %d receipts, %d checkpoints seen", takeover.Round(10*time.Millisecond), len(book.receipts), len(book.checkpoints))

	checkAfterRestart(t, b.url, v, book.receipts, book.checkpoints)
	if code, out, stderr := run(t, "", "fsck", "--dir", logDir, "--store", dsn); code != 0 {
		t.Fatalf("fsck after the failover: exit %d\n%s%s", code, out, stderr)
	}

	// The killed server comes back as a follower and catches up.
	a2 := startServer(t, args...)
	if leaseHeld(t, a2.url) {
		t.Error("the restarted server took the lease from a live holder")
	}
	rdB, _ := newAPIClient(b.url)
	want, err := rdB.Get(context.Background(), "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	cl2, _ := newAPIClient(a2.url)
	for end := time.Now().Add(10 * time.Second); ; {
		got, err := cl2.Get(context.Background(), "/checkpoint")
		if err == nil && string(got) == string(want) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the restarted server serves\n%s\nthe sequencer\n%s", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkAfterRestart(t, a2.url, v, book.receipts, book.checkpoints)

	// A graceful stop of the holder releases the lease: the follower takes
	// it on its next attempt, not after the TTL.
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	b.cmd.Wait()
	stopped := time.Now()
	for !leaseHeld(t, a2.url) {
		if time.Since(stopped) > 30*time.Second {
			t.Fatalf("the lease was not taken over after a graceful stop:\n%s", a2.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("lease taken over %s after a SIGTERM", time.Since(stopped).Round(10*time.Millisecond))
	if code, _, body := postRaw(t, a2.url, []string{eventLine("failover-after", "collected", 1)}); code != http.StatusOK {
		t.Fatalf("append to the new holder: %d %s", code, body)
	}
}
