package cmd

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"github.com/custodylog/custody/fsck"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/record"
)

// fsckJSON runs fsck --json on the directory of a's database.
func fsckJSON(t *testing.T, a *auditLog, extra ...string) (int, fsck.Report) {
	t.Helper()
	code, stdout, stderr := run(t, "", append([]string{"fsck", "--dir", filepath.Dir(a.dbPath), "--json"}, extra...)...)
	var rep fsck.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("fsck --json: exit %d, output %q: %v\nstderr:\n%s", code, stdout, err, stderr)
	}
	return code, rep
}

// wantProblem requires exit 2 and a problem of kind at where whose detail
// contains detail.
func wantProblem(t *testing.T, code int, rep fsck.Report, kind fsck.Kind, where, detail string) {
	t.Helper()
	if code != exitInvalid {
		t.Errorf("exit %d, want %d", code, exitInvalid)
	}
	for _, p := range rep.Problems {
		if p.Kind == kind && p.Where == where && strings.Contains(p.Detail, detail) {
			return
		}
	}
	t.Fatalf("no problem %s %s: …%s… among %+v", kind, where, detail, rep.Problems)
}

func TestFsckClean(t *testing.T) {
	a := tamperLog(t)
	code, rep := fsckJSON(t, a)
	if code != exitOK || len(rep.Problems) != 0 {
		t.Fatalf("exit %d, problems %+v", code, rep.Problems)
	}
	// Between 256 and 511 entries: tiles 0/000 (full), 0/001 (partial) and
	// 1/000 (1 wide); one checkpoint per append plus the empty one.
	n := a.Checkpoint().Size
	if n <= 256 || n >= 512 {
		t.Fatalf("tamperLog has %d entries", n)
	}
	if rep.Entries != n || rep.Tiles != 3 || rep.Checkpoints != n+1 {
		t.Fatalf("checked %d entries, %d tiles, %d checkpoints; want %d, 3, %d", rep.Entries, rep.Tiles, rep.Checkpoints, n, n+1)
	}
	code, stdout, _ := run(t, "", "fsck", "--dir", filepath.Dir(a.dbPath))
	if code != exitOK || !strings.Contains(stdout, fmt.Sprintf("checked %d entries, 3 tiles, %d checkpoints: 0 problems", n, n+1)) {
		t.Fatalf("exit %d, output:\n%s", code, stdout)
	}
}

func TestFsckUsage(t *testing.T) {
	if code, _, _ := run(t, "", "fsck"); code != exitUsageIO {
		t.Errorf("fsck without --dir: exit %d, want %d", code, exitUsageIO)
	}
	if code, _, _ := run(t, "", "fsck", "--dir", t.TempDir()); code != exitUsageIO {
		t.Errorf("fsck of an empty directory: exit %d, want %d", code, exitUsageIO)
	}
	if code, out, _ := run(t, "", "fsck", "--help"); code != exitOK || !strings.Contains(out, "custody fsck --dir") {
		t.Errorf("fsck --help: exit %d\n%s", code, out)
	}
}

