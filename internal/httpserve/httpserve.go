// Package httpserve is what every custody HTTP server (the log server, the
// witness) shares: the http.Server with its timeouts, listening, and
// serving until a context ends, then finishing the requests in flight.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server timeouts: a slow client cannot hold a connection for long.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	// ShutdownTimeout bounds finishing the requests in flight.
	ShutdownTimeout = 30 * time.Second
	// MaxHeaderBytes bounds a request's header.
	MaxHeaderBytes = 16 << 10
)

// New returns an http.Server for h with header, read, write and idle
// timeouts (a slow client cannot hold a connection), a header size limit,
// and the server's own errors in logger at level Warn.
func New(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// ListenError is the error of Listen: Err is net.Listen's error on Addr.
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string { return e.Err.Error() }
func (e *ListenError) Unwrap() error { return e.Err }

// Hint says what to do about the error, in the words of custody's flags.
func (e *ListenError) Hint() string {
	return fmt.Sprintf("is another server on %s? pick another --listen address", e.Addr)
}

// ExitCode is custody's exit code for the error: 1, a failure.
func (e *ListenError) ExitCode() int { return 1 }

// Listen listens on the TCP address addr; its error is a *ListenError.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ListenError{Addr: addr, Err: err}
	}
	return ln, nil
}

// Serve serves srv on ln until ctx is done, then logs "shutting down:
// finishing requests in flight" and shuts srv down, letting the requests
// in flight finish for at most timeout (0: ShutdownTimeout). It returns
// Serve's error if serving failed first, else Shutdown's (nil once every
// request finished in time). ln is closed when Serve returns.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, logger *slog.Logger, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight")
	if timeout <= 0 {
		timeout = ShutdownTimeout
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	serr := srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return serr
}
