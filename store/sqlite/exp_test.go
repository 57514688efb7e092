package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TEMPORARY experiment harness; deleted before hand-off.
func TestExp(t *testing.T) {
	cfgs := strings.Split(os.Getenv("EXP"), "@@")
	if os.Getenv("EXP") == "" {
		t.Skip()
	}
	prefillN := 200_000
	fmt.Sscan(os.Getenv("EXP_PREFILL"), &prefillN)
	for _, cfg := range cfgs {
		parts := strings.Split(cfg, "|")
		pre, schema := parts[0], parts[1]
		dir := t.TempDir()
		path := filepath.Join(dir, "x.db")
		db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL&_txlock=immediate&_cache_size=-262144&_stmt_cache_size=64")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		for _, p := range strings.Split(pre, ",") {
			if p == "" {
				continue
			}
			if _, err := db.Exec("PRAGMA " + p); err != nil {
				t.Fatal(p, err)
			}
		}
		if _, err := db.Exec(schema); err != nil {
			t.Fatal(err)
		}

		stop := make(chan struct{})
		var ckpts, ckptTime int64
		if os.Getenv("EXP_BGCKPT") != "" {
			cdb, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL")
			if err != nil {
				t.Fatal(err)
			}
			defer cdb.Close()
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					a := time.Now()
					var busy, logF, ckF int
					if err := cdb.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logF, &ckF); err != nil {
						t.Log(err)
					}
					ckpts++
					ckptTime += int64(time.Since(a))
				}
			}()
		}
		g := newBenchLog()
		ctx := context.Background()
		run := func(n int, measure bool) {
			var tIns, tCommit time.Duration
			var rIns, wIns, rCom, wCom int64
			t0 := time.Now()
			for i := 0; i < n; i++ {
				b := g.batch(1024, "x")
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				a := time.Now()
				r0, w0 := sysrw()
				args := make([]any, 0, 5*256)
				for s := 0; s < len(b.Entries); s += 256 {
					args = args[:0]
					for j := s; j < s+256; j++ {
						e := &b.Entries[j]
						args = append(args, int64(e.Index), e.Identity[:], e.LeafHash[:], e.Sample, e.Data)
					}
					if _, err := tx.Exec(insertEntriesFull, args...); err != nil {
						t.Fatal(err)
					}
				}
				for _, tl := range b.Tiles {
					if _, err := tx.Exec("INSERT INTO tiles (level, idx, data) VALUES (?, ?, ?) ON CONFLICT (level, idx) DO UPDATE SET data = excluded.data", int64(tl.Level), int64(tl.Index), tl.Data); err != nil {
						t.Fatal(err)
					}
				}
				bb := time.Now()
				r1, w1 := sysrw()
				rIns += r1 - r0
				wIns += w1 - w0
				tIns += bb.Sub(a)
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				tCommit += time.Since(bb)
				r2, w2 := sysrw()
				rCom += r2 - r1
				wCom += w2 - w1
				g.apply(b)
			}
			if measure {
				el := time.Since(t0)
				t.Logf("%-60.60s size=%d: %.0f entries/s (gen incl), insert %.1fms commit %.1fms per batch; syscalls/batch: insert r%d w%d commit r%d w%d", cfg, g.size, float64(n*1024)/el.Seconds(), float64(tIns.Microseconds())/1000/float64(n), float64(tCommit.Microseconds())/1000/float64(n), rIns/int64(n), wIns/int64(n), rCom/int64(n), wCom/int64(n))
			}
		}
		run(prefillN/1024, false)
		run(50, true)
		close(stop)
		if ckpts > 0 {
			t.Logf("  background checkpoints: %d, avg %v", ckpts, time.Duration(ckptTime/ckpts))
		}
		fi, _ := os.Stat(path + "-wal")
		if fi != nil {
			t.Logf("  wal size %d MB", fi.Size()>>20)
		}
		db.Close()
	}
}

func sysrw() (r, w int64) {
	b, _ := os.ReadFile("/proc/self/io")
	for _, l := range strings.Split(string(b), "\n") {
		var v int64
		if _, err := fmt.Sscanf(l, "syscr: %d", &v); err == nil {
			r = v
		}
		if _, err := fmt.Sscanf(l, "syscw: %d", &v); err == nil {
			w = v
		}
	}
	return
}
