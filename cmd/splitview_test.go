package cmd

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// child is a custody child process that logs "serving" with its address.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	cmd, addr, _ := startProcess(t, args...)
	return &child{cmd: cmd, addr: addr}
}

func addCheckpoint(t *testing.T, addr string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestSplitViewIsCaught runs the whole story with real processes: a log
// served with a witness quorum hands out cosigned receipts; the operator
// then signs a second tree of the same size (a split view): the witness
// refuses it with 422, also after being killed with SIGKILL and restarted,
// and an auditor who requires the witness rejects the uncosigned fork.
func TestSplitViewIsCaught(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	wit := filepath.Join(dir, "wit")
	run(t, "", "init", "--dir", logDir, "--origin", "example.com/split")
	if code, _, stderr := run(t, "", "keygen", "--witness", "--origin", "witness.example.org/w1", "--out", wit); code != 0 {
		t.Fatal(stderr)
	}
	pub := filepath.Join(logDir, "log.pub")
	wargs := []string{"witness", "serve", "--dir", filepath.Join(dir, "wstate"), "--key", wit + ".key", "--log", pub, "--listen", "127.0.0.1:0"}
	w := startChild(t, wargs...)
	tokens := writeTokens(t, dir)
	srv := startServer(t, "--dir", logDir, "--token-file", tokens, "--witness", "http://"+w.addr+"="+wit+".pub", "--quorum", "1")

	// Cosigned receipts, checked against a policy that requires the witness.
	events := filepath.Join(dir, "events.jsonl")
	var lines []string
	for i := 0; i < 20; i++ {
		lines = append(lines, eventLine("split-"+itoa(uint64(i)), "collected", i))
	}
	os.WriteFile(events, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	code, out, stderr := run(t, "", "append", "--log", srv.url, "--token-file", tokens, events)
	if code != 0 {
		t.Fatalf("append with a witness quorum: %s", stderr)
	}
	vkey, _ := os.ReadFile(pub)
	wvkey, _ := os.ReadFile(wit + ".pub")
	policy := filepath.Join(dir, "trust.policy")
	os.WriteFile(policy, []byte("log "+strings.TrimSpace(string(vkey))+"\nwitness w1 "+strings.TrimSpace(string(wvkey))+"\nquorum w1\n"), 0o644)
	receipts := filepath.Join(dir, "receipts.jsonl")
	os.WriteFile(receipts, []byte(out), 0o644)
	if code, _, stderr := run(t, "", "verify", "receipt", receipts, "--trust", policy); code != 0 {
		t.Fatalf("cosigned receipts do not pass the trust policy: %s", stderr)
	}

	// The split view: a validly signed checkpoint of the same size with
	// another root.
	real := httpGet(t, srv.url+"/checkpoint")
	v, _ := loadVerifier(pub)
	cp, _, err := verify.OpenCheckpoint(real, v.Name(), note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	skey, _ := os.ReadFile(filepath.Join(logDir, "log.key"))
	signer, _ := note.NewSigner(strings.TrimSpace(string(skey)))
	forked := cp
	forked.Root[0] ^= 1
	fork, _ := note.Sign(&note.Note{Text: string(forked.Marshal())}, signer)
	body := append([]byte("old "+itoa(cp.Size)+"\n\n"), fork...)
	if code, b := addCheckpoint(t, w.addr, body); code != http.StatusUnprocessableEntity {
		t.Fatalf("witness on a split view: %d %s, want 422", code, b)
	}
	// SIGKILL the witness and restart it on the same state: still 422.
	w.cmd.Process.Kill()
	w.cmd.Wait()
	w = startChild(t, wargs...)
	if code, b := addCheckpoint(t, w.addr, body); code != http.StatusUnprocessableEntity {
		t.Fatalf("restarted witness on a split view: %d %s, want 422", code, b)
	}
	// Nor does it go back to size 0 and accept the fork from scratch.
	if code, b := addCheckpoint(t, w.addr, append([]byte("old 0\n\n"), fork...)); code != http.StatusConflict {
		t.Fatalf("restarted witness, old 0: %d %s, want 409", code, b)
	}

	// An auditor who requires the witness, shown the fork (a mirror whose
	// checkpoint is the forked one, uncosigned), exits 2.
	srv.cmd.Process.Kill()
	srv.cmd.Wait()
	srv = startServer(t, "--dir", logDir)
	k := logKey{verifier: v}
	mdir, _ := mirror(t, srv.url, k)
	writeFile(t, filepath.Join(mdir, "checkpoint"), fork)
	state := t.TempDir()
	code, _, stderr = run(t, "", "audit", "--log", mdir, "--trust", policy, "--policy", auditPolicy(t), "--state", state)
	wantFailure(t, code, stderr, state, verify.EvidenceQuorum)
}

// TestServeTrustPolicyWitnesses: `serve --trust POLICY` takes the witnesses
// (with their URLs) and the quorum from a C2SP tlog-policy file.
func TestServeTrustPolicyWitnesses(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	wit := filepath.Join(dir, "wit")
	run(t, "", "init", "--dir", logDir, "--origin", "example.com/trusted")
	run(t, "", "keygen", "--witness", "--origin", "witness.example.org/w2", "--out", wit)
	pub := filepath.Join(logDir, "log.pub")
	w := startChild(t, "witness", "serve", "--dir", filepath.Join(dir, "wstate"), "--key", wit+".key", "--log", pub, "--listen", "127.0.0.1:0")
	vkey, _ := os.ReadFile(pub)
	wvkey, _ := os.ReadFile(wit + ".pub")
	policy := filepath.Join(dir, "trust.policy")
	os.WriteFile(policy, []byte("log "+strings.TrimSpace(string(vkey))+"\nwitness w2 "+strings.TrimSpace(string(wvkey))+" http://"+w.addr+"\nquorum w2\n"), 0o644)
	tokens := writeTokens(t, dir)
	srv := startServer(t, "--dir", logDir, "--token-file", tokens, "--trust", policy)
	code, out, stderr := run(t, eventLine("trusted-1", "collected", 1)+"\n", "append", "--log", srv.url, "--token-file", tokens, "-")
	if code != 0 {
		t.Fatalf("append: %s", stderr)
	}
	receipts := filepath.Join(dir, "r.jsonl")
	os.WriteFile(receipts, []byte(out), 0o644)
	if code, _, stderr := run(t, "", "verify", "receipt", receipts, "--trust", policy); code != 0 {
		t.Fatalf("receipt from a log serving with --trust does not meet the quorum: %s", stderr)
	}
	if code, _, _ := run(t, "", "verify", "checkpoint", srv.url, "--trust", policy); code != 0 {
		t.Fatalf("/checkpoint of a log serving with --trust does not meet the quorum")
	}
}
