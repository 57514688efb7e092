package cmd

import (
	"fmt"
	"github.com/custodylog/custody/store/sqlite/sqlitetest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/verify"
)

// tamperLog is a log of 287 entries (the clean set and 260 more), so that
// tile 0/000 and bundle 000 are full and not on the right edge.
func tamperLog(t *testing.T) *auditLog {
	key := fixedKey(t, auditOrigin, 1)
	a, evs := loadAuditLog(t, key, "clean.jsonl")
	more := make([]record.Event, 260)
	at := evs[len(evs)-1].Logged.Add(time.Hour)
	for i := range more {
		more[i] = record.Event{Sample: fmt.Sprintf("smp-tamper-%03d", i), Action: record.Collected, Location: "de-fra-1", Region: "EU", Time: at.Add(-time.Minute), Logged: at, Actor: "edge-collector/4.2"}
	}
	a.add(t, more)
	if code, _, stderr := run(t, "", "audit", "--log", a.url, "--key", a.pub, "--policy", auditPolicy(t), "--no-state"); code != exitOK {
		t.Fatalf("audit before tampering: exit %d\n%s", code, stderr)
	}
	return a
}

// auditFails audits src from scratch and requires exit 2 with evidence of kind.
func auditFails(t *testing.T, src, pub, kind string) verify.Evidence {
	t.Helper()
	policy := auditPolicy(t)
	t.Chdir(t.TempDir()) // --no-state writes evidence here
	code, _, stderr := run(t, "", "audit", "--log", src, "--key", pub, "--policy", policy, "--no-state")
	return wantFailure(t, code, stderr, ".", kind)
}

// TestAuditDatabaseTamper edits the SQLite file under a serving log as a
// dishonest operator could; an audit from scratch catches each edit.
func TestAuditDatabaseTamper(t *testing.T) {
	cases := []struct {
		name string
		sql  []string
		kind string
	}{
		{"entry bytes edited", []string{
			"UPDATE entries SET data = CAST(replace(CAST(data AS TEXT), 'de-fra-1', 'ch-zrh-1') AS BLOB) WHERE idx = 100",
		}, verify.EvidenceBadEntry},
		{"entries swapped", []string{
			"UPDATE entries SET idx = 9000000 WHERE idx = 3",
			"UPDATE entries SET idx = 3 WHERE idx = 4",
			"UPDATE entries SET idx = 4 WHERE idx = 9000000",
		}, verify.EvidenceBadEntry},
		{"full hash tile edited", []string{
			"UPDATE tiles SET data = CAST(zeroblob(32) || substr(data, 33) AS BLOB) WHERE level = 0 AND idx = 0",
		}, verify.EvidenceBadTile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := tamperLog(t)
			a.reopen(t, func(path string) { execSQL(t, path, c.sql...) })
			auditFails(t, a.url, a.pub, c.kind)
		})
	}
}

func execSQL(t *testing.T, path string, qs ...string) {
	t.Helper()
	for _, q := range qs {
		sqlitetest.Exec(t, path, q)
	}
}

// TestStoreRefusesMissingEntry: an entry deleted from the database makes
// the store refuse to open (the log will not serve a tree with a hole).
func TestStoreRefusesMissingEntry(t *testing.T) {
	a := tamperLog(t)
	a.Log.Close()
	a.st.Close()
	execSQL(t, a.dbPath, "DELETE FROM entries WHERE idx = 3")
	// Opening reads only the entries its on-disk index does not hold yet,
	// so a hole below the index's watermark is fsck's and the auditors' to
	// find (TestFsckTamper, TestAuditDatabaseTamper). Whenever the store
	// does read entries to index them (here: the index is gone, so all of
	// them), a hole stops it.
	if err := os.RemoveAll(a.dbPath + ".idx"); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(a.dbPath)
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("opening a store with entry 3 deleted: %v", err)
	}
}

// TestAuditMirrorTamper changes what a log serves (here: a mirror of it in
// a directory) in the ways an operator could: an entry deleted from a
// bundle, two entries swapped, an entry inserted. Each is caught.
func TestAuditMirrorTamper(t *testing.T) {
	a := tamperLog(t)
	cases := []struct {
		name string
		edit func(entries [][]byte) [][]byte
	}{
		{"entry deleted", func(es [][]byte) [][]byte { return append(es[:3:3], es[4:]...) }},
		{"entries swapped", func(es [][]byte) [][]byte { es[3], es[4] = es[4], es[3]; return es }},
		{"entry inserted", func(es [][]byte) [][]byte {
			return append(append(es[:10:10], es[2]), es[10:]...)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := mirror(t, a.url, a.key)
			p := filepath.Join(dir, "tile", "entries", "000")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			es, err := verify.ParseBundle(b, 256)
			if err != nil {
				t.Fatal(err)
			}
			var out []byte
			for _, e := range c.edit(es) {
				out, _ = verify.AppendBundleEntry(out, e)
			}
			writeFile(t, p, out)
			auditFails(t, dir, a.pub, verify.EvidenceBadEntry)
		})
	}
}
