package verify

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestHTTPSource(t *testing.T) {
	ctx := context.Background()
	big := bytes.Repeat([]byte{1}, maxHashTileSize+1)
	full := bytes.Repeat([]byte{2}, maxHashTileSize)
	var gotAccept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAccept = r.Header.Get("Accept-Encoding")
		switch r.URL.Path {
		case "/prefix/checkpoint":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(gzipBytes([]byte("gzipped checkpoint\n")))
		case "/prefix/tile/0/000":
			w.Write(full)
		case "/prefix/tile/0/001":
			w.Write(big)
		case "/prefix/tile/0/002":
			// A gzip bomb: small on the wire, too big decoded.
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(gzipBytes(big))
		case "/prefix/tile/0/003":
			w.Header().Set("Content-Encoding", "br")
			w.Write(full)
		case "/prefix/tile/0/004":
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case "/prefix/tile/entries/000":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write([]byte("not gzip"))
		case "/prefix/tile/entries/001":
			w.Write(bytes.Repeat([]byte{3}, maxHashTileSize+1)) // bundles may be larger
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	for _, base := range []string{srv.URL + "/prefix", srv.URL + "/prefix/"} {
		src := NewHTTPSource(base, srv.Client())
		cp, err := src.ReadCheckpoint(ctx)
		if err != nil || string(cp) != "gzipped checkpoint\n" {
			t.Errorf("ReadCheckpoint = %q, %v", cp, err)
		}
		// The test server is on the loopback interface: no compression
		// is asked for (a gzipped answer is decoded all the same).
		if gotAccept != "identity" {
			t.Errorf("Accept-Encoding %q to a loopback server, want identity", gotAccept)
		}
		if b, err := src.ReadTile(ctx, TileAddr{Level: 0, Index: 0}); err != nil || !bytes.Equal(b, full) {
			t.Errorf("tile 0: %d bytes, %v", len(b), err)
		}
		for i, want := range map[uint64]string{1: "limit", 2: "limit", 3: "Content-Encoding", 4: "503"} {
			_, err := src.ReadTile(ctx, TileAddr{Level: 0, Index: i})
			if err == nil || !strings.Contains(err.Error(), want) || errors.Is(err, ErrTileNotFound) {
				t.Errorf("tile %d: %v, want error containing %q", i, err, want)
			}
			if err != nil && !strings.Contains(err.Error(), srv.URL+"/prefix/tile/0/00") {
				t.Errorf("tile %d: error %q does not name the URL", i, err)
			}
		}
		if _, err := src.ReadTile(ctx, TileAddr{Entries: true, Index: 0}); err == nil {
			t.Error("bad gzip accepted")
		}
		if b, err := src.ReadTile(ctx, TileAddr{Entries: true, Index: 1}); err != nil || len(b) != maxHashTileSize+1 {
			t.Errorf("bundle: %d bytes, %v", len(b), err)
		}
		_, err = src.ReadTile(ctx, TileAddr{Level: 1, Index: 5, Width: 3})
		if !errors.Is(err, ErrTileNotFound) || !strings.Contains(err.Error(), "/prefix/tile/1/005.p/3") || !strings.Contains(err.Error(), "404") {
			t.Errorf("missing tile: %v", err)
		}
		if _, err := src.ReadTile(ctx, TileAddr{Level: 0, Width: 256}); err == nil {
			t.Error("invalid address accepted")
		}
	}
	// A missing checkpoint is an error but not a missing tile.
	src := NewHTTPSource(srv.URL+"/elsewhere", nil)
	if _, err := src.ReadCheckpoint(ctx); err == nil || errors.Is(err, ErrTileNotFound) || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing checkpoint: %v", err)
	}
	// A cancelled context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := NewHTTPSource(srv.URL+"/prefix", nil).ReadCheckpoint(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestHTTPSourceAcceptEncoding checks that gzip is asked for from a log
// elsewhere and not from one on the loopback interface.
func TestHTTPSourceAcceptEncoding(t *testing.T) {
	for _, tc := range []struct {
		base, want string
	}{
		{"https://log.example.com/prefix", "gzip, identity"},
		{"http://192.0.2.7:8080", "gzip, identity"},
		{"http://[2001:db8::1]:8080", "gzip, identity"},
		{"http://128.0.0.1", "gzip, identity"},
		{"http://localhost.example.com", "gzip, identity"},
		{"http://127.0.0.1:8080", "identity"},
		{"http://127.9.8.7", "identity"},
		{"http://[::1]:18000/log", "identity"},
		{"http://LocalHost:80", "identity"},
	} {
		var got string
		c := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r.Header.Get("Accept-Encoding")
			return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("cp\n")), Request: r}, nil
		})}
		b, err := NewHTTPSource(tc.base, c).ReadCheckpoint(context.Background())
		if err != nil || string(b) != "cp\n" {
			t.Errorf("%s: ReadCheckpoint = %q, %v", tc.base, b, err)
		}
		if got != tc.want {
			t.Errorf("%s: Accept-Encoding %q, want %q", tc.base, got, tc.want)
		}
	}
}

