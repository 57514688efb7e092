package cmd

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

func TestWitnessKeygenAndServe(t *testing.T) {
	dir := t.TempDir()
	wp, lp := filepath.Join(dir, "wit"), filepath.Join(dir, "log")
	code, out, errOut := run(t, "", "keygen", "--witness", "--origin", "witness.example.com", "--out", wp)
	if code != 0 {
		t.Fatalf("keygen --witness: %d %s", code, errOut)
	}
	wvkey := strings.TrimSpace(out)
	if _, err := verify.NewCosignatureVerifier(wvkey); err != nil {
		t.Fatalf("keygen --witness printed %q: %v", wvkey, err)
	}
	if b, _ := os.ReadFile(wp + ".pub"); strings.TrimSpace(string(b)) != wvkey {
		t.Fatalf("wit.pub %q, printed %q", b, wvkey)
	}
	if fi, err := os.Stat(wp + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("wit.key: %v %v", fi, err)
	}
	if code, _, _ := run(t, "", "keygen", "--origin", "log.example.com", "--out", lp); code != 0 {
		t.Fatal("keygen")
	}
	// A group-readable key is refused.
	os.Chmod(wp+".key", 0o644)
	if code, _, errOut := run(t, "", "witness", "serve", "--dir", filepath.Join(dir, "st"), "--key", wp+".key", "--log", lp+".pub", "--listen", "127.0.0.1:0"); code == 0 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("group-readable key: %d %s", code, errOut)
	}
	os.Chmod(wp+".key", 0o600)
	if code, hout, _ := run(t, "", "witness", "serve", "--help"); code != 0 || !strings.Contains(hout, "custody witness serve --dir") {
		t.Fatalf("--help: %d %s", code, hout)
	}

	w := startChild(t, "witness", "serve", "--dir", filepath.Join(dir, "st"), "--key", wp+".key", "--log", lp+".pub", "--listen", "127.0.0.1:0")
	cmd, addr := w.cmd, w.addr

	lkey, _ := os.ReadFile(lp + ".key")
	signer, err := note.NewSigner(strings.TrimSpace(string(lkey)))
	if err != nil {
		t.Fatal(err)
	}
	leaf := verify.LeafHash([]byte("x"))
	cp := verify.Checkpoint{Origin: "log.example.com", Size: 1, Root: leaf}
	msg, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, signer)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+addr+"/add-checkpoint", "text/plain", bytes.NewReader(append([]byte("old 0\n\n"), msg...)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("add-checkpoint: %d %s", resp.StatusCode, b)
	}
	v, _ := verify.NewCosignatureVerifier(wvkey)
	if _, err := note.Open(append(msg, b...), note.VerifierList(v)); err != nil {
		t.Fatalf("cosignature: %v", err)
	}
	resp, err = http.Post("http://"+addr+"/add-checkpoint", "text/plain", bytes.NewReader(append([]byte("old 0\n\n"), msg...)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 409 || resp.Header.Get("Content-Type") != "text/x.tlog.size" || string(b) != "1\n" {
		t.Fatalf("second old 0: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("witness after SIGTERM: %v", err)
	}
}
