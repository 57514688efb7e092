package cmd

import (
	"encoding/json"
	"fmt"
	"github.com/custodylog/custody/fsck"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/store/postgres/pgtest"
)

// pgServedLog creates a log in a fresh PostgreSQL schema the way an
// operator would (custody init --store, custody serve --store, custody
// append) with n events, and returns its directory (keys), its DSN and the
// server.
func pgServedLog(t *testing.T, n int) (dir, dsn string, srv *server) {
	t.Helper()
	dsn = pgtest.DSN(t)
	base := t.TempDir()
	dir = filepath.Join(base, "log")
	if code, _, stderr := run(t, "", "init", "--dir", dir, "--origin", "example.com/custody-pg", "--store", dsn); code != exitOK {
		t.Fatalf("custody init --store %s: exit %d\n%s", dsn, code, stderr)
	}
	if exists(filepath.Join(dir, "custody.db")) {
		t.Fatalf("custody init --store postgres://… created %s/custody.db", dir)
	}
	tokens := writeTokens(t, base)
	srv = startServer(t, "--dir", dir, "--store", dsn, "--token-file", tokens)
	var b strings.Builder
	for i := range n {
		b.WriteString(eventLine(fmt.Sprintf("smp-pg-%04d", i), "collected", i) + "\n")
	}
	events := filepath.Join(base, "events.jsonl")
	writeFile(t, events, []byte(b.String()))
	if code, _, stderr := run(t, "", "append", "--log", srv.url, "--token-file", tokens, "--key", filepath.Join(dir, "log.pub"), "--batch", "50", events); code != exitOK {
		t.Fatalf("custody append: exit %d\n%s\nserver:\n%s", code, stderr, srv.logs)
	}
	return dir, dsn, srv
}

// pgExec runs statements in the PostgreSQL schema of dsn, as someone with
// access to the database could.
func pgExec(t *testing.T, dsn string, qs ...string) {
	t.Helper()
	pgtest.Exec(t, dsn, qs...)
}

// fsckStoreJSON runs fsck --json on a log directory and store.
func fsckStoreJSON(t *testing.T, dir, dsn string, extra ...string) (int, fsck.Report) {
	t.Helper()
	code, stdout, stderr := run(t, "", append([]string{"fsck", "--dir", dir, "--store", dsn, "--json"}, extra...)...)
	var rep fsck.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("fsck --json: exit %d, output %q: %v\nstderr:\n%s", code, stdout, err, stderr)
	}
	return code, rep
}

// TestFsckPostgres: fsck of a PostgreSQL log made by init, serve and
// append is clean, also while the server runs; entries and tiles edited in
// the database directly are reported, with exit status 2.
func TestFsckPostgres(t *testing.T) {
	dir, dsn, srv := pgServedLog(t, 300)

	// 300 entries: tiles 0/000 (full), 0/001 (44 wide), 1/000 (1 wide).
	code, stdout, stderr := run(t, "", "fsck", "--dir", dir, "--store", dsn)
	if code != exitOK || !strings.Contains(stdout, "checked 300 entries, 3 tiles, ") || !strings.Contains(stdout, ": 0 problems") {
		t.Fatalf("fsck of the served log: exit %d\n%s%s", code, stdout, stderr)
	}
	code, rep := fsckStoreJSON(t, dir, dsn)
	if code != exitOK || rep.Entries != 300 || rep.Tiles != 3 || rep.Checkpoints < 2 || len(rep.Problems) != 0 {
		t.Fatalf("fsck --json: exit %d %+v", code, rep)
	}
	// A checkpoint the log published, kept elsewhere, is given by the entries.
	kept := filepath.Join(t.TempDir(), "checkpoint")
	writeFile(t, kept, httpGet(t, srv.url+"/checkpoint"))
	if code, rep := fsckStoreJSON(t, dir, dsn, "--checkpoint", kept); code != exitOK {
		t.Fatalf("fsck --checkpoint (the served one): exit %d %+v", code, rep.Problems)
	}
	srv.kill(t)

	// One entry's data edited: its leaf hash no longer matches, and every
	// checkpoint from 101 on has another root.
	pgExec(t, dsn, "UPDATE entries SET data = convert_to(replace(convert_from(data, 'UTF8'), 'ch-zrh-1', 'de-fra-1'), 'UTF8') WHERE idx = 100")
	code, rep = fsckStoreJSON(t, dir, dsn)
	wantProblem(t, code, rep, fsck.KindLeafHash, "entry 100", "computed")
	wantProblem(t, code, rep, fsck.KindTile, "tile/0/000", "hash 100 differs")
	code, stdout, _ = run(t, "", "fsck", "--dir", dir, "--store", dsn)
	if code != exitInvalid || !strings.Contains(stdout, "leaf-hash entry 100: stored ") {
		t.Fatalf("fsck after the edit: exit %d, output:\n%s", code, stdout)
	}

	// A tile no entry accounts for is found by listing the tiles table.
	pgExec(t, dsn, "INSERT INTO tiles (level, idx, data) VALUES (0, 50, decode(repeat('00', 64), 'hex'))")
	code, rep = fsckStoreJSON(t, dir, dsn)
	wantProblem(t, code, rep, fsck.KindTileExtra, "tile/0/050", "stored (2 hashes) but the 300 entries need no such tile")
}

