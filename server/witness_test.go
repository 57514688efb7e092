package server

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/store/witnessdb"
)

// witnessKeys writes a witness key and a log key into a new directory and
// returns their prefixes.
func witnessKeys(t *testing.T) (wit, lg string) {
	t.Helper()
	dir := t.TempDir()
	wit, lg = filepath.Join(dir, "wit"), filepath.Join(dir, "log")
	if _, err := keyfile.WriteWitness(wit, "witness.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := keyfile.WriteLog(lg, "log.example.com"); err != nil {
		t.Fatal(err)
	}
	return wit, lg
}

// TestServeWitness: the state directory is created with its database,
// the witness answers, a second witness on the same directory is refused
// (ErrLocked), and ServeWitness returns cleanly once ctx is done.
func TestServeWitness(t *testing.T) {
	wit, lg := witnessKeys(t)
	dir := filepath.Join(t.TempDir(), "state")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ServeWitness(ctx, WitnessOptions{Dir: dir, Listen: "127.0.0.1:0", KeyFile: wit + ".key", Logs: []string{lg + ".pub"},
			Ready: func(addr string) { ready <- addr }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("ServeWitness: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v, mode %v; want mode 0700", err, fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(dir, witnessdb.FileName)); err != nil {
		t.Fatalf("no database in the state directory: %v", err)
	}
	// Nothing cosigned yet: the witness says so for the log.
	resp, err := http.Post("http://"+addr+"/add-checkpoint", "text/plain", strings.NewReader("not a request"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST /add-checkpoint of garbage: %s, want 400", resp.Status)
	}
	err = ServeWitness(context.Background(), WitnessOptions{Dir: dir, Listen: "127.0.0.1:0", KeyFile: wit + ".key", Logs: []string{lg + ".pub"}})
	if !errors.Is(err, ErrLocked) {
		t.Errorf("second witness on %s: %v, want ErrLocked", dir, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeWitness after cancel: %v", err)
	}
}

// TestServeWitnessBadLogKey: a private key given as a log key is refused
// before the state directory is made, with a fix naming --log and exit 1.
func TestServeWitnessBadLogKey(t *testing.T) {
	wit, lg := witnessKeys(t)
	dir := filepath.Join(t.TempDir(), "state")
	err := ServeWitness(context.Background(), WitnessOptions{Dir: dir, Listen: "127.0.0.1:0", KeyFile: wit + ".key", Logs: []string{lg + ".key"}})
	var f interface {
		Hint() string
		ExitCode() int
	}
	if !errors.As(err, &f) || !strings.HasPrefix(err.Error(), "--log: ") {
		t.Fatalf("err = %v, want a --log error with a hint", err)
	}
	if !strings.Contains(f.Hint(), "--log takes public verifier keys") || f.ExitCode() != 1 {
		t.Errorf("hint %q, exit %d; want the .pub fix and 1", f.Hint(), f.ExitCode())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state directory made for a bad log key: %v", err)
	}
	err = ServeWitness(context.Background(), WitnessOptions{Dir: dir, Listen: "127.0.0.1:0", KeyFile: wit + ".key", Logs: []string{"not a key"}})
	if !errors.As(err, &f) || !strings.Contains(f.Hint(), "e.g. DIR/log.pub") {
		t.Errorf("err = %v, want the verifier key fix", err)
	}
}
