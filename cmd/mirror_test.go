package cmd

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	tlmirror "github.com/custodylog/custody/mirror"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store/postgres/pgtest"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testEventsFor returns n distinct events of samples prefix-000, prefix-001, …
func testEventsFor(prefix string, n int) []record.Event {
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	evs := make([]record.Event, n)
	for i := range evs {
		evs[i] = record.Event{Sample: fmt.Sprintf("%s-%04d", prefix, i), Action: record.Collected, Location: "de-fra-1", Region: "EU",
			Time: at.Add(-time.Minute), Logged: at, Actor: "edge-collector/4.2"}
	}
	return evs
}

// runMirror runs custody mirror --json and returns its summary.
func runMirrorJSON(t *testing.T, args ...string) tlmirror.Summary {
	t.Helper()
	code, stdout, stderr := run(t, "", append([]string{"mirror", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("custody mirror %v: exit %d\n%s", args, code, stderr)
	}
	var s tlmirror.Summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("mirror --json output %q: %v", stdout, err)
	}
	return s
}

// staticTiles reads C2SP tiles over HTTP for x/mod's TileHashReader, which
// authenticates every tile against the checkpoint's root before use.
type staticTiles struct {
	t    *testing.T
	base string
}

func (h staticTiles) Height() int { return 8 }

func (h staticTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		// x/mod paths are tile/8/L/N[.p/W]; C2SP drops the height.
		p := strings.Replace(tile.Path(), "tile/8/", "tile/", 1)
		resp, err := http.Get(h.base + "/" + p)
		if err != nil {
			return nil, err
		}
		b := new(bytes.Buffer)
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", p, resp.Status)
		}
		out[i] = b.Bytes()
	}
	return out, nil
}

