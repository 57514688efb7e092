package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"github.com/custodylog/custody/client"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	code, stdout, stderr := run(t, "", "keygen", "--origin", "example.com/k", "--out", prefix)
	if code != 0 {
		t.Fatalf("keygen: %d %s", code, stderr)
	}
	fi, err := os.Stat(prefix + ".key")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	vkey := strings.TrimSpace(stdout)
	pub, _ := os.ReadFile(prefix + ".pub")
	if strings.TrimSpace(string(pub)) != vkey {
		t.Fatalf(".pub holds %q, stdout %q", pub, vkey)
	}
	// The pair works with x/mod: sign with the file's key, open with the vkey.
	skey, _ := os.ReadFile(prefix + ".key")
	s, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := note.Sign(&note.Note{Text: "hello\n"}, s)
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr, "PRIVATE") || strings.Contains(stdout, "PRIVATE") {
		t.Fatal("keygen printed the private key")
	}
	// Never overwrites.
	code, _, stderr = run(t, "", "keygen", "--origin", "example.com/k", "--out", prefix)
	if code == 0 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("second keygen: %d %s", code, stderr)
	}
	if after, _ := os.ReadFile(prefix + ".key"); !bytes.Equal(after, skey) {
		t.Fatal("the private key was overwritten")
	}
}

func TestInitRefusesExistingLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	if code, _, stderr := run(t, "", "init", "--dir", dir, "--origin", "example.com/i"); code != 0 {
		t.Fatal(stderr)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "log.key"))
	code, _, stderr := run(t, "", "init", "--dir", dir, "--origin", "example.com/other")
	if code == 0 {
		t.Fatal("init over an existing log succeeded")
	}
	golden(t, "init-existing.txt", strings.ReplaceAll(stderr, dir, "DIR"))
	if after, _ := os.ReadFile(filepath.Join(dir, "log.key")); !bytes.Equal(after, key) {
		t.Fatal("init changed the existing key")
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"init"}, "missing --dir or --origin"},
		{[]string{"serve"}, "missing --dir"},
		{[]string{"append", "--token-file", "x"}, "missing --log"},
		{[]string{"get", "--log", "http://127.0.0.1:1"}, "exactly one of INDEX and --sample"},
		{[]string{"keygen", "--bogus"}, "unknown flag"},
		{[]string{"get", "--log", "ftp://x", "0"}, "bad --log URL"},
	}
	for _, c := range cases {
		code, _, stderr := run(t, "", c.args...)
		if code != exitUsageIO || !strings.Contains(stderr, "custody: error: ") || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "custody: hint: ") {
			t.Errorf("custody %v: exit %d, stderr %q; want exit 3 with %q and a hint", c.args, code, stderr, c.want)
		}
	}
}

func TestServeRefusesReadableKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	run(t, "", "init", "--dir", dir, "--origin", "example.com/p")
	os.Chmod(filepath.Join(dir, "log.key"), 0o644)
	code, _, stderr := run(t, "", "serve", "--dir", dir, "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "readable by group or others") || !strings.Contains(stderr, "chmod 600") {
		t.Fatalf("serve with a 0644 key: %d %s", code, stderr)
	}
}