func TestFsckTamper(t *testing.T) {
	fork := sha256.Sum256([]byte("a forked tree"))
	cases := []struct {
		name        string
		sql         func(a *auditLog) []string
		kind        fsck.Kind
		where, text string
	}{
		{"entry bytes edited", func(*auditLog) []string {
			return []string{"UPDATE entries SET data = CAST(replace(CAST(data AS TEXT), 'de-fra-1', 'ch-zrh-1') AS BLOB) WHERE idx = 100"}
		}, fsck.KindLeafHash, "entry 100", "computed"},
		{"entries swapped", func(*auditLog) []string {
			return []string{
				"UPDATE entries SET idx = 9000000 WHERE idx = 3",
				"UPDATE entries SET idx = 3 WHERE idx = 4",
				"UPDATE entries SET idx = 4 WHERE idx = 9000000",
			}
		}, fsck.KindTile, "tile/0/000", "hash 3 differs"},
		{"full tile edited", func(*auditLog) []string {
			return []string{"UPDATE tiles SET data = CAST(zeroblob(32) || substr(data, 33) AS BLOB) WHERE level = 0 AND idx = 0"}
		}, fsck.KindTile, "tile/0/000", "hash 0 differs"},
		{"checkpoint forked", func(a *auditLog) []string {
			n := signCheckpoint(t, a.key, 100, fork)
			return []string{fmt.Sprintf("UPDATE checkpoints SET root = X'%x', note = X'%x' WHERE size = 100", fork, n)}
		}, fsck.KindCheckpoint, "checkpoint 100", "but entries give"},
		{"entry inserted", func(*auditLog) []string {
			// Entries from 10 on move up by one and a copy of entry 2 takes
			// index 10; the last entry falls off so the count is unchanged.
			return []string{
				"UPDATE entries SET idx = idx + 1000000 WHERE idx >= 10",
				"UPDATE entries SET idx = idx - 1000000 + 1 WHERE idx >= 1000000",
				"INSERT INTO entries (idx, identity, leaf_hash, sample, data) SELECT 10, randomblob(32), leaf_hash, sample, data FROM entries WHERE idx = 2",
				"DELETE FROM entries WHERE idx = (SELECT max(idx) FROM entries)",
			}
		}, fsck.KindTile, "tile/0/000", "hash 10 differs"},
		{"identity edited", func(*auditLog) []string {
			return []string{"UPDATE entries SET identity = zeroblob(32) WHERE idx = 7"}
		}, fsck.KindIdentity, "entry 7", "stored 0000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := tamperLog(t)
			a.reopen(t, func(path string) { execSQL(t, path, c.sql(a)...) })
			code, rep := fsckJSON(t, a)
			wantProblem(t, code, rep, c.kind, c.where, c.text)
		})
	}
	t.Run("entries swapped also forks checkpoints", func(t *testing.T) {
		a := tamperLog(t)
		a.reopen(t, func(path string) {
			execSQL(t, path, "UPDATE entries SET idx = 9000000 WHERE idx = 3", "UPDATE entries SET idx = 3 WHERE idx = 4", "UPDATE entries SET idx = 4 WHERE idx = 9000000")
		})
		code, rep := fsckJSON(t, a)
		wantProblem(t, code, rep, fsck.KindCheckpoint, "checkpoint 5", "but entries give")
		for _, p := range rep.Problems {
			if p.Where == "checkpoint 3" || p.Kind == fsck.KindLeafHash {
				t.Errorf("unexpected problem %+v", p)
			}
		}
	})
	t.Run("entry deleted", func(t *testing.T) {
		a := tamperLog(t)
		a.Log.Close()
		a.st.Close()
		execSQL(t, a.dbPath, "DELETE FROM entries WHERE idx = 3")
		// Opening the store does not read every entry (its index is on
		// disk), so the hole is found by fsck's pass over the entries.
		code, rep := fsckJSON(t, a)
		wantProblem(t, code, rep, fsck.KindMissingEntry, "entry 3", "entries 3 to 3 are missing")
		code, stdout, _ := run(t, "", "fsck", "--dir", filepath.Dir(a.dbPath))
		if code != exitInvalid || !strings.Contains(stdout, "entries 3 to 3 are missing") {
			t.Fatalf("exit %d, output:\n%s", code, stdout)
		}
	})
}

// TestFsckRollback restores the database from an older copy. The restored
// database is consistent with itself, so only a checkpoint the log signed
// later, kept elsewhere, shows the rollback; and once the log has grown
// again with other events, the same checkpoint shows the fork.
func TestFsckRollback(t *testing.T) {
	a := tamperLog(t)
	backup := filepath.Join(t.TempDir(), "old.db")
	a.reopen(t, func(path string) { copyFile(t, path, backup) })
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	more := func(prefix string, n int) []record.Event {
		evs := make([]record.Event, n)
		for i := range evs {
			evs[i] = record.Event{Sample: fmt.Sprintf("%s-%03d", prefix, i), Action: record.Collected, Location: "de-fra-1", Region: "EU", Time: at, Logged: at, Actor: "edge"}
		}
		return evs
	}
	a.add(t, more("later", 20))
	kept := filepath.Join(t.TempDir(), "checkpoint")
	writeFile(t, kept, httpGet(t, a.url+"/checkpoint"))
	if code, rep := fsckJSON(t, a, "--checkpoint", kept); code != exitOK {
		t.Fatalf("fsck with the current checkpoint: exit %d, %+v", code, rep.Problems)
	}
	size := a.Checkpoint().Size

	a.reopen(t, func(path string) {
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		copyFile(t, backup, path)
	})
	if code, rep := fsckJSON(t, a); code != exitOK {
		t.Fatalf("the restored database is consistent with itself, but fsck says %d %+v", code, rep.Problems)
	}
	code, rep := fsckJSON(t, a, "--checkpoint", kept)
	wantProblem(t, code, rep, fsck.KindRollback, fmt.Sprintf("checkpoint %d", size), "rolled back")

	a.add(t, more("other", 25))
	code, rep = fsckJSON(t, a, "--checkpoint", kept)
	wantProblem(t, code, rep, fsck.KindFork, fmt.Sprintf("checkpoint %d", size), "stored entries give")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
