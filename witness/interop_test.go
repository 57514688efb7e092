package witness_test

// Interop with a witness we did not write: transparency-dev's omniwitness,
// built from source with `go install` (never added to go.mod: as a library
// it would force newer formats and merkle versions on the module) and run
// as a separate process. The same requests go to our witness (in process)
// so that the two are compared answer for answer, and the cosignatures of
// both are checked with our verifier and our tlog-policy evaluation.
//
// The first run needs the Go module proxy; the binary is then cached under
// os.UserCacheDir()/custody-test. If it cannot be built the test is skipped
// loudly, unless CUSTODY_REQUIRE_OMNIWITNESS=1 makes that a failure.
// CUSTODY_OMNIWITNESS=/path/to/omniwitness uses a prebuilt binary.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	custodylog "github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/store/witnessdb"
	"github.com/custodylog/custody/verify"
	"github.com/custodylog/custody/witness"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	omniwitnessPkg     = "github.com/transparency-dev/witness/cmd/omniwitness"
	omniwitnessVersion = "v0.0.0-20260720115447-2e1c6971d19e"

	interopOrigin = "example.com/custody-interop-log"
	interopWitKey = "omniwitness.interop.example"
)

// skipOrFail skips the test with a message nobody can miss, or fails it
// when CUSTODY_REQUIRE_OMNIWITNESS=1.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CUSTODY_REQUIRE_OMNIWITNESS") == "1" {
		t.Fatal(msg)
	}
	banner := strings.Repeat("!", 72)
	t.Logf("\n%s\n%s\n%s", banner, msg, banner)
	fmt.Fprintf(os.Stderr, "\n%s\n%s: %s\n%s\n", banner, t.Name(), msg, banner)
	t.Skip(msg)
}

// omniwitnessBinary returns the path of an omniwitness binary, building and
// caching it on first use.
func omniwitnessBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CUSTODY_OMNIWITNESS"); p != "" {
		return p
	}
	exe := ""
	if runtime.GOOS == "windows" {
		exe = ".exe"
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	cacheDir := filepath.Join(cache, "custody-test")
	bin := filepath.Join(cacheDir, "omniwitness-"+omniwitnessVersion+exe)
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		skipOrFail(t, "SKIPPING: could not build omniwitness: cache directory: %v", err)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go"+exe)
	}
	// Install into a private directory next to the cache entry, then rename
	// it into place: concurrent test processes never see a partial binary.
	gobin, err := os.MkdirTemp(cacheDir, "build-")
	if err != nil {
		skipOrFail(t, "SKIPPING: could not build omniwitness: %v", err)
	}
	defer os.RemoveAll(gobin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, goTool, "install", omniwitnessPkg+"@"+omniwitnessVersion)
	// Outside the module, so our go.mod and go.sum are not touched.
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"GOBIN="+gobin,
		"GOWORK=off",
		"GO111MODULE=on",
		"GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		skipOrFail(t, "SKIPPING: could not build omniwitness: go install %s@%s: %v\n%s",
			omniwitnessPkg, omniwitnessVersion, err, out)
	}
	if err := os.Rename(filepath.Join(gobin, "omniwitness"+exe), bin); err != nil {
		skipOrFail(t, "SKIPPING: could not build omniwitness: caching the binary: %v", err)
	}
	t.Logf("built omniwitness %s in %v, cached as %s", omniwitnessVersion, time.Since(start).Round(time.Millisecond), bin)
	return bin
}

// syncBuffer collects a child process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startOmniwitness runs omniwitness on loopback ports with a fresh database,
// a fresh key and logVKey as its only extra log. It returns the base URL and
// the witness's cosignature/v1 (0x04) verifier key; the process is killed at
// the end of the test.
func startOmniwitness(t *testing.T, bin, logVKey string) (string, string) {
	t.Helper()
	return startOmniwitnessFor(t, bin, interopOrigin, logVKey)
}