// TestHTTPSourceTransport checks that a client without a Transport gets
// one keeping enough idle connections for a Client's concurrent reads, and
// that a caller's own Transport is kept.
func TestHTTPSourceTransport(t *testing.T) {
	own := &http.Transport{}
	for _, tc := range []struct {
		name string
		c    *http.Client
		want http.RoundTripper
	}{
		{"nil client", nil, defaultTransport()},
		{"no transport", &http.Client{Timeout: time.Minute}, defaultTransport()},
		{"default transport", &http.Client{Transport: http.DefaultTransport}, defaultTransport()},
		{"own transport", &http.Client{Transport: own}, own},
	} {
		var before http.RoundTripper
		if tc.c != nil {
			before = tc.c.Transport
		}
		s := NewHTTPSource("http://log.example", tc.c).(*httpSource)
		if s.c.Transport != tc.want {
			t.Errorf("%s: Transport %p, want %p", tc.name, s.c.Transport, tc.want)
		}
		if tc.c != nil && tc.c.Transport != before {
			t.Errorf("%s: the caller's client was changed", tc.name)
		}
	}
	if n := defaultTransport().MaxIdleConnsPerHost; n < max(entriesPrefetch, runtime.GOMAXPROCS(0)) {
		t.Errorf("default transport keeps %d idle connections per host, fewer than a Client's workers", n)
	}
}

// TestHTTPSourceLength checks that bodies of every size around the
// announced length are read whole, and that a server sending more than it
// announced cannot get past the size limit.
func TestHTTPSourceLength(t *testing.T) {
	full := bytes.Repeat([]byte{9}, maxHashTileSize)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Path == "/tile/0/000" {
			w.Header().Set("Content-Length", strconv.Itoa(len(full)))
			w.Write(full)
			return
		}
		b := bytes.Repeat([]byte{5}, n)
		w.Write(b) // no Content-Length for large n: chunked
	}))
	defer srv.Close()
	src := NewHTTPSource(srv.URL, srv.Client()).(*httpSource)
	for _, n := range []int{0, 1, 511, 512, 513, 4096, 70000, maxCheckpointSize} {
		b, err := src.get(context.Background(), srv.URL+"/x?n="+strconv.Itoa(n), maxCheckpointSize, false)
		if err != nil || len(b) != n {
			t.Errorf("body of %d bytes: got %d, %v", n, len(b), err)
		}
	}
	if _, err := src.get(context.Background(), srv.URL+"/x?n="+strconv.Itoa(maxCheckpointSize+1), maxCheckpointSize, false); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("body over the limit: %v", err)
	}
	if b, err := src.ReadTile(context.Background(), TileAddr{}); err != nil || !bytes.Equal(b, full) {
		t.Errorf("tile with Content-Length: %d bytes, %v", len(b), err)
	}
}

