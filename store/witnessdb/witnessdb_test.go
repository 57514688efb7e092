package witnessdb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/witness"
)

var _ witness.StateStore = (*DB)(nil)

const origin = "example.com/testlog"

// v1Schema is the table as witness/witness.go created it before this
// package existed, byte for byte (sqlite_master keeps the statement's text
// without IF NOT EXISTS).
const v1Schema = `CREATE TABLE log (
	origin     TEXT PRIMARY KEY,
	size       INTEGER NOT NULL,
	root       BLOB NOT NULL,
	checkpoint BLOB NOT NULL,
	updated    INTEGER NOT NULL
)`

// testdata/witness-v1.db was written by the witness before the move (at
// commit 0229548): a cosignature at size 5, then at 7. These are its
// contents.
const (
	v1Root       = "211cf5e3589f36bca496983a66ba65abcd53fb6288b1b138448e411161bdde0d"
	v1Checkpoint = "example.com/testlog\n7\nIRz141ifNryklpg6Zrplq81T+2KIsbE4RI5BEWG93g0=\n\n" +
		"— example.com/testlog /vL+lioO93gwOi2KPohNHsgCjRS+MfNzlIWa/2NvQ0Omo0PJjwqXMle8tdslA3uYR7DWpxESNugHIDtp8YFsE+om0A0=\n" +
		"— example.com/testwitness 0APaVAAAAABlU/EAAbvjaN3ybu/0Z9YJ3D6zCbSDTtHr2DotGf6Cd8gUvhjd7CESsxUOgdgQpswGrtVZ9o0ESSfycw4zSbtnaYHVBw==\n"
	v1Updated = 1700000000
)