// TestPostgresNoLog: fsck, serve, copy and mirror of a PostgreSQL schema
// that holds no log say so and create nothing there.
func TestPostgresNoLog(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	key := fixedKey(t, auditOrigin, 1)
	if err := os.WriteFile(filepath.Join(dir, "log.pub"), []byte(key.vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "log.key"), []byte(key.skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"fsck", "--dir", dir, "--store", dsn},
		{"serve", "--dir", dir, "--store", dsn, "--listen", "127.0.0.1:0"},
		{"copy", "--from", dsn, "--to", filepath.Join(dir, "copy.db")},
		{"mirror", "--store", dsn, "--dir", filepath.Join(dir, "mirror"), "--key", filepath.Join(dir, "log.pub")},
	} {
		code, _, stderr := run(t, "", args...)
		if code != exitUsageIO || !strings.Contains(stderr, "holds no custody log") || !strings.Contains(stderr, "custody: hint:") {
			t.Errorf("custody %s: exit %d, stderr:\n%s", args[0], code, stderr)
		}
	}
	if n := pgtest.QueryInt(t, dsn, "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"); n != 0 {
		t.Fatalf("%d tables were created in the empty schema", n)
	}
}

// TestInitPostgresRefusesExistingLog: init into a PostgreSQL schema that
// holds a log fails before writing any key.
func TestInitPostgresRefusesExistingLog(t *testing.T) {
	dsn := pgtest.DSN(t)
	first := filepath.Join(t.TempDir(), "log")
	if code, _, stderr := run(t, "", "init", "--dir", first, "--origin", "example.com/p1", "--store", dsn); code != exitOK {
		t.Fatalf("first init: exit %d\n%s", code, stderr)
	}
	second := filepath.Join(t.TempDir(), "log")
	code, _, stderr := run(t, "", "init", "--dir", second, "--origin", "example.com/p2", "--store", dsn)
	if code == exitOK || !strings.Contains(stderr, "already holds a log of 0 entries") || !strings.Contains(stderr, "custody: hint:") {
		t.Fatalf("second init: exit %d\n%s", code, stderr)
	}
	if exists(filepath.Join(second, "log.key")) {
		t.Fatalf("the refused init wrote %s", filepath.Join(second, "log.key"))
	}
	if code, stdout, stderr := run(t, "", "fsck", "--dir", first, "--store", dsn); code != exitOK {
		t.Fatalf("fsck of the first log after the refused init: exit %d\n%s%s", code, stdout, stderr)
	}
}
