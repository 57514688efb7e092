package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// TestMain lets the test binary act as the custody command, so tests can run
// it as a real child process (and SIGKILL it) without building anything.
func TestMain(m *testing.M) {
	if os.Getenv("CUSTODY_TEST_AS_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// run runs custody in-process and returns its exit code, stdout and stderr.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// server is a custody serve child process.
type server struct {
	cmd  *exec.Cmd
	addr string
	url  string
	logs *syncBuffer
}

// startServer runs `custody serve` as a child process and waits until it
// logs the address it listens on.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	cmd, addr, logs := startProcess(t, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	return &server{cmd: cmd, addr: addr, url: "http://" + addr, logs: logs}
}

// startProcess runs custody with args as a child process, waits until it
// logs "serving" with its address, and kills it at the end of the test if
// it is still running. Its stderr is kept in logs.
func startProcess(t *testing.T, args ...string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CUSTODY_TEST_AS_MAIN=1")
	stderr, err := cmd.StderrPipe()
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
	logs := &syncBuffer{}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write([]byte(sc.Text() + "\n"))
			var m struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Msg == "serving" {
				addrc <- m.Addr
			}
		}
		io.Copy(io.Discard, stderr)
		close(addrc)
	}()
	select {
	case a, ok := <-addrc:
		if !ok {
			cmd.Wait()
			t.Fatalf("custody %v exited before serving:\n%s", args, logs)
		}
		return cmd, a, logs
	case <-time.After(60 * time.Second):
		t.Fatalf("custody %v did not start in 60s:\n%s", args, logs)
	}
	return nil, "", nil
}

func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	s.cmd.Wait()
}

// initLog runs `custody init --dir logDir --origin origin [extra...]` and
// returns the new log's verifier.
func initLog(t *testing.T, logDir, origin string, extra ...string) note.Verifier {
	t.Helper()
	if code, _, stderr := run(t, "", append([]string{"init", "--dir", logDir, "--origin", origin}, extra...)...); code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	pub, err := os.ReadFile(filepath.Join(logDir, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func writeTokens(t *testing.T, dir string) string {
	p := dir + "/tokens.txt"
	if err := os.WriteFile(p, []byte("# test\n"+testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const testToken = "test-token-0123456789abcdef"

func eventLine(sample, action string, i int) string {
	return fmt.Sprintf(`{"sample":%q,"action":%q,"location":"ch-zrh-1","region":"EU","time":"2026-11-01T12:%02d:%02dZ","actor":"test"}`, sample, action, (i/60)%60, i%60)
}

// exists reports whether anything is at p, a symbolic link included (even
// a dangling one).
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
