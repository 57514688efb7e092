package cmd

import (
	"bytes"
	"github.com/custodylog/custody/loadgen"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// TestCosignedCheckpointSurvivesRestart is the restart drill of a single
// node with a witness quorum: `serve --witness … --quorum 1` logs a clean
// workload; serve is stopped with SIGTERM, the witness too, and serve is
// started again. The first /checkpoint it serves carries the witness's
// cosignature (checked with x/mod's note and the trust policy); a mirror
// made from the store passes `custody audit --trust` (exit 0) and is byte
// for byte the mirror made from the served log; and `custody copy` carries
// every cosigned note into the new store, whose mirror is the same again.
func TestCosignedCheckpointSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	logV := initLog(t, logDir, "example.com/cosigned-restart")
	pub := filepath.Join(logDir, "log.pub")
	db := "sqlite:" + filepath.Join(logDir, "custody.db")
	wit := filepath.Join(dir, "wit")
	if code, _, stderr := run(t, "", "keygen", "--witness", "--origin", "witness.example.org/restart", "--out", wit); code != 0 {
		t.Fatal(stderr)
	}
	wvkey, err := os.ReadFile(wit + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	wv, err := verify.NewCosignatureVerifier(strings.TrimSpace(string(wvkey)))
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ := os.ReadFile(pub)
	trust := filepath.Join(dir, "trust.policy")
	writeFile(t, trust, []byte("log "+strings.TrimSpace(string(vkey))+"\nwitness w "+strings.TrimSpace(string(wvkey))+"\nquorum w\n"))
	policy := filepath.Join(dir, "policy.yaml")
	writeFile(t, policy, []byte(loadgen.DemoPolicy))

	w := startChild(t, "witness", "serve", "--dir", filepath.Join(dir, "wstate"), "--key", wit+".key", "--log", pub, "--listen", "127.0.0.1:0")
	tokens := writeTokens(t, dir)
	serveArgs := []string{"--dir", logDir, "--token-file", tokens, "--witness", "http://" + w.addr + "=" + wit + ".pub", "--quorum", "1"}
	srv := startServer(t, serveArgs...)

	// A workload the routing policy finds nothing wrong with.
	evs, _ := loadgen.Demo(7, 300, false, time.Now())
	var lines []string
	for _, ev := range evs {
		lines = append(lines, string(ev.Canonical()))
	}
	if code, _, stderr := run(t, strings.Join(lines, "\n")+"\n", "append", "--log", srv.url, "--token-file", tokens, "--batch", "64", "-"); code != 0 {
		t.Fatalf("append with a witness quorum: exit %d\n%s", code, stderr)
	}
	before := httpGet(t, srv.url+"/checkpoint")

	// SIGTERM serve and the witness; serve again, the witness stays down.
	for _, c := range []*os.Process{srv.cmd.Process, w.cmd.Process} {
		if err := c.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.logs)
	}
	w.cmd.Wait()
	srv = startServer(t, serveArgs...)

	first := httpGet(t, srv.url+"/checkpoint")
	if !bytes.Equal(first, before) {
		t.Fatalf("the first /checkpoint after the restart is\n%s\nwant the cosigned one served before\n%s", first, before)
	}
	n, err := note.Open(first, note.VerifierList(logV, wv))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("first /checkpoint after the restart: %v, %d verified signatures, want the log's and the witness's:\n%s", err, len(n.Sigs), first)
	}
	cp, err := verify.ParseCheckpoint([]byte(n.Text))
	if err != nil || cp.Size != uint64(len(evs)) {
		t.Fatalf("checkpoint size %d (%v), want %d", cp.Size, err, len(evs))
	}
	if code, out, stderr := run(t, "", "verify", "checkpoint", srv.url, "--trust", trust); code != 0 {
		t.Fatalf("verify checkpoint --trust after the restart: exit %d\n%s%s", code, out, stderr)
	}

	// Mirrors: from the store and from the served log, each verified with
	// the trust policy; the same bytes; the store's mirror audits clean.
	fromStore, fromLog := filepath.Join(dir, "m-store"), filepath.Join(dir, "m-log")
	if code, _, stderr := run(t, "", "mirror", "--store", db, "--key", pub, "--trust", trust, "--dir", fromStore); code != 0 {
		t.Fatalf("mirror --store --trust: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := run(t, "", "mirror", "--log", srv.url, "--key", pub, "--trust", trust, "--dir", fromLog); code != 0 {
		t.Fatalf("mirror --log --trust: exit %d\n%s", code, stderr)
	}
	sameFiles(t, fromStore, fromLog)
	if code, out, stderr := run(t, "", "audit", "--log", fromStore, "--trust", trust, "--policy", policy, "--no-state"); code != 0 {
		t.Fatalf("audit --trust of the mirror made from the store: exit %d\n%s%s", code, out, stderr)
	}

	// A copy carries every cosigned note, byte for byte.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	dst := "sqlite:" + filepath.Join(dir, "copy", "custody.db")
	os.MkdirAll(filepath.Join(dir, "copy"), 0o755)
	runCopyJSON(t, db, dst)
	src, cps := allCheckpoints(t, db), allCheckpoints(t, dst)
	if len(cps) != len(src) {
		t.Fatalf("the copy holds %d checkpoints, the source %d", len(cps), len(src))
	}
	cosigned := 0
	for i, c := range cps {
		if !bytes.Equal(c.Note, src[i].Note) {
			t.Errorf("checkpoint %d: the copy's note differs from the source's", c.Size)
		}
		if _, err := note.Open(c.Note, note.VerifierList(wv)); err == nil {
			cosigned++
		}
	}
	if cosigned == 0 || !bytes.Equal(cps[len(cps)-1].Note, first) {
		t.Fatalf("the copy holds %d cosigned notes; its latest is\n%s\nwant\n%s", cosigned, cps[len(cps)-1].Note, first)
	}
	fromCopy := filepath.Join(dir, "m-copy")
	if code, _, stderr := run(t, "", "mirror", "--store", dst, "--key", pub, "--trust", trust, "--dir", fromCopy); code != 0 {
		t.Fatalf("mirror --store (the copy) --trust: exit %d\n%s", code, stderr)
	}
	sameFiles(t, fromCopy, fromLog)
}