func TestDirSource(t *testing.T) {
	ctx := context.Background()
	dir := writeDir(t, map[string][]byte{
		"checkpoint":            []byte("cp\n"),
		"tile/0/x001/234.p/7":   bytes.Repeat([]byte{1}, 7*32),
		"tile/0/000":            bytes.Repeat([]byte{1}, maxHashTileSize+1),
		"tile/entries/x001/234": []byte("bundle"),
	})
	src := NewDirSource(dir)
	if b, err := src.ReadCheckpoint(ctx); err != nil || string(b) != "cp\n" {
		t.Errorf("ReadCheckpoint = %q, %v", b, err)
	}
	if b, err := src.ReadTile(ctx, TileAddr{Index: 1234, Width: 7}); err != nil || len(b) != 7*32 {
		t.Errorf("partial tile: %d, %v", len(b), err)
	}
	if b, err := src.ReadTile(ctx, TileAddr{Entries: true, Index: 1234}); err != nil || string(b) != "bundle" {
		t.Errorf("bundle: %q, %v", b, err)
	}
	if _, err := src.ReadTile(ctx, TileAddr{}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversize tile: %v", err)
	}
	if _, err := src.ReadTile(ctx, TileAddr{Index: 1234}); !errors.Is(err, ErrTileNotFound) {
		t.Errorf("missing tile: %v", err)
	}
	if _, err := NewDirSource(filepath.Join(dir, "nope")).ReadCheckpoint(ctx); err == nil || errors.Is(err, ErrTileNotFound) {
		t.Errorf("missing checkpoint: %v", err)
	}
}

func TestOpenSource(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]string{
		"https://log.example/prefix": "*verify.httpSource",
		"HTTP://log.example":         "*verify.httpSource",
		dir:                          "*verify.dirSource",
	} {
		src, err := OpenSource(s, nil)
		if err != nil {
			t.Errorf("OpenSource(%q): %v", s, err)
			continue
		}
		if got := typeName(src); got != want {
			t.Errorf("OpenSource(%q) = %s, want %s", s, got, want)
		}
	}
	for _, s := range []string{"https://", "http://log.example/?q=1", file, filepath.Join(dir, "missing"), "log.example/prefix"} {
		if src, err := OpenSource(s, nil); err == nil {
			t.Errorf("OpenSource(%q) = %s, want error", s, typeName(src))
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *httpSource:
		return "*verify.httpSource"
	case *dirSource:
		return "*verify.dirSource"
	}
	return "other"
}