func open(t *testing.T, path string) *DB {
	t.Helper()
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func hash(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func mustGet(t *testing.T, d *DB, origin string) (uint64, [32]byte, bool) {
	t.Helper()
	size, root, ok, err := d.Get(context.Background(), origin)
	if err != nil {
		t.Fatal(err)
	}
	return size, root, ok
}

func cas(t *testing.T, d *DB, oldSize uint64, oldRoot [32]byte, size uint64, root [32]byte, cp string) bool {
	t.Helper()
	ok, err := d.CompareAndSwap(context.Background(), origin, oldSize, oldRoot, size, root, []byte(cp))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func tableSQL(t *testing.T, d *DB) string {
	t.Helper()
	var s string
	if err := d.db.QueryRow("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'log'").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOpensV1File: a state file written by the witness before the move
// opens, reads back what it holds, and moves on from it.
func TestOpensV1File(t *testing.T) {
	b, err := os.ReadFile("testdata/witness-v1.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d := open(t, path)
	if got := tableSQL(t, d); got != v1Schema {
		t.Fatalf("table in the v1 file:\n%s\nwant:\n%s", got, v1Schema)
	}
	size, root, ok := mustGet(t, d, origin)
	if !ok || size != 7 || hex.EncodeToString(root[:]) != v1Root {
		t.Fatalf("v1 state: size %d root %x ok %v; want 7 %s", size, root, ok, v1Root)
	}
	cp, ok, err := d.Checkpoint(context.Background(), origin)
	if err != nil || !ok || string(cp) != v1Checkpoint {
		t.Fatalf("v1 checkpoint %q, %v, %v; want %q", cp, ok, err, v1Checkpoint)
	}
	var updated int64
	if err := d.db.QueryRow("SELECT updated FROM log WHERE origin = ?", origin).Scan(&updated); err != nil || updated != v1Updated {
		t.Fatalf("v1 updated %d, %v; want %d", updated, err, v1Updated)
	}
	if cas(t, d, 5, root, 9, hash("nine"), "cp9") {
		t.Fatal("compare-and-swap from size 5 succeeded on a state at size 7")
	}
	if !cas(t, d, 7, root, 9, hash("nine"), "cp9") {
		t.Fatal("compare-and-swap from the v1 state failed")
	}
	if size, root, _ := mustGet(t, d, origin); size != 9 || root != hash("nine") {
		t.Fatalf("state after the swap: %d %x", size, root)
	}
}

// TestNewFile: a new file has the v1 table, in WAL mode with
// synchronous=FULL on the connection that writes.
func TestNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	d := open(t, path)
	if got := tableSQL(t, d); got != v1Schema {
		t.Fatalf("table:\n%s\nwant:\n%s", got, v1Schema)
	}
	var mode string
	var sync int
	if err := d.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v", mode, err)
	}
	if err := d.db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous %d, %v; want 2 (FULL)", sync, err)
	}
	if _, _, ok := mustGet(t, d, origin); ok {
		t.Fatal("a new file has a state")
	}
	if cp, ok, err := d.Checkpoint(context.Background(), origin); ok || err != nil || cp != nil {
		t.Fatalf("a new file's checkpoint: %q, %v, %v", cp, ok, err)
	}
}

// TestCompareAndSwap: the state moves only from the state the caller names;
// a log without a state is at the empty tree; of two roots for one size
// from the same old state only the first is stored.
func TestCompareAndSwap(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), FileName))
	clock := int64(1700000000)
	d.now = func() time.Time { return time.Unix(clock, 0) }
	empty := sha256.Sum256(nil)

	if cas(t, d, 5, hash("five"), 8, hash("eight"), "cp8") {
		t.Fatal("compare-and-swap from size 5 succeeded on a log without a state")
	}
	if cas(t, d, 0, hash("not empty"), 8, hash("eight"), "cp8") {
		t.Fatal("compare-and-swap from size 0 with a non-empty root succeeded")
	}
	if _, _, ok := mustGet(t, d, origin); ok {
		t.Fatal("a failed compare-and-swap stored a state")
	}
	// The empty tree itself, then again (the row exists now).
	if !cas(t, d, 0, empty, 0, empty, "cp0") || !cas(t, d, 0, empty, 0, empty, "cp0 again") {
		t.Fatal("compare-and-swap at the empty tree failed")
	}
	if !cas(t, d, 0, empty, 8, hash("eight"), "cp8") {
		t.Fatal("compare-and-swap from the stored empty tree failed")
	}
	// Two roots for size 12 from size 8: only the first.
	clock++
	if !cas(t, d, 8, hash("eight"), 12, hash("twelve"), "cp12") {
		t.Fatal("compare-and-swap 8 -> 12 failed")
	}
	if cas(t, d, 8, hash("eight"), 12, hash("fork"), "fork") {
		t.Fatal("a second root for size 12 was stored")
	}
	if cas(t, d, 0, empty, 12, hash("fork"), "fork") {
		t.Fatal("compare-and-swap from the empty tree succeeded on a state at size 12")
	}
	if cas(t, d, 12, hash("fork"), 13, hash("fork13"), "fork13") {
		t.Fatal("compare-and-swap from a root that was never stored succeeded")
	}
	size, root, _ := mustGet(t, d, origin)
	cp, _, _ := d.Checkpoint(context.Background(), origin)
	if size != 12 || root != hash("twelve") || string(cp) != "cp12" {
		t.Fatalf("state %d %x %q; want 12, the first root, cp12", size, root, cp)
	}
	var updated int64
	if err := d.db.QueryRow("SELECT updated FROM log WHERE origin = ?", origin).Scan(&updated); err != nil || updated != clock {
		t.Fatalf("updated %d, %v; want %d", updated, err, clock)
	}
	// Another origin is another state.
	if _, _, ok := mustGet(t, d, "example.com/other"); ok {
		t.Fatal("another origin has a state")
	}
	// Sizes above 2^63 round-trip (stored bit-cast, as before the move).
	big := uint64(1)<<63 + 5
	if !cas(t, d, 12, hash("twelve"), big, hash("big"), "big") {
		t.Fatal("compare-and-swap to a size above 2^63 failed")
	}
	if size, _, _ := mustGet(t, d, origin); size != big {
		t.Fatalf("size %d read back, want %d", size, big)
	}
	if !cas(t, d, big, hash("big"), big+1, hash("bigger"), "bigger") {
		t.Fatal("compare-and-swap from a size above 2^63 failed")
	}
}