// TestServeAppendGet runs the README's flow: init, serve, append a file,
// append it again (same indexes, no growth), get a sample's chain.
func TestServeAppendGet(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	run(t, "", "init", "--dir", logDir, "--origin", "example.com/flow")
	tokens := writeTokens(t, dir)
	srv := startServer(t, "--dir", logDir, "--token-file", tokens)
	events := filepath.Join("..", "testdata", "events.jsonl")
	pub := filepath.Join(logDir, "log.pub")

	code, out1, stderr := run(t, "", "append", "--log", srv.url, "--token-file", tokens, "--key", pub, "--batch", "7", events)
	if code != 0 {
		t.Fatalf("append: %s", stderr)
	}
	in, _ := os.ReadFile(events)
	lines := strings.Split(strings.TrimSpace(string(in)), "\n")
	rs := receiptsOf(t, out1)
	if len(rs) != len(lines) {
		t.Fatalf("%d receipts for %d events", len(rs), len(lines))
	}
	v, _ := loadVerifier(pub)
	for i, r := range rs {
		if r.Index != uint64(i) {
			t.Fatalf("receipt %d has index %d", i, r.Index)
		}
		if _, _, err := verify.CheckReceipt(r, v.Name(), note.VerifierList(v), nil); err != nil {
			t.Fatal(err)
		}
	}
	code, out2, _ := run(t, "", "append", "--log", srv.url, "--token-file", tokens, events)
	rs2 := receiptsOf(t, out2)
	for i := range rs2 {
		if code != 0 || rs2[i].Index != rs[i].Index {
			t.Fatalf("re-append: event %d got index %d, first time %d", i, rs2[i].Index, rs[i].Index)
		}
	}
	var cp struct{ Size uint64 }
	cl, _ := newAPIClient(srv.url)
	cl.GetJSON(context.Background(), "/v1/stats", &cp)
	if cp.Size != uint64(len(lines)) {
		t.Fatalf("size %d after appending twice, want %d", cp.Size, len(lines))
	}
	code, out, stderr := run(t, "", "get", "--log", srv.url, "--sample", "smp-0001")
	if code != 0 {
		t.Fatal(stderr)
	}
	golden(t, "get-sample.txt", out)
	code, out, _ = run(t, "", "get", "--log", srv.url, "999")
	if code == 0 {
		t.Fatalf("get of a missing index succeeded: %s", out)
	}
	// A bad line: nothing sent from it on, the error names the line and field.
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(eventLine("new-1", "collected", 1)+"\n"+`{"sample":"x","action":"transferred","location":"de-fra-1","region":"EU","time":"2026-11-01T00:00:00Z","actor":"a"}`+"\n"), 0o644)
	code, _, stderr = run(t, "", "append", "--log", srv.url, "--token-file", tokens, bad)
	if code != exitUsageIO || !strings.Contains(stderr, "line 2") || !strings.Contains(stderr, `"to"`) {
		t.Fatalf("bad input: %d %s", code, stderr)
	}
	cl.GetJSON(context.Background(), "/v1/stats", &cp)
	if cp.Size != uint64(len(lines)) {
		t.Fatalf("a rejected file changed the log: size %d", cp.Size)
	}
}

func receiptsOf(t *testing.T, out string) []verify.Receipt {
	t.Helper()
	var rs []verify.Receipt
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r verify.Receipt
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("receipt line %q: %v", sc.Text(), err)
		}
		rs = append(rs, r)
	}
	return rs
}

// TestSIGTERMFinishesInFlight sends SIGTERM while clients append: the server
// exits 0, every receipt it handed out is in the log after a restart.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	run(t, "", "init", "--dir", logDir, "--origin", "example.com/term")
	tokens := writeTokens(t, dir)
	srv := startServer(t, "--dir", logDir, "--token-file", tokens, "--max-wait", "20ms")
	cl, _ := client.NewUnverified(srv.url, testToken, client.WithRetries(0))
	receipts := map[uint64][]byte{}
	got := make(chan []client.Receipt, 64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for c := 0; c < 4; c++ {
		go func(c int) {
			for n := 0; ctx.Err() == nil; n++ {
				lines := [][]byte{[]byte(eventLine("term-"+itoa(uint64(c))+"-"+itoa(uint64(n)), "collected", n))}
				rs, err := cl.AppendJSON(ctx, lines)
				if err != nil {
					return
				}
				got <- rs
			}
		}(c)
	}
	for n := 0; n < 40; n++ {
		for _, r := range <-got {
			receipts[r.Index] = r.Entry
		}
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := srv.cmd.Wait()
	cancel()
	if err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.logs)
	}
	if !strings.Contains(srv.logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop logged:\n%s", srv.logs)
	}
	for len(got) > 0 {
		for _, r := range <-got {
			receipts[r.Index] = r.Entry
		}
	}
	srv2 := startServer(t, "--dir", logDir)
	v, _ := loadVerifier(filepath.Join(logDir, "log.pub"))
	if n := checkAfterRestart(t, srv2.url, v, receipts, nil); n < 40 {
		t.Fatalf("only %d receipts checked", n)
	}
}

func TestSecondServeRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	run(t, "", "init", "--dir", dir, "--origin", "example.com/lock")
	startServer(t, "--dir", dir)
	code, _, stderr := run(t, "", "serve", "--dir", dir, "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "another process is serving from this directory") {
		t.Fatalf("second serve: %d %s", code, stderr)
	}
}