func (h staticTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// checkStaticLog checks the log served at base with x/mod only (no custody
// code): the checkpoint's signature, every tile against its root, and every
// bundle entry against its authenticated leaf hash. It returns the entries.
func checkStaticLog(t *testing.T, base string, k logKey, want int64) [][]byte {
	t.Helper()
	n, err := note.Open(httpGet(t, base+"/checkpoint"), note.VerifierList(k.verifier))
	if err != nil {
		t.Fatalf("x/mod note.Open(checkpoint): %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != k.verifier.Name() || lines[1] != fmt.Sprint(want) {
		t.Fatalf("checkpoint text %q, want origin %s size %d", n.Text, k.verifier.Name(), want)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		t.Fatalf("checkpoint root %q", lines[2])
	}
	tree := tlog.Tree{N: want, Hash: tlog.Hash(root)}
	thr := tlog.TileHashReader(tree, staticTiles{t, base})
	if h, err := tlog.TreeHash(tree.N, thr); err != nil || h != tree.Hash {
		t.Fatalf("x/mod TreeHash = %x, %v; checkpoint says %x", h, err, tree.Hash)
	}
	idx := make([]int64, want)
	for i := range idx {
		idx[i] = tlog.StoredHashIndex(0, int64(i))
	}
	leaves, err := thr.ReadHashes(idx)
	if err != nil {
		t.Fatalf("x/mod TileHashReader: %v", err)
	}
	var entries [][]byte
	for b := int64(0); b*256 < want; b++ {
		w := min(256, want-b*256)
		p := fmt.Sprintf("tile/entries/%03d", b)
		if w < 256 {
			p += fmt.Sprintf(".p/%d", w)
		}
		data := httpGet(t, base+"/"+p)
		for i := int64(0); i < w; i++ {
			if len(data) < 2 {
				t.Fatalf("%s: truncated at entry %d", p, i)
			}
			l := int(data[0])<<8 | int(data[1])
			if len(data) < 2+l {
				t.Fatalf("%s: truncated entry %d", p, i)
			}
			e := data[2 : 2+l]
			data = data[2+l:]
			if tlog.RecordHash(e) != leaves[b*256+i] {
				t.Fatalf("entry %d in %s does not hash to its authenticated leaf", b*256+i, p)
			}
			entries = append(entries, e)
		}
		if len(data) != 0 {
			t.Fatalf("%s: %d trailing bytes", p, len(data))
		}
	}
	return entries
}

// auditCounts runs custody audit --json --no-state on src.
func auditCounts(t *testing.T, src, pub string) (int, auditJSON) {
	t.Helper()
	code, stdout, stderr := run(t, "", "audit", "--log", src, "--key", pub, "--policy", auditPolicy(t), "--no-state", "--json")
	if code != exitOK && code != exitFailure {
		t.Fatalf("audit --log %s: exit %d\n%s", src, code, stderr)
	}
	return code, parseAuditJSON(t, stdout)
}

func statFile(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// TestMirrorIncremental mirrors a log, grows it, mirrors again, and checks
// the directory with independent code, by auditing it, and against mirrors
// made from the store and from another directory.
func TestMirrorIncremental(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	a.add(t, testEventsFor("smp-mirror-a", 300))
	dir := filepath.Join(t.TempDir(), "public")

	s := runMirrorJSON(t, "--log", a.url, "--key", a.pub, "--dir", dir)
	// 300 entries: bundle and tile 000 full, 001.p/44, tile 1/000.p/1, checkpoint.
	if s.Size != 300 || s.OldSize != 0 || s.FilesWritten != 6 || s.FilesKept != 0 {
		t.Fatalf("first mirror: %+v", s)
	}
	full := []string{"tile/0/000", "tile/entries/000"}
	before := map[string]os.FileInfo{}
	for _, p := range full {
		before[p] = statFile(t, filepath.Join(dir, p))
	}
	for _, p := range []string{"tile/0/001.p/44", "tile/entries/001.p/44", "tile/1/000.p/1", "checkpoint"} {
		statFile(t, filepath.Join(dir, p))
	}
	time.Sleep(20 * time.Millisecond) // so a rewrite would change mtimes

	a.add(t, testEventsFor("smp-mirror-b", 300))
	s = runMirrorJSON(t, "--log", a.url, "--key", a.pub, "--dir", dir)
	// 600 entries: new full 001 (tile and bundle), partial 002.p/88 (both),
	// tile 1/000.p/2, checkpoint; 000 untouched.
	if s.Size != 600 || s.OldSize != 300 || s.FilesWritten != 6 || s.FilesKept != 0 || s.FilesRemoved != 2 {
		t.Fatalf("second mirror: %+v", s)
	}
	for _, p := range full {
		fi := statFile(t, filepath.Join(dir, p))
		if !os.SameFile(fi, before[p]) || !fi.ModTime().Equal(before[p].ModTime()) {
			t.Errorf("%s was rewritten by the incremental mirror", p)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Ino != before[p].Sys().(*syscall.Stat_t).Ino {
			t.Errorf("%s has a new inode", p)
		}
	}
	for _, p := range []string{"tile/0/001.p", "tile/entries/001.p"} {
		if exists(filepath.Join(dir, p)) {
			t.Errorf("superseded partial %s was not removed", p)
		}
	}
	// A partial tile only superseded by a wider one stays, for readers of
	// older checkpoints.
	if !exists(filepath.Join(dir, "tile/1/000.p/1")) || !exists(filepath.Join(dir, "tile/1/000.p/2")) {
		t.Errorf("partial tiles of level 1 missing")
	}

	// Nothing new: nothing written.
	code, stdout, stderr := run(t, "", "mirror", "--log", a.url, "--key", a.pub, "--dir", dir)
	if code != exitOK || !strings.Contains(stdout, "is up to date: size 600") {
		t.Fatalf("third mirror: exit %d\n%s%s", code, stdout, stderr)
	}

	// Served by a plain static file server, checked by x/mod alone.
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	entries := checkStaticLog(t, srv.URL, key, 600)
	live := checkStaticLog(t, a.url, key, 600)
	if len(entries) != len(live) {
		t.Fatalf("%d entries in the mirror, %d in the log", len(entries), len(live))
	}
	for i := range entries {
		if !bytes.Equal(entries[i], live[i]) {
			t.Fatalf("entry %d differs", i)
		}
	}
	if got, want := tlogRoot(t, entries), b64Hash(a.Checkpoint().Root); got != want {
		t.Fatalf("mirror's entries have root %s, the log's checkpoint %s", got, want)
	}

	// custody audit gives the same result on the log, the served mirror
	// and the directory.
	wantCode, want := auditCounts(t, a.url, a.pub)
	for _, src := range []string{srv.URL, dir} {
		code, got := auditCounts(t, src, a.pub)
		if code != wantCode || got.Size != want.Size || got.Root != want.Root || fmt.Sprint(got.Counts) != fmt.Sprint(want.Counts) || len(got.Findings) != len(want.Findings) {
			t.Errorf("audit of %s: exit %d %+v; of the log: exit %d %+v", src, code, got, wantCode, want)
		}
	}

	// The same tree mirrored from the store, and from the mirror itself,
	// gives the same files.
	fromStore := t.TempDir()
	if s := runMirrorJSON(t, "--store", "sqlite:"+a.dbPath, "--key", a.pub, "--dir", fromStore); s.Size != 600 {
		t.Fatalf("mirror --store: %+v", s)
	}
	fromDir := t.TempDir()
	if s := runMirrorJSON(t, "--log", dir, "--key", a.pub, "--dir", fromDir); s.Size != 600 {
		t.Fatalf("mirror --log DIR: %+v", s)
	}
	for _, p := range append(mirrorTiles(600), verify.TileAddr{}) {
		name := "checkpoint"
		if p != (verify.TileAddr{}) {
			name = p.Path()
		}
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{fromStore, fromDir} {
			got, err := os.ReadFile(filepath.Join(d, name))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s in %s differs from the HTTP mirror's (%v)", name, d, err)
			}
		}
	}
}

// TestMirrorTamper: a source serving a bad tile or bundle fails
// verification, and the mirror directory keeps its checkpoint.
func TestMirrorTamper(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	a.add(t, testEventsFor("smp-tamper-a", 300))
	dst := t.TempDir()
	runMirrorJSON(t, "--log", a.url, "--key", a.pub, "--dir", dst)
	oldCP, err := os.ReadFile(filepath.Join(dst, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	a.add(t, testEventsFor("smp-tamper-b", 300))

	cases := []struct {
		name, file, kind string
		edit             func([]byte) []byte
	}{
		{"hash tile", "tile/0/001", verify.EvidenceBadTile, func(b []byte) []byte { b[40] ^= 1; return b }},
		{"level-1 tile", "tile/1/000.p/2", verify.EvidenceRootMismatch, func(b []byte) []byte { b[0] ^= 1; return b }},
		{"entry bundle", "tile/entries/001", verify.EvidenceBadEntry, func(b []byte) []byte {
			es, err := verify.ParseBundle(b, 256)
			if err != nil {
				t.Fatal(err)
			}
			es[7], es[8] = es[8], es[7]
			var out []byte
			for _, e := range es {
				out, _ = verify.AppendBundleEntry(out, e)
			}
			return out
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := t.TempDir()
			runMirrorJSON(t, "--log", a.url, "--key", a.pub, "--dir", src)
			p := filepath.Join(src, filepath.FromSlash(c.file))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, p, c.edit(b))
			evDir := t.TempDir()
			code, _, stderr := run(t, "", "mirror", "--log", src, "--key", a.pub, "--dir", dst, "--evidence-dir", evDir)
			wantFailure(t, code, stderr, evDir, c.kind)
			if got, _ := os.ReadFile(filepath.Join(dst, "checkpoint")); !bytes.Equal(got, oldCP) {
				t.Fatalf("the mirror's checkpoint changed:\n%s", got)
			}
			if !strings.Contains(stderr, "its checkpoint is unchanged") {
				t.Errorf("stderr does not say the mirror is unchanged:\n%s", stderr)
			}
		})
	}
	// The damage never reached dst: mirroring the real log now works, and
	// the result checks out.
	runMirrorJSON(t, "--log", a.url, "--key", a.pub, "--dir", dst)
	srv := httptest.NewServer(http.FileServer(http.Dir(dst)))
	defer srv.Close()
	checkStaticLog(t, srv.URL, key, 600)
}

// TestMirrorWriteFailure: when a file cannot be written, mirror fails and
// the directory keeps its old checkpoint (which is written last).
func TestMirrorWriteFailure(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	a.add(t, testEventsFor("smp-wfail-a", 10))
	dir := t.TempDir()
	runMirrorJSON(t, "--log", a.url, "--key", a.pub, "--dir", dir)
	oldCP, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	a.add(t, testEventsFor("smp-wfail-b", 600))
	// A directory where the full tile 0/001 goes: it cannot be replaced.
	if err := os.MkdirAll(filepath.Join(dir, "tile", "0", "001", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "", "mirror", "--log", a.url, "--key", a.pub, "--dir", dir)
	if code != exitUsageIO || !strings.Contains(stderr, "tile/0/001") || !strings.Contains(stderr, "its checkpoint is unchanged") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "checkpoint")); !bytes.Equal(got, oldCP) {
		t.Fatalf("the checkpoint changed although tile/0/001 was not written")
	}
	// Fixed, the next run completes the mirror.
	if err := os.RemoveAll(filepath.Join(dir, "tile", "0", "001")); err != nil {
		t.Fatal(err)
	}
	if s := runMirrorJSON(t, "--log", a.url, "--key", a.pub, "--dir", dir); s.Size != 610 || s.OldSize != 10 {
		t.Fatalf("mirror after the fix: %+v", s)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	checkStaticLog(t, srv.URL, key, 610)
}

// TestMirrorFork: a mirror directory refuses a source whose checkpoint does
// not extend its own (another history signed with the same key, an older
// tree, another log) and keeps its checkpoint.
func TestMirrorFork(t *testing.T) {
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	a.add(t, testEventsFor("smp-fork-a", 300))
	old := t.TempDir()
	runMirrorJSON(t, "--log", a.url, "--key", a.pub, "--dir", old)
	a.add(t, testEventsFor("smp-fork-a2", 10))
	dir := t.TempDir()
	runMirrorJSON(t, "--log", a.url, "--key", a.pub, "--dir", dir)
	cp, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		if got, _ := os.ReadFile(filepath.Join(dir, "checkpoint")); !bytes.Equal(got, cp) {
			t.Fatalf("the mirror's checkpoint changed:\n%s", got)
		}
	}

	for _, n := range []int{310, 400} {
		t.Run(fmt.Sprintf("fork of size %d", n), func(t *testing.T) {
			b := newAuditLog(t, key) // same key and origin, another history
			b.add(t, testEventsFor("smp-fork-b", n))
			evDir := t.TempDir()
			code, _, stderr := run(t, "", "mirror", "--log", b.url, "--key", b.pub, "--dir", dir, "--evidence-dir", evDir)
			kind := verify.EvidenceFork
			if n != 310 {
				kind = verify.EvidenceInconsistent
			}
			wantFailure(t, code, stderr, evDir, kind)
			if !strings.Contains(stderr, "this is a fork of the log") || !strings.Contains(stderr, "nothing was written") {
				t.Errorf("stderr does not call it a fork:\n%s", stderr)
			}
			unchanged(t)
			if n == 400 && exists(filepath.Join(dir, "tile/entries/001")) {
				t.Errorf("the fork's bundle was written")
			}
		})
	}
	t.Run("rollback", func(t *testing.T) {
		code, _, stderr := run(t, "", "mirror", "--log", old, "--key", a.pub, "--dir", dir)
		if code != exitInvalid || !strings.Contains(stderr, "older than") {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		unchanged(t)
	})
	t.Run("another log", func(t *testing.T) {
		c := newAuditLog(t, fixedKey(t, "example.com/other-log", 2))
		c.add(t, testEventsFor("smp-other", 5))
		code, _, stderr := run(t, "", "mirror", "--log", c.url, "--key", c.pub, "--dir", dir)
		if code != exitUsageIO || !strings.Contains(stderr, "is not a checkpoint of example.com/other-log") {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		unchanged(t)
	})
}

// TestMirrorUsage checks the flag combinations mirror refuses.
func TestMirrorUsage(t *testing.T) {
	for _, args := range [][]string{
		{"mirror", "--log", "http://127.0.0.1:1", "--key", "x"},
		{"mirror", "--dir", t.TempDir(), "--key", "x"},
		{"mirror", "--log", "http://127.0.0.1:1", "--store", "sqlite:x.db", "--dir", t.TempDir(), "--key", "x"},
	} {
		code, _, stderr := run(t, "", args...)
		if code != exitUsageIO || !strings.Contains(stderr, "custody: hint:") {
			t.Errorf("%v: exit %d, stderr:\n%s", args, code, stderr)
		}
	}
}

// mirrorFiles reads every file under dir, by slash-separated relative path.
func mirrorFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// sameFiles fails unless directories got and want hold the same files with
// the same bytes.
func sameFiles(t *testing.T, got, want string) {
	t.Helper()
	g, w := mirrorFiles(t, got), mirrorFiles(t, want)
	if len(w) == 0 {
		t.Fatalf("%s holds no files", want)
	}
	for p, b := range w {
		if gb, ok := g[p]; !ok {
			t.Errorf("%s is in %s but not in %s", p, want, got)
		} else if !bytes.Equal(gb, b) {
			t.Errorf("%s differs between %s and %s", p, got, want)
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("%s is in %s but not in %s", p, got, want)
		}
	}
}

// TestMirrorPostgresStore: custody mirror --store postgres://… writes the
// same files as mirroring the log served from that database, and as
// mirroring the original log it was copied from; an incremental run after
// the log grew does too.
func TestMirrorPostgresStore(t *testing.T) {
	dsn := pgtest.DSN(t) // first: skips before building the log
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	a.add(t, testEventsFor("smp-mirror-pg-a", 300))
	runCopyJSON(t, "sqlite:"+a.dbPath, dsn)

	// The copy served by custody serve on PostgreSQL.
	logDir := t.TempDir()
	writeFile(t, filepath.Join(logDir, "log.pub"), []byte(key.vkey+"\n"))
	if err := os.WriteFile(filepath.Join(logDir, "log.key"), []byte(key.skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := writeTokens(t, logDir)
	srv := startServer(t, "--dir", logDir, "--store", dsn, "--token-file", tokens)

	fromStore, fromServed, fromOriginal := t.TempDir(), t.TempDir(), t.TempDir()
	check := func(size uint64) {
		t.Helper()
		if s := runMirrorJSON(t, "--store", dsn, "--key", a.pub, "--dir", fromStore); s.Size != size {
			t.Fatalf("mirror --store %s: %+v", dsn, s)
		}
		if s := runMirrorJSON(t, "--log", srv.url, "--key", a.pub, "--dir", fromServed); s.Size != size {
			t.Fatalf("mirror --log %s (served from PostgreSQL): %+v", srv.url, s)
		}
		sameFiles(t, fromStore, fromServed)
		if t.Failed() {
			t.FailNow()
		}
		hs := httptest.NewServer(http.FileServer(http.Dir(fromStore)))
		defer hs.Close()
		checkStaticLog(t, hs.URL, key, int64(size))
	}
	check(300)
	if s := runMirrorJSON(t, "--log", a.url, "--key", a.pub, "--dir", fromOriginal); s.Size != 300 {
		t.Fatalf("mirror --log %s (the original): %+v", a.url, s)
	}
	sameFiles(t, fromStore, fromOriginal)

	// The PostgreSQL log grows through its server; both mirrors follow.
	var b strings.Builder
	for i := range 100 {
		b.WriteString(eventLine(fmt.Sprintf("smp-mirror-pg-b-%03d", i), "collected", i) + "\n")
	}
	events := filepath.Join(t.TempDir(), "events.jsonl")
	writeFile(t, events, []byte(b.String()))
	if code, _, stderr := run(t, "", "append", "--log", srv.url, "--token-file", tokens, "--key", a.pub, events); code != exitOK {
		t.Fatalf("custody append: exit %d\n%s", code, stderr)
	}
	check(400)
}
