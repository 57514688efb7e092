package cmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"github.com/custodylog/custody/fsck"
	"github.com/custodylog/custody/logcopy"
	"os"
	"path/filepath"
	"strings"
	"testing"

	logserver "github.com/custodylog/custody/server"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres/pgtest"
)

// copyBackends are the stores copy is tested between: each row makes a new,
// empty store and returns its DSN. The PostgreSQL row is a fresh schema in
// the test server (see pgtest: skipped loudly when there is none, unless
// CUSTODY_REQUIRE_POSTGRES=1).
var copyBackends = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "custody.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
}

// runCopyJSON runs custody copy --json and returns its summary.
func runCopyJSON(t *testing.T, from, to string) logcopy.Summary {
	t.Helper()
	code, stdout, stderr := run(t, "", "copy", "--from", from, "--to", to, "--json")
	if code != exitOK {
		t.Fatalf("custody copy --from %s --to %s: exit %d\n%s", from, to, code, stderr)
	}
	var s logcopy.Summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("copy --json output %q: %v", stdout, err)
	}
	return s
}

// allCheckpoints lists every checkpoint of the store at dsn.
func allCheckpoints(t *testing.T, dsn string) []store.Checkpoint {
	t.Helper()
	st, err := logserver.OpenStore(dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []store.Checkpoint
	err = store.EachCheckpoint(context.Background(), st, ^uint64(0), func(c store.Checkpoint) error {
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyLog is a log of 300 entries with one checkpoint per entry (and the
// empty one): tile 0/000 full, 0/001 partial, 1/000 partial.
func copyLog(t *testing.T) (*auditLog, logKey) {
	t.Helper()
	key := fixedKey(t, auditOrigin, 1)
	a := newAuditLog(t, key)
	a.add(t, testEventsFor("smp-copy", 300))
	return a, key
}

// TestCopyRoundTrip copies a log A (SQLite) → B → C over every pair of
// backends (so SQLite → PostgreSQL → SQLite, and PostgreSQL → PostgreSQL)
// and checks that B and C have every checkpoint of A byte for byte (so the
// root is kept), are clean for fsck, and that C serves A's checkpoint.
func TestCopyRoundTrip(t *testing.T) {
	for _, beB := range copyBackends {
		for _, beC := range copyBackends {
			t.Run("sqlite-"+beB.name+"-"+beC.name, func(t *testing.T) {
				testCopyRoundTrip(t, beB.dsn(t), beC.dsn(t))
			})
		}
	}
}

// testCopyRoundTrip copies a new log A into the empty store b, then b into
// the empty store c, and checks both copies.
func testCopyRoundTrip(t *testing.T, b, c string) {
	a, key := copyLog(t)
	src := "sqlite:" + a.dbPath
	s := runCopyJSON(t, src, b)
	if s.Entries != 300 || s.Checkpoints != 301 || s.Size != 300 || !s.Verified || s.Root != b64Hash(a.Checkpoint().Root) {
		t.Fatalf("copy A → B: %+v", s)
	}
	code, stdout, stderr := run(t, "", "copy", "--from", b, "--to", c)
	if code != exitOK || !strings.Contains(stdout, "copied 300 entries, 301 checkpoints") || !strings.Contains(stdout, "root "+s.Root) {
		t.Fatalf("copy B → C: exit %d\n%s%s", code, stdout, stderr)
	}

	want := allCheckpoints(t, src)
	for _, cp := range []struct{ name, dsn string }{{"B", b}, {"C", c}} {
		got := allCheckpoints(t, cp.dsn)
		if len(got) != len(want) {
			t.Fatalf("%s has %d checkpoints, A %d", cp.name, len(got), len(want))
		}
		for i := range want {
			if got[i].Size != want[i].Size || got[i].Root != want[i].Root || !bytes.Equal(got[i].Note, want[i].Note) {
				t.Fatalf("checkpoint %d: %s has size %d note\n%s\nA has size %d note\n%s", i, cp.name, got[i].Size, got[i].Note, want[i].Size, want[i].Note)
			}
		}
	}

	// A log directory for the copies: A's keys, and a copy as its store.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "log.pub"), []byte(key.vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "log.key"), []byte(key.skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dsn := range []string{b, c} {
		code, stdout, stderr = run(t, "", "fsck", "--dir", dir, "--store", dsn)
		if code != exitOK || !strings.Contains(stdout, "checked 300 entries, 3 tiles, 301 checkpoints: 0 problems") {
			t.Fatalf("fsck of the copy %s: exit %d\n%s%s", dsn, code, stdout, stderr)
		}
	}
	srv := startServer(t, "--dir", dir, "--store", c)
	if got := httpGet(t, srv.url+"/checkpoint"); !bytes.Equal(got, a.Checkpoint().Note) {
		t.Fatalf("a server on the copy serves\n%s\nthe log serves\n%s", got, a.Checkpoint().Note)
	}
	checkStaticLog(t, srv.url, key, 300)
}

// TestCopyRefusesNonEmpty: copy never writes into a store that holds a log.
func TestCopyRefusesNonEmpty(t *testing.T) {
	for _, be := range copyBackends {
		t.Run(be.name, func(t *testing.T) {
			a, _ := copyLog(t)
			src := "sqlite:" + a.dbPath
			dst := be.dsn(t)
			runCopyJSON(t, src, dst)
			before := allCheckpoints(t, dst)
			code, _, stderr := run(t, "", "copy", "--from", src, "--to", dst)
			if code != exitUsageIO || !strings.Contains(stderr, "is not empty: it holds a log of 300 entries") || !strings.Contains(stderr, "custody: hint: copy into a new, empty store") {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			if after := allCheckpoints(t, dst); len(after) != len(before) {
				t.Fatalf("the destination changed: %d checkpoints, was %d", len(after), len(before))
			}
		})
	}
	// A missing source is not created.
	missing := filepath.Join(t.TempDir(), "none.db")
	code, _, stderr := run(t, "", "copy", "--from", "sqlite:"+missing, "--to", "sqlite:"+filepath.Join(t.TempDir(), "x.db"))
	if code != exitUsageIO || !strings.Contains(stderr, "no such file") {
		t.Fatalf("missing source: exit %d\n%s", code, stderr)
	}
	if exists(missing) {
		t.Fatalf("copy created the missing source %s", missing)
	}
}

// TestCopyTamperedSource: a source whose entries were edited is refused.
func TestCopyTamperedSource(t *testing.T) {
	cases := []struct {
		name, want string
		sql        []string
	}{
		{"entry bytes edited", "data hashes to", []string{
			"UPDATE entries SET data = CAST(replace(CAST(data AS TEXT), 'de-fra-1', 'ch-zrh-1') AS BLOB) WHERE idx = 100",
		}},
		{"entries swapped", "have root", []string{
			"UPDATE entries SET idx = 9000000 WHERE idx = 3",
			"UPDATE entries SET idx = 3 WHERE idx = 4",
			"UPDATE entries SET idx = 4 WHERE idx = 9000000",
		}},
	}
	for _, be := range copyBackends {
		for _, c := range cases {
			t.Run(be.name+"/"+c.name, func(t *testing.T) {
				a, _ := copyLog(t)
				a.reopen(t, func(path string) { execSQL(t, path, c.sql...) })
				code, _, stderr := run(t, "", "copy", "--from", "sqlite:"+a.dbPath, "--to", be.dsn(t))
				if code != exitInvalid || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "custody fsck") {
					t.Fatalf("exit %d, stderr:\n%s", code, stderr)
				}
			})
		}
	}
}

// TestCopyTamperedPostgresSource: a PostgreSQL source whose entry was
// edited in the database is refused, and fsck names the entry.
func TestCopyTamperedPostgresSource(t *testing.T) {
	src := pgtest.DSN(t) // first: skips before building the log
	a, key := copyLog(t)
	runCopyJSON(t, "sqlite:"+a.dbPath, src)
	pgExec(t, src, "UPDATE entries SET data = convert_to(replace(convert_from(data, 'UTF8'), 'de-fra-1', 'ch-zrh-1'), 'UTF8') WHERE idx = 100")
	code, _, stderr := run(t, "", "copy", "--from", src, "--to", "sqlite:"+filepath.Join(t.TempDir(), "custody.db"))
	if code != exitInvalid || !strings.Contains(stderr, "source entry 100") || !strings.Contains(stderr, "data hashes to") || !strings.Contains(stderr, "custody fsck") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "log.pub"), []byte(key.vkey+"\n"))
	code, rep := fsckStoreJSON(t, dir, src)
	wantProblem(t, code, rep, fsck.KindLeafHash, "entry 100", "computed")
}

func b64Hash(h [32]byte) string { return base64.StdEncoding.EncodeToString(h[:]) }
