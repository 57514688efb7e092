package cmd

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoChild runs `custody demo args…` as a child process with TMPDIR set to
// tmp, waits until it prints "serving until Ctrl-C", and returns it with
// the directory it printed and its stdout so far.
func demoChild(t *testing.T, tmp string, args ...string) (*exec.Cmd, string, string, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"demo", "--listen", "127.0.0.1:0", "--events", "300"}, args...)...)
	cmd.Env = append(os.Environ(), "CUSTODY_TEST_AS_MAIN=1", "TMPDIR="+tmp)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	type ready struct{ dir, out string }
	readyc := make(chan ready, 1)
	go func() {
		var out bytes.Buffer
		dir := ""
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line + "\n")
			if d, ok := strings.CutPrefix(line, "directory:  "); ok {
				dir, _, _ = strings.Cut(d, " (")
			}
			if line == "serving until Ctrl-C" {
				readyc <- ready{dir, out.String()}
				break
			}
		}
		io.Copy(io.Discard, stdout)
		close(readyc)
	}()
	select {
	case r, ok := <-readyc:
		if !ok {
			cmd.Wait()
			t.Fatalf("demo %v exited before serving:\n%s", args, stderr)
		}
		return cmd, r.dir, r.out, stderr
	case <-time.After(2 * time.Minute):
		t.Fatalf("demo %v did not start serving in 2 minutes:\n%s", args, stderr)
	}
	return nil, "", "", nil
}

// checkDemoReceipts checks that dir/receipts.jsonl holds one receipt per
// event (300), each verified by `custody verify receipt` with the log's key.
func checkDemoReceipts(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "receipts.jsonl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n != 300 || !bytes.HasSuffix(b, []byte("}\n")) {
		t.Fatalf("%s holds %d lines, want 300 receipts, one a line", p, n)
	}
	if code, out, stderr := run(t, "", "verify", "receipt", p, "--key", filepath.Join(dir, "log.pub")); code != 0 {
		t.Fatalf("verify receipt %s: exit %d\n%s%s", p, code, out, stderr)
	}
}

// TestDemoExit: the demo writes every receipt (not only the first
// request's) to receipts.jsonl; on SIGINT or SIGTERM it exits 0 and
// removes the temporary directory it created, but keeps a --dir.
func TestDemoExit(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd, dir, out, stderr := demoChild(t, tmp)
			if !strings.HasPrefix(dir, tmp+string(filepath.Separator)) || !strings.Contains(out, "(temporary: removed on Ctrl-C; pass --dir to keep the files)") {
				t.Fatalf("demo without --dir printed directory %q, want a temporary directory in %s:\n%s", dir, tmp, out)
			}
			checkDemoReceipts(t, dir)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("demo after %v: %v\n%s", sig, err, stderr)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("the temporary directory %s is still there after %v (%v)", dir, sig, err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Fatalf("%v left %d entries in TMPDIR, e.g. %s", sig, len(left), left[0].Name())
			}
			if !strings.Contains(stderr.String(), "custody demo: removed the temporary directory "+dir+"\n") {
				t.Errorf("no removal notice on stderr:\n%s", stderr)
			}
		})
	}
	t.Run("dir kept", func(t *testing.T) {
		tmp := t.TempDir()
		keep := filepath.Join(t.TempDir(), "demo")
		cmd, dir, out, stderr := demoChild(t, tmp, "--dir", keep)
		if dir != keep || strings.Contains(out, "temporary") {
			t.Fatalf("demo --dir %s printed directory %q:\n%s", keep, dir, out)
		}
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("demo after SIGINT: %v\n%s", err, stderr)
		}
		checkDemoReceipts(t, keep)
		if strings.Contains(stderr.String(), "removed") {
			t.Errorf("demo --dir claims to have removed something:\n%s", stderr)
		}
	})
}
