package fsck

import (
	"context"
	"strings"
	"testing"

	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/store/sqlite/sqlitetest"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// newIndexedLog is newLog, also returning the log's signer.
func newIndexedLog(t *testing.T, n uint64, batch int) (string, note.Signer, note.Verifier) {
	t.Helper()
	path, s, v, _ := newSignedLog(t, n, batch)
	return path, s, v
}

func sampleMapProblems(rep *Report) []Problem {
	var out []Problem
	for _, p := range rep.Problems {
		if p.Kind == KindSampleMapRoot || p.Kind == KindSampleMapTile {
			out = append(out, p)
		}
	}
	return out
}

// TestCheckSampleMap: fsck recomputes the sample index from the entries:
// a sound log has no problem; a damaged or missing stored tile, and a
// checkpoint whose index line (signed with the log's key) commits another
// root, are reported.
func TestCheckSampleMap(t *testing.T) {
	const n = 3000
	path, _, v := newIndexedLog(t, n, 500)
	if ps := sampleMapProblems(check(t, path, v, Options{})); len(ps) != 0 {
		t.Fatalf("sound log: %+v", ps)
	}
	var tiles int
	sqlitetest.QueryRow(t, path, "SELECT count(*) FROM sample_tiles", nil, &tiles)
	if tiles < 2 {
		t.Fatalf("the log stored %d sample index tiles", tiles)
	}

	t.Run("damaged tile", func(t *testing.T) {
		p, _, v := newIndexedLog(t, n, 500)
		sqlitetest.Exec(t, p, "UPDATE sample_tiles SET data = CAST(substr(data, 1, length(data) - 1) || X'ff' AS BLOB) WHERE id = X'00'")
		rep := check(t, p, v, Options{})
		wantProblem(t, rep, KindSampleMapTile, "sample index tile 0/", "differs from the tile the entries give")
		wantProblem(t, rep, KindSampleMapRoot, "sample index 3000", "but the entries give")
	})
	t.Run("missing tile", func(t *testing.T) {
		p, _, v := newIndexedLog(t, n, 500)
		sqlitetest.Exec(t, p, "DELETE FROM sample_tiles WHERE id = (SELECT max(id) FROM sample_tiles)")
		rep := check(t, p, v, Options{})
		wantProblem(t, rep, KindSampleMapTile, "sample index 3000", "1 of the ")
		wantProblem(t, rep, KindSampleMapTile, "sample index 3000", "tiles the entries give are not stored")
	})
	t.Run("malformed tile", func(t *testing.T) {
		p, _, v := newIndexedLog(t, n, 500)
		sqlitetest.Exec(t, p, "UPDATE sample_tiles SET data = X'0000' WHERE id = (SELECT max(id) FROM sample_tiles)")
		rep := check(t, p, v, Options{})
		found := false
		for _, p := range sampleMapProblems(rep) {
			found = found || (p.Kind == KindSampleMapTile && strings.Contains(p.Detail, "no slot is used"))
		}
		if !found {
			t.Errorf("malformed tile not reported: %+v", sampleMapProblems(rep))
		}
	})
	t.Run("lying index line", func(t *testing.T) {
		p, signer, v := newIndexedLog(t, n, 500)
		st, err := sqlite.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		cps, err := st.Checkpoints(context.Background(), 1000, 1)
		st.Close()
		if err != nil || len(cps) != 1 || cps[0].Size != 1000 {
			t.Fatalf("checkpoint 1000: %v %v", cps, err)
		}
		cp, _, err := verify.OpenCheckpoint(cps[0].Note, v.Name(), note.VerifierList(v))
		if err != nil {
			t.Fatal(err)
		}
		honest, err := sampleindex.FindExtension(cp.Extensions)
		if err != nil {
			t.Fatalf("checkpoint 1000 has no index line: %v", err)
		}
		wrong := honest
		wrong[0] ^= 1
		cp.Extensions = []string{sampleindex.FormatExtension(wrong)}
		signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, signer)
		if err != nil {
			t.Fatal(err)
		}
		sqlitetest.Exec(t, p, "UPDATE checkpoints SET note = ? WHERE size = 1000", signed)
		rep := check(t, p, v, Options{})
		ps := sampleMapProblems(rep)
		if len(ps) != 1 {
			t.Fatalf("want one problem, got %+v", ps)
		}
		wantProblem(t, rep, KindSampleMapRoot, "checkpoint 1000", "line commits map root")
	})
}