// TestConcurrentCompareAndSwap: two DBs on one file (as two processes) and
// many goroutines race to store different roots of one size from the empty
// tree: exactly one wins, and the file holds its root and checkpoint.
func TestConcurrentCompareAndSwap(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	dbs := []*DB{open(t, path), open(t, path)}
	empty := sha256.Sum256(nil)
	const n = 20
	var wins [n]bool
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := dbs[i%2].CompareAndSwap(context.Background(), origin, 0, empty, 9, hash(fmt.Sprint(i)), []byte(fmt.Sprint("cp", i)))
			if err != nil {
				t.Error(err)
			}
			wins[i] = ok
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, w := range wins {
		if w {
			if winner >= 0 {
				t.Fatalf("two roots of size 9 stored: %d and %d", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no compare-and-swap succeeded")
	}
	for j, d := range dbs {
		size, root, _ := mustGet(t, d, origin)
		cp, _, _ := d.Checkpoint(context.Background(), origin)
		if size != 9 || root != hash(fmt.Sprint(winner)) || string(cp) != fmt.Sprint("cp", winner) {
			t.Fatalf("DB %d reads %d %x %q, want the winner %d", j, size, root, cp, winner)
		}
	}
}

// TestSurvivesKill: a process that stored a state and died without closing
// the file (no WAL checkpoint) leaves the state to the next one.
func TestSurvivesKill(t *testing.T) {
	if path := os.Getenv("WITNESSDB_KILL_PATH"); path != "" {
		d, err := Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		ok, err := d.CompareAndSwap(context.Background(), origin, 0, sha256.Sum256(nil), 42, hash("42"), []byte("cp42"))
		if !ok || err != nil {
			fmt.Fprintln(os.Stderr, ok, err)
			os.Exit(4)
		}
		os.Exit(0) // no Close
	}
	path := filepath.Join(t.TempDir(), FileName)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSurvivesKill$")
	cmd.Env = append(os.Environ(), "WITNESSDB_KILL_PATH="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("the child left no WAL file (it should have died before checkpointing): %v", err)
	}
	d := open(t, path)
	size, root, ok := mustGet(t, d, origin)
	if !ok || size != 42 || root != hash("42") {
		t.Fatalf("after the kill: %d %x %v; want 42", size, root, ok)
	}
}

// TestDamagedRoot: a root that is not 32 bytes is reported, naming the log
// and the file, never returned as a state.
func TestDamagedRoot(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	d := open(t, path)
	if _, err := d.db.Exec("INSERT INTO log (origin, size, root, checkpoint, updated) VALUES (?, 3, ?, 'cp', 0)", origin, bytes.Repeat([]byte{1}, 31)); err != nil {
		t.Fatal(err)
	}
	_, _, ok, err := d.Get(context.Background(), origin)
	if err == nil || ok || !strings.Contains(err.Error(), origin) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "31 bytes") {
		t.Fatalf("Get of a 31-byte root: ok %v, error %v", ok, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"no path":          "",
		"missing dir":      filepath.Join(dir, "nope", FileName),
		"not a database":   garbage,
		"path is a folder": dir,
	} {
		d, err := Open(path)
		if err == nil {
			d.Close()
			t.Errorf("%s: Open(%q) succeeded", name, path)
			continue
		}
		if path != "" && !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name %s", name, err, path)
		}
	}
}

// TestClosed: a closed DB answers errors, not states.
func TestClosed(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := d.Get(context.Background(), origin); err == nil {
		t.Error("Get on a closed DB succeeded")
	}
	if ok, err := d.CompareAndSwap(context.Background(), origin, 0, sha256.Sum256(nil), 1, hash("1"), nil); ok || err == nil {
		t.Errorf("CompareAndSwap on a closed DB: %v, %v", ok, err)
	}
}
