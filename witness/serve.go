package witness

import (
	"context"
	"log/slog"
	"time"

	"github.com/custodylog/custody/internal/httpserve"
)

// ServeConfig configures Serve.
type ServeConfig struct {
	// Config is the witness's: its State, Signer, Logs and Logger.
	Config
	// Listen is the TCP address to serve on.
	Listen string
	// VKey, if set, is the witness's verifier key, logged with "serving".
	VKey string
	// Ready, if set, is called with the bound address once serving.
	Ready func(addr string)
	// ShutdownTimeout bounds finishing the requests in flight once ctx is
	// done (0: 30 seconds).
	ShutdownTimeout time.Duration
}

// ListenError is Serve's error when it cannot listen on ServeConfig.Listen.
type ListenError = httpserve.ListenError

// Serve opens the witness (Open), serves its Handler on cfg.Listen with
// the timeouts of every custody server until ctx is done, then finishes
// the requests in flight (at most cfg.ShutdownTimeout) and closes the
// witness. cfg.State is closed before Serve returns, whatever happens
// (Open failing included). It logs "serving" (with the bound "addr"), then "stopped".
func Serve(ctx context.Context, cfg ServeConfig) error {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w, err := Open(cfg.Config)
	if err != nil {
		if cfg.State != nil {
			cfg.State.Close()
		}
		return err
	}
	defer w.Close()
	ln, err := httpserve.Listen(cfg.Listen)
	if err != nil {
		return err
	}
	origins := make([]string, 0, len(cfg.Logs))
	for _, v := range cfg.Logs {
		origins = append(origins, v.Name())
	}
	logger.Info("serving", "witness", w.Name(), "vkey", cfg.VKey, "addr", ln.Addr().String(), "logs", origins)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	if err := httpserve.Serve(ctx, httpserve.New(w.Handler(), logger), ln, logger, cfg.ShutdownTimeout); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}