// TestDirSourceStaysInside hands the auditor a log directory whose
// checkpoint and tiles are symbolic links to a secret file outside it, to
// /proc/self/environ, and FIFOs and a device: nothing outside the directory
// is read, nothing blocks (the FIFO has no writer, so an open without
// O_NONBLOCK would wait forever), and the errors say why.
func TestDirSourceStaysInside(t *testing.T) {
	// The deadline only bounds how long a read that blocks (the bug) holds
	// the test; a correct read returns at once.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	const secretText = "AWS_SECRET_ACCESS_KEY=do-not-leak\n"
	if err := os.WriteFile(secret, []byte(secretText), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"symlink to a secret file", func(t *testing.T, p string) { mustSymlink(t, secret, p) }, "outside the log directory"},
		{"relative symlink up and out", func(t *testing.T, p string) {
			rel, err := filepath.Rel(filepath.Dir(p), secret)
			if err != nil {
				t.Fatal(err)
			}
			mustSymlink(t, rel, p)
		}, "outside the log directory"},
		{"symlink to /proc/self/environ", func(t *testing.T, p string) { mustSymlink(t, "/proc/self/environ", p) }, "outside the log directory"},
		{"FIFO", func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "FIFO"},
		{"symlink to a FIFO inside", func(t *testing.T, p string) {
			fifo := filepath.Join(filepath.Dir(p), "fifo")
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Fatal(err)
			}
			mustSymlink(t, "fifo", p)
		}, "FIFO"},
		{"directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, addr := range []*TileAddr{nil, {Level: 0, Index: 0}, {Entries: true, Index: 0}} {
				dir := t.TempDir()
				name := "checkpoint"
				if addr != nil {
					name = filepath.FromSlash(addr.Path())
				}
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				tc.make(t, p)
				src := NewDirSource(dir)
				type result struct {
					b   []byte
					err error
				}
				done := make(chan result, 1)
				go func() {
					var r result
					if addr == nil {
						r.b, r.err = src.ReadCheckpoint(ctx)
					} else {
						r.b, r.err = src.ReadTile(ctx, *addr)
					}
					done <- r
				}()
				var b []byte
				var err error
				select {
				case r := <-done:
					b, err = r.b, r.err
				case <-ctx.Done():
					t.Fatalf("%s: reading it still blocks at the test's deadline", name)
				}
				if err == nil || b != nil {
					t.Fatalf("%s: read %q, %v; want an error", name, b, err)
				}
				if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
					t.Errorf("%s: error %q does not say %q and name the directory", name, err, tc.want)
				}
				if strings.Contains(err.Error(), "do-not-leak") || errors.Is(err, ErrTileNotFound) {
					t.Errorf("%s: error %q", name, err)
				}
			}
		})
	}

	// A device node, where the test may create one (as root).
	dir := t.TempDir()
	if err := syscall.Mknod(filepath.Join(dir, "checkpoint"), syscall.S_IFCHR|0o644, 1<<8|3); err == nil { // like /dev/null
		if _, err := NewDirSource(dir).ReadCheckpoint(ctx); !errors.Is(err, errNotRegularFile) || !strings.Contains(err.Error(), "character device") {
			t.Errorf("device: %v", err)
		}
	} else {
		t.Logf("no device node case: mknod: %v", err)
	}

	// Links that stay inside the directory are followed.
	dir = writeDir(t, map[string][]byte{"real-checkpoint": []byte("cp\n")})
	mustSymlink(t, "real-checkpoint", filepath.Join(dir, "checkpoint"))
	if b, err := NewDirSource(dir).ReadCheckpoint(ctx); err != nil || string(b) != "cp\n" {
		t.Errorf("symlink inside the directory: %q, %v", b, err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPSourceRedirects: a log that answers with a redirect to another
// origin (here an "internal" server holding a secret) is refused, and the
// secret is never read; redirects within the log's origin are followed.
func TestHTTPSourceRedirects(t *testing.T) {
	ctx := context.Background()
	var internalHits atomic.Int64
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		w.Write([]byte("INTERNAL-SECRET metadata token\n"))
	}))
	defer internal.Close()
	var log *httptest.Server
	log = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/checkpoint":
			http.Redirect(w, r, internal.URL+"/latest/meta-data", http.StatusFound)
		case "/tile/0/000":
			http.Redirect(w, r, "/moved/tile/0/000", http.StatusMovedPermanently)
		case "/moved/tile/0/000":
			w.Write(bytes.Repeat([]byte{7}, HashSize))
		case "/tile/0/001":
			// Same host, other port: another origin.
			http.Redirect(w, r, internal.URL+"/tile/0/001", http.StatusTemporaryRedirect)
		case "/tile/0/002":
			// Same host and port, other scheme: another origin.
			http.Redirect(w, r, strings.Replace(log.URL, "http://", "https://", 1)+"/tile/0/002", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer log.Close()
	client := log.Client()
	src := NewHTTPSource(log.URL, client)
	b, err := src.ReadCheckpoint(ctx)
	if !errors.Is(err, errCrossOriginRedirect) || b != nil {
		t.Fatalf("checkpoint redirected to another origin: %q, %v", b, err)
	}
	if !strings.Contains(err.Error(), "redirect") || !strings.Contains(err.Error(), internal.URL) || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %q does not explain the refused redirect", err)
	}
	for _, i := range []uint64{1, 2} {
		if b, err := src.ReadTile(ctx, TileAddr{Index: i}); !errors.Is(err, errCrossOriginRedirect) || b != nil {
			t.Errorf("tile %d redirected to another origin: %q, %v", i, b, err)
		}
	}
	if n := internalHits.Load(); n != 0 {
		t.Errorf("the internal server was asked %d times", n)
	}
	if b, err := src.ReadTile(ctx, TileAddr{Index: 0}); err != nil || len(b) != HashSize {
		t.Errorf("same-origin redirect: %d bytes, %v", len(b), err)
	}
	if client.CheckRedirect != nil {
		t.Errorf("NewHTTPSource changed the caller's client")
	}
	// The same through OpenSource.
	src, err = OpenSource(log.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.ReadCheckpoint(ctx); !errors.Is(err, errCrossOriginRedirect) || internalHits.Load() != 0 {
		t.Errorf("OpenSource: %v, internal hits %d", err, internalHits.Load())
	}
}
