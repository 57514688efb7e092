// Package demo is the orchestration of custody demo: the files it writes,
// the witness it runs in process and the workload it appends through the
// HTTP API. The command keeps the flags, the output and the exit codes.
package demo

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/custodylog/custody/client"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store/witnessdb"
	wsrv "github.com/custodylog/custody/witness"
	"golang.org/x/mod/sumdb/note"
)

// WriteToken writes a new random bearer token (32 bytes, hex) to path,
// mode 0600, and returns it.
func WriteToken(path string) (string, error) {
	tok := make([]byte, 32)
	crand.Read(tok)
	token := hex.EncodeToString(tok)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", err
	}
	return token, nil
}

// StartWitness serves a witness signing with signer, cosigning the logs
// whose keys are logs, on a free port of 127.0.0.1, its state in
// DIR/witness.d (witness.Serve). It returns the witness's URL and stop,
// which shuts the witness down (bounded by server.ShutdownTimeout) and
// closes its state; stop must be called once StartWitness succeeded.
func StartWitness(dir string, signer note.Signer, logs []note.Verifier, logger *slog.Logger) (url string, stop func(), err error) {
	wdir := filepath.Join(dir, "witness.d")
	if err := os.MkdirAll(wdir, 0o700); err != nil {
		return "", nil, err
	}
	wst, err := witnessdb.Open(filepath.Join(wdir, witnessdb.FileName))
	if err != nil {
		return "", nil, err
	}
	s, addr, err := Start(context.Background(), func(ctx context.Context, ready chan<- string) error {
		return wsrv.Serve(ctx, wsrv.ServeConfig{Config: wsrv.Config{State: wst, Signer: signer, Logs: logs, Logger: logger},
			Listen: "127.0.0.1:0", Ready: func(addr string) { ready <- addr }})
	})
	if err != nil {
		return "", nil, err
	}
	return "http://" + addr, func() { s.Stop(nil) }, nil
}

// AppendAll appends events through cl, batch at a time, and writes every
// receipt to path (created or truncated), one JSON object a line, in the
// order of the events. progress, if set, is called after each batch with
// the number of events appended so far.
func AppendAll(ctx context.Context, cl *client.Client, events []record.Event, batch int, path string, progress func(done int)) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer f.Close()
	for i := 0; i < len(events); i += batch {
		rs, err := cl.Append(ctx, events[i:min(i+batch, len(events))])
		if err != nil {
			return fmt.Errorf("appending events: %w", err)
		}
		var b []byte
		for _, r := range rs {
			j, _ := json.Marshal(r.Receipt)
			b = append(append(b, j...), '\n')
		}
		if _, err := f.Write(b); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if progress != nil {
			progress(i + len(rs))
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Server is a server Start runs in the background.
type Server struct {
	cancel context.CancelFunc
	errc   chan error
}

// Start runs run in a goroutine, with a context derived from ctx that
// Stop cancels, and returns once run sent the address it serves on to
// ready (Start returns it) or returned (Start returns its error, and the
// server is gone). After a nil error the caller must call Stop or Wait.
func Start(ctx context.Context, run func(ctx context.Context, ready chan<- string) error) (*Server, string, error) {
	sctx, cancel := context.WithCancel(ctx)
	s := &Server{cancel: cancel, errc: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { s.errc <- run(sctx, ready) }()
	select {
	case addr := <-ready:
		return s, addr, nil
	case err := <-s.errc:
		cancel()
		return nil, "", err
	}
}

// Stop stops the server and waits for run to return; it returns err if
// not nil, else run's error.
func (s *Server) Stop(err error) error {
	s.cancel()
	if serr := <-s.errc; err == nil {
		err = serr
	}
	return err
}

// Wait serves until ctx is done (then it is Stop(nil)) or run returns
// (then it is run's error).
func (s *Server) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return s.Stop(nil)
	case err := <-s.errc:
		s.cancel()
		return err
	}
}
