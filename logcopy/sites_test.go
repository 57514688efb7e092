package logcopy

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/custodylog/custody/fsck"
	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/internal/plant"
	"github.com/custodylog/custody/internal/sitetest"
	"github.com/custodylog/custody/log"
	"golang.org/x/mod/sumdb/note"
)

// TestCopySigned: a log holding site attestation entries copies, and its
// copy passes fsck with the sites.
func TestCopySigned(t *testing.T) {
	ctx := context.Background()
	w := sitetest.NewWorld(t)
	src := openSQLite(t, filepath.Join(t.TempDir(), "src.db"))
	sk, vk, _ := note.GenerateKey(rand.Reader, "logcopy.test/log")
	s, _ := note.NewSigner(sk)
	v, _ := note.NewVerifier(vk)
	if err := log.Create(ctx, src, s); err != nil {
		t.Fatal(err)
	}
	evs := logtest.Events(0, 3)
	logged := logtest.Time.Add(time.Minute)
	var entries [][]byte
	for i := range evs {
		evs[i].Logged = logged
		entries = append(entries, evs[i].Canonical())
	}
	entries = append(entries, sitetest.Sign(t, w.Zrh, v.Name(), logged, evs))
	if _, err := plant.Plant(ctx, src, s, v, entries); err != nil {
		t.Fatal(err)
	}
	dst := openSQLite(t, filepath.Join(t.TempDir(), "dst.db"))
	sum, err := Copy(ctx, src, dst, Options{From: "src", To: "dst"})
	if err != nil || sum.Entries != 4 {
		t.Fatalf("Copy: %+v, %v", sum, err)
	}
	rep, err := fsck.Check(ctx, dst, v, fsck.Options{Sites: w.Set})
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("fsck of the copy: %v %+v", err, rep.Problems)
	}
}