// startOmniwitnessFor starts omniwitness trusting the log origin with key
// logVKey, and returns its base URL and cosignature verifier key.
func startOmniwitnessFor(t *testing.T, bin, origin, logVKey string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	skey, _, err := note.GenerateKey(rand.Reader, interopWitKey)
	if err != nil {
		t.Fatal(err)
	}
	// omniwitness keeps the key in x/mod's 0x01 form and cosigns with the
	// 0x04 key derived from it; so does our parser.
	_, witVKey, err := verify.NewCosignatureSignerFromKey(skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "witness.sec")
	if err := os.WriteFile(keyFile, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logsFile := filepath.Join(dir, "logs.yaml")
	logsYAML := fmt.Sprintf("Logs:\n  - Origin: %s\n    URL: https://log.invalid/custody-interop/\n    PublicKey: %s\n", origin, logVKey)
	if err := os.WriteFile(logsFile, []byte(logsYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, metrics := freeAddr(t), freeAddr(t)
	var output syncBuffer
	cmd := exec.Command(bin,
		"--listen", addr,
		"--metrics_listen", metrics,
		"--db_file", filepath.Join(dir, "witness.db"),
		"--private_key_path", keyFile,
		"--additional_logs", logsFile,
	)
	cmd.Dir = dir
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Start(); err != nil {
		skipOrFail(t, "SKIPPING: could not start omniwitness %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("omniwitness output:\n%s", output.String())
		}
	})

	base := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("omniwitness exited before listening (%v); output:\n%s", err, output.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("omniwitness not listening on %s after 30s: %v; output:\n%s", addr, err, output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return base, witVKey
}

// interopLog is a test log: entries, an x/mod note signer and the RFC 6962
// tree of transparency-dev/merkle's reference implementation.
type interopLog struct {
	t       *testing.T
	signer  note.Signer
	vkey    string
	entries [][]byte
	tree    *testonly.Tree
}

func newInteropLog(t *testing.T, n int) *interopLog {
	skey, vkey, err := note.GenerateKey(rand.Reader, interopOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &interopLog{t: t, signer: signer, vkey: vkey, tree: testonly.New(rfc6962.DefaultHasher)}
	for i := range n {
		e := fmt.Appendf(nil, "custody interop entry %d", i)
		l.entries = append(l.entries, e)
		l.tree.AppendData(e)
	}
	return l
}

// root is the RFC 6962 root of the first size entries, computed with our
// LeafHash and NodeHash and checked against the reference tree.
func (l *interopLog) root(size uint64) [32]byte {
	var level [][32]byte
	for _, e := range l.entries[:size] {
		level = append(level, verify.LeafHash(e))
	}
	var root [32]byte
	switch len(level) {
	case 0:
		root = verify.EmptyRoot
	default:
		root = mthHashes(level)
	}
	if ref := l.tree.HashAt(size); !bytes.Equal(ref, root[:]) {
		l.t.Fatalf("root of size %d: ours %x, transparency-dev/merkle %x", size, root, ref)
	}
	return root
}

func mthHashes(hs [][32]byte) [32]byte {
	if len(hs) == 1 {
		return hs[0]
	}
	k := 1
	for k<<1 < len(hs) {
		k <<= 1
	}
	return verify.NodeHash(mthHashes(hs[:k]), mthHashes(hs[k:]))
}

func (l *interopLog) checkpoint(size uint64) (verify.Checkpoint, []byte) {
	cp := verify.Checkpoint{Origin: interopOrigin, Size: size, Root: l.root(size)}
	signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return cp, signed
}

// proof is the consistency proof from old to size, from the reference
// tree, checked with our verifier.
func (l *interopLog) proof(old, size uint64) [][32]byte {
	if old == 0 {
		return nil
	}
	raw, err := l.tree.ConsistencyProof(old, size)
	if err != nil {
		l.t.Fatal(err)
	}
	p := make([][32]byte, len(raw))
	for i, h := range raw {
		p[i] = [32]byte(h)
	}
	if err := verify.CheckConsistency(old, size, l.root(old), l.root(size), p); err != nil {
		l.t.Fatalf("reference proof %d -> %d does not verify: %v", old, size, err)
	}
	return p
}

func addCheckpointBody(old uint64, proof [][32]byte, signed []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(signed)
	return b.Bytes()
}

type answer struct {
	status      int
	contentType string
	body        []byte
}

func postAddCheckpoint(t *testing.T, base string, body []byte) answer {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(base+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s/add-checkpoint: %v", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), b}
}

// checkCosignature checks that body holds exactly one cosignature line, by
// the witness of witVKey, that verifies with our cosignature verifier over
// signed, and returns the cosigned note.
func checkCosignature(t *testing.T, who, witVKey string, signed, body []byte) []byte {
	t.Helper()
	v, err := verify.NewCosignatureVerifier(witVKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(body, []byte("— "+v.Name()+" ")) || !bytes.HasSuffix(body, []byte("\n")) || bytes.Count(body, []byte("\n")) != 1 {
		t.Fatalf("%s: answer %q is not one cosignature line from %s", who, body, v.Name())
	}
	cosigned := append(bytes.Clone(signed), body...)
	n, err := note.Open(cosigned, note.VerifierList(v))
	if err != nil {
		t.Fatalf("%s: cosignature does not verify with verify.NewCosignatureVerifier(%s): %v\n%s", who, witVKey, err, cosigned)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Hash != v.KeyHash() {
		t.Fatalf("%s: verified signatures %+v, want just the cosignature", who, n.Sigs)
	}
	sig, err := base64.StdEncoding.DecodeString(n.Sigs[0].Base64)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := verify.CosignatureTime(sig[4:])
	if err != nil {
		t.Fatalf("%s: cosignature timestamp: %v", who, err)
	}
	if d := time.Since(ts); d < -time.Minute || d > 5*time.Minute {
		t.Errorf("%s: cosignature timestamp %v is %v away from now", who, ts, d)
	}
	return cosigned
}

func TestOmniwitnessCosignsOurCheckpoints(t *testing.T) {
	start := time.Now()
	bin := omniwitnessBinary(t)
	lg := newInteropLog(t, 13)
	omni, omniVKey := startOmniwitness(t, bin, lg.vkey)
	t.Logf("omniwitness up at %s after %v; cosignature vkey %s", omni, time.Since(start).Round(time.Millisecond), omniVKey)

	// Our witness, fed the same requests.
	oursKey, _, err := note.GenerateKey(rand.Reader, "custody.interop.example")
	if err != nil {
		t.Fatal(err)
	}
	oursSigner, oursVKey, err := verify.NewCosignatureSignerFromKey(oursKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	logVerifier, err := note.NewVerifier(lg.vkey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := witnessdb.Open(filepath.Join(t.TempDir(), witnessdb.FileName))
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.Open(witness.Config{State: st, Signer: oursSigner, Logs: []note.Verifier{logVerifier}})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	defer w.Close()
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	ours := srv.URL

	policy, err := verify.ParseTrustPolicy(fmt.Appendf(nil,
		"# the test log, omniwitness and our witness\n"+
			"log %s\n"+
			"witness omni %s %s\n"+
			"witness ours %s %s\n"+
			"group both all omni ours\n"+
			"quorum omni\n",
		lg.vkey, omniVKey, omni, oursVKey, ours))
	if err != nil {
		t.Fatal(err)
	}
	bothPolicy, err := verify.ParseTrustPolicy(fmt.Appendf(nil,
		"log %s\nwitness omni %s\nwitness ours %s\ngroup both all omni ours\nquorum both\n",
		lg.vkey, omniVKey, oursVKey))
	if err != nil {
		t.Fatal(err)
	}

	type result struct{ omni, ours answer }
	// both sends body to each witness and checks that both answer status.
	both := func(step string, body []byte, status int) result {
		t.Helper()
		r := result{postAddCheckpoint(t, omni, body), postAddCheckpoint(t, ours, body)}
		for _, x := range []struct {
			who string
			a   answer
		}{{"omniwitness", r.omni}, {"custody witness", r.ours}} {
			if x.a.status != status {
				t.Fatalf("%s: %s answered %d %q, want %d", step, x.who, x.a.status, x.a.body, status)
			}
		}
		return r
	}
	// cosigned checks a 200 from both and the trust policies on the
	// result, and returns the note with both cosignatures.
	cosigned := func(step string, r result, cp verify.Checkpoint, signed []byte) {
		t.Helper()
		withOmni := checkCosignature(t, step+": omniwitness", omniVKey, signed, r.omni.body)
		checkCosignature(t, step+": custody witness", oursVKey, signed, r.ours.body)
		res, err := policy.Evaluate(withOmni, cp, time.Now())
		if err != nil {
			t.Fatalf("%s: trust policy (quorum omni) rejects the omniwitness-cosigned checkpoint: %v", step, err)
		}
		if !res.Quorum || len(res.Witnesses) != 1 || res.Witnesses[0] != "omni" || res.Log != lg.vkey {
			t.Fatalf("%s: trust policy result %+v, want the log and witness omni", step, res)
		}
		if _, err := policy.Evaluate(signed, cp, time.Now()); err == nil {
			t.Fatalf("%s: trust policy accepts the checkpoint without any cosignature", step)
		}
		all := append(bytes.Clone(withOmni), r.ours.body...)
		if _, err := bothPolicy.Evaluate(withOmni, cp, time.Now()); err == nil {
			t.Fatalf("%s: quorum 'all of omni, ours' met with omniwitness's cosignature only", step)
		}
		res, err = bothPolicy.Evaluate(all, cp, time.Now())
		if err != nil || !res.Quorum || len(res.Witnesses) != 2 {
			t.Fatalf("%s: quorum 'all of omni, ours' on both cosignatures: %+v, %v\n%s", step, res, err, all)
		}
	}

	// 1. First sight, old 0, size 5.
	cp5, signed5 := lg.checkpoint(5)
	r := both("size 5 from old 0", addCheckpointBody(0, nil, signed5), http.StatusOK)
	cosigned("size 5", r, cp5, signed5)

	// 2. A tampered proof from 5 to 8 is refused and changes nothing.
	cp8, signed8 := lg.checkpoint(8)
	p := lg.proof(5, 8)
	bad := append([][32]byte(nil), p...)
	bad[len(bad)-1][0] ^= 1
	both("size 8, tampered proof from 5", addCheckpointBody(5, bad, signed8), http.StatusUnprocessableEntity)

	// 3. The right proof from 5 to 8.
	r = both("size 8 from 5", addCheckpointBody(5, p, signed8), http.StatusOK)
	cosigned("size 8", r, cp8, signed8)

	// 4. A tampered proof from 8 to 13.
	_, signed13 := lg.checkpoint(13)
	p = lg.proof(8, 13)
	p[0][31] ^= 0x80
	both("size 13, tampered proof from 8", addCheckpointBody(8, p, signed13), http.StatusUnprocessableEntity)

	// 5. old 0 again: 409 with the stored size, which is still 8.
	r = both("size 13 from old 0", addCheckpointBody(0, nil, signed13), http.StatusConflict)
	for who, a := range map[string]answer{"omniwitness": r.omni, "custody witness": r.ours} {
		if a.contentType != witness.SizeContentType || string(a.body) != "8\n" {
			t.Errorf("409 from %s: Content-Type %q, body %q; want %q, %q", who, a.contentType, a.body, witness.SizeContentType, "8\n")
		}
		if n, err := strconv.ParseUint(strings.TrimSuffix(string(a.body), "\n"), 10, 64); err != nil || n != 8 {
			t.Errorf("409 from %s: size %q does not parse as 8", who, a.body)
		}
	}

	// 6. A checkpoint of the same size with another root (a fork) is
	// refused by both.
	forkCP := verify.Checkpoint{Origin: interopOrigin, Size: 8, Root: lg.root(8)}
	forkCP.Root[0] ^= 1
	fork, err := note.Sign(&note.Note{Text: string(forkCP.Marshal())}, lg.signer)
	if err != nil {
		t.Fatal(err)
	}
	both("fork at size 8", addCheckpointBody(8, nil, fork), http.StatusUnprocessableEntity)

	t.Logf("omniwitness interop done in %v", time.Since(start).Round(time.Millisecond))
}

// TestOurLogCosignedByOmniwitness runs the custody log (log.Open with the
// SQLite store) with omniwitness as its only witness and a quorum of 1:
// every receipt carries omniwitness's cosignature, and our verifier accepts
// it under a trust policy that requires omniwitness. The checkpoints carry
// the sample index line, which omniwitness cosigns like the rest of the
// text (checked with x/mod).
func TestOurLogCosignedByOmniwitness(t *testing.T) {
	bin := omniwitnessBinary(t)
	const origin = "example.com/custody-omni"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	base, witVKey := startOmniwitnessFor(t, bin, origin, vkey)
	wv, err := verify.NewCosignatureVerifier(witVKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "custody.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := custodylog.Create(ctx, st, signer); err != nil {
		t.Fatal(err)
	}
	l, err := custodylog.Open(ctx, custodylog.Config{Store: st, Signer: signer, Verifier: verifier,
		Witnesses: []custodylog.Witness{{URL: base, Verifier: wv}}, Quorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	trust, err := verify.ParseTrustPolicy([]byte("log " + vkey + "\nwitness omni " + witVKey + "\nquorum omni\n"))
	if err != nil {
		t.Fatal(err)
	}
	for round, n := range []int{5, 8} { // the second round needs a consistency proof
		evs := make([]record.Event, n)
		for i := range evs {
			evs[i] = record.Event{Sample: fmt.Sprintf("omni-%d-%d", round, i), Action: record.Collected, Location: "ch-zrh-1", Region: "EU", Time: time.Now().UTC().Add(-time.Minute), Actor: "interop"}
		}
		rs, err := l.AddMany(ctx, evs)
		if err != nil {
			t.Fatalf("round %d: AddMany with omniwitness as the quorum: %v", round, err)
		}
		for _, r := range rs {
			if _, _, err := verify.CheckReceipt(r, origin, note.VerifierList(verifier), trust); err != nil {
				t.Fatalf("round %d: receipt %d under a policy requiring omniwitness: %v\n%s", round, r.Index, err, r.Checkpoint)
			}
			checkIndexLineCosigned(t, []byte(r.Checkpoint), verifier, wv)
		}
	}
	if got := l.Checkpoint().Size; got != 13 {
		t.Fatalf("size %d, want 13", got)
	}
}

// checkIndexLineCosigned checks, with x/mod's note and tlog only, that a
// checkpoint omniwitness cosigned carries the sample index line as its
// fourth line (the log's store keeps the index), and that its first three
// lines are still the standard ones: x/mod opens the note with the log's
// key and the witness's cosignature, and tlog.ParseTree reads the size and
// root.
func checkIndexLineCosigned(t *testing.T, signed []byte, logV, witV note.Verifier) {
	t.Helper()
	n, err := note.Open(signed, note.VerifierList(logV, witV))
	if err != nil {
		t.Fatalf("x/mod note.Open(cosigned checkpoint): %v\n%s", err, signed)
	}
	if len(n.Sigs) != 2 {
		t.Fatalf("x/mod verified %d signatures, want the log's and omniwitness's", len(n.Sigs))
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) != 4 || lines[0] != logV.Name() || !strings.HasPrefix(lines[3], "custody-sample-index ") {
		t.Fatalf("cosigned checkpoint %q: want origin, size, root and the custody-sample-index line", n.Text)
	}
	if _, err := tlog.ParseTree([]byte("go.sum database tree\n" + lines[1] + "\n" + lines[2] + "\n")); err != nil {
		t.Fatalf("x/mod tlog.ParseTree of the size and root lines: %v", err)
	}
}
