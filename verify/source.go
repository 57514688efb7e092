package verify

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Size limits on what a Source returns. A hash tile is at most TileWidth
// hashes; an entry bundle at most TileWidth entries of MaxEntrySize bytes
// each with their 2-byte length prefix. Checkpoints are small; the limit only
// stops a hostile server from exhausting memory.
const (
	// maxCheckpointSize is the largest checkpoint note accepted: 1 MiB.
	maxCheckpointSize = 1 << 20
	// maxHashTileSize is the size of a full hash tile, 8192 bytes.
	maxHashTileSize = TileWidth * HashSize
	// maxBundleSize is the largest possible entry bundle,
	// 256 * (2 + 65535) bytes.
	maxBundleSize = TileWidth * (2 + MaxEntrySize)
)

// ErrTileNotFound is wrapped by the error a Source returns when the tile or
// entry bundle asked for does not exist (HTTP 404, or no such file). A log
// may delete a partial tile once the full tile exists, so callers fall back
// to the full tile on this error.
var ErrTileNotFound = errors.New("tile not found")

// Source is where a tiled log (c2sp.org/tlog-tiles) is read from. It only
// moves bytes: nothing it returns is trusted. [Client] authenticates
// everything against a signed checkpoint. Implementations must be safe for
// concurrent use.
type Source interface {
	// ReadCheckpoint returns the log's current signed checkpoint note,
	// at most maxCheckpointSize bytes.
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	// ReadTile returns the hash tile or entry bundle at a (a.Path()), at
	// most maxHashTileSize or maxBundleSize bytes. Its error wraps
	// ErrTileNotFound when the resource does not exist.
	ReadTile(ctx context.Context, a TileAddr) ([]byte, error)
}

// tileLimit is the most bytes a Source returns for a.
func tileLimit(a TileAddr) int64 {
	if a.Entries {
		return maxBundleSize
	}
	return maxHashTileSize
}

type httpSource struct {
	base string
	c    *http.Client
	// accept is the Accept-Encoding header sent: "gzip, identity", or
	// "identity" for a log on the loopback interface (see NewHTTPSource).
	accept string
}

// Accept-Encoding values an HTTP Source sends.
const (
	acceptGzip     = "gzip, identity"
	acceptIdentity = "identity"
)

// httpIdleConns is how many idle connections to one log an HTTP Source
// keeps open when the caller's client has no Transport of its own: more
// than a Client's bundle workers (entriesPrefetch, or one per CPU), so
// that reading a log never closes and redials connections between
// requests. net/http's default keeps only 2 per host, which made every
// audit over HTTP dial a new TCP connection for most requests.
const httpIdleConns = 64

// defaultTransport is the Transport of an HTTP Source whose client has
// none: http.DefaultTransport's settings with httpIdleConns idle
// connections per host. It is shared, so that connections are reused
// across Sources of the same log.
var defaultTransport = sync.OnceValue(func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = httpIdleConns
	t.MaxIdleConns = max(t.MaxIdleConns, httpIdleConns)
	return t
})

// errCrossOriginRedirect is wrapped by the error an HTTP Source returns when
// the log answers with a redirect to another origin (scheme, host or port).
// Such redirects are never followed: a log could otherwise make the auditor
// fetch an internal URL and copy the answer into evidence or a webhook.
var errCrossOriginRedirect = errors.New("redirect to another origin refused")

// maxRedirects is how many same-origin redirects an HTTP Source follows.
const maxRedirects = 10

// NewHTTPSource returns a Source reading a log over HTTP(S) from baseURL,
// the log's URL prefix: GET <baseURL>/checkpoint and GET <baseURL>/<a.Path()>
// (a trailing slash on baseURL is ignored). It sends "Accept-Encoding: gzip,
// identity", except to a log on the loopback interface (a host of
// "localhost", 127.0.0.0/8 or ::1), where compression saves no bandwidth
// and costs CPU on both ends, so it sends "Accept-Encoding: identity"; in
// both cases it decodes a gzip Content-Encoding itself, since a log may
// gzip entry bundles unasked. Responses (after decoding) larger than the
// maxCheckpointSize, maxHashTileSize or maxBundleSize limits are errors, as
// is any status but 200; errors name the URL and the status, and a 404 for a
// tile wraps ErrTileNotFound. Redirects are followed only within the origin
// of the request (same scheme, host and port; at most 10); a redirect
// elsewhere is an error wrapping errCrossOriginRedirect and nothing is read
// from its target. c is not modified (its redirect policy, if any, is applied
// after this one). A nil c means http.DefaultClient, which has no timeout:
// pass a client with one, or use contexts with deadlines. A client without
// a Transport of its own (nil, or http.DefaultTransport) gets one that
// keeps enough idle connections to the log for a Client's concurrent
// reads (net/http's default keeps 2 per host).
func NewHTTPSource(baseURL string, c *http.Client) Source {
	if c == nil {
		c = http.DefaultClient
	}
	cc := *c
	if cc.Transport == nil || cc.Transport == http.DefaultTransport {
		cc.Transport = defaultTransport()
	}
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 && !sameOrigin(req.URL, via[0].URL) {
			return fmt.Errorf("the log redirected %s to %s: %w (a log is read only from the origin it was given)",
				via[len(via)-1].URL.Redacted(), req.URL.Redacted(), errCrossOriginRedirect)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	accept := acceptGzip
	if u, err := url.Parse(baseURL); err == nil && isLoopback(u.Hostname()) {
		accept = acceptIdentity
	}
	return &httpSource{base: strings.TrimRight(baseURL, "/"), c: &cc, accept: accept}
}

// isLoopback reports whether host (a URL's Hostname) is "localhost" or a
// loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (default ports made explicit).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

func (s *httpSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return s.get(ctx, s.base+"/checkpoint", maxCheckpointSize, false)
}

func (s *httpSource) ReadTile(ctx context.Context, a TileAddr) ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("reading tile: %v", err)
	}
	return s.get(ctx, s.base+"/"+a.Path(), tileLimit(a), true)
}

func (s *httpSource) get(ctx context.Context, u string, limit int64, tile bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", u, err)
	}
	req.Header.Set("Accept-Encoding", s.accept)
	resp, err := s.c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode == http.StatusNotFound && tile {
			return nil, fmt.Errorf("GET %s: %s: %w", u, resp.Status, ErrTileNotFound)
		}
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var body io.Reader = resp.Body
	switch enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(io.LimitReader(resp.Body, limit+(1<<20)))
		if err != nil {
			return nil, fmt.Errorf("GET %s: decoding gzip body: %v", u, err)
		}
		defer zr.Close()
		body = zr
	default:
		return nil, fmt.Errorf("GET %s: unsupported Content-Encoding %q", u, enc)
	}
	// Read into a buffer of the announced length (and a byte more, to
	// see the end) rather than growing one from 512 bytes: an audit reads
	// every bundle of the log. The length is only a hint, capped by limit.
	hint := int64(512)
	if body == resp.Body && resp.ContentLength > 0 {
		hint = min(resp.ContentLength, limit) + 1
	}
	data, err := readAllHint(io.LimitReader(body, limit+1), hint)
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", u, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: response is larger than the %d-byte limit", u, limit)
	}
	return data, nil
}

// readAllHint is io.ReadAll starting with a buffer of capacity hint.
func readAllHint(r io.Reader, hint int64) ([]byte, error) {
	data := make([]byte, 0, hint)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := r.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return data, err
		}
	}
}

type dirSource struct{ dir string }

// errNotRegularFile is wrapped by the error a directory Source returns for a
// name that is not a regular file (a FIFO, a device, a socket, a directory).
var errNotRegularFile = errors.New("not a regular file")

// NewDirSource returns a Source reading a log laid out on disk exactly as it
// is served over HTTP: dir/checkpoint, dir/tile/0/000, dir/tile/entries/000.p/5
// and so on. Every file is read through an [os.Root] at dir, so a symbolic
// link (or "..") that leads outside dir is an error and nothing outside dir
// is read; links within dir are followed. Only regular files are read: a
// FIFO, device, socket or directory is an error wrapping errNotRegularFile,
// found without blocking (the file is opened non-blocking and checked with
// fstat before any read). Files larger than the size limits are errors; a
// missing tile file gives an error wrapping ErrTileNotFound.
func NewDirSource(dir string) Source { return &dirSource{dir: dir} }

func (s *dirSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.read("checkpoint", maxCheckpointSize, false)
}

func (s *dirSource) ReadTile(ctx context.Context, a TileAddr) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("reading tile: %v", err)
	}
	return s.read(a.Path(), tileLimit(a), true)
}

// read reads the file at the slash-separated path name inside s.dir.
func (s *dirSource) read(name string, limit int64, tile bool) ([]byte, error) {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, fmt.Errorf("opening log directory: %w", err)
	}
	defer root.Close()
	where := fmt.Sprintf("%s in log directory %s", name, s.dir)
	name = filepath.FromSlash(name)
	// Stat first, so that a FIFO or device is never opened at all.
	fi, err := root.Stat(name)
	if err != nil {
		if tile && errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading %s: %w", where, ErrTileNotFound)
		}
		return nil, fmt.Errorf("reading %s: %w", where, rootErr(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading %s: it is %s, %w: refusing to read it", where, fileKind(fi.Mode()), errNotRegularFile)
	}
	// Non-blocking, so that a file swapped for a FIFO after the Stat
	// cannot block the open; fstat then checks what was opened.
	f, err := root.OpenFile(name, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", where, rootErr(err))
	}
	defer f.Close()
	ofi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", where, err)
	}
	if !ofi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading %s: it is %s, %w: refusing to read it", where, fileKind(ofi.Mode()), errNotRegularFile)
	}
	if !os.SameFile(fi, ofi) {
		return nil, fmt.Errorf("reading %s: the file was replaced while it was opened", where)
	}
	// Read into a buffer of the file's size (and a byte more, to see the
	// end), as os.ReadFile does, rather than growing one from 512 bytes:
	// an audit reads every bundle of the log.
	data, err := readAllHint(io.LimitReader(f, limit+1), min(ofi.Size(), limit)+1)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", where, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("reading %s: file is larger than the %d-byte limit", where, limit)
	}
	return data, nil
}

// rootErr explains an os.Root error that means the path leads outside the
// log directory.
func rootErr(err error) error {
	if err != nil && strings.Contains(err.Error(), "path escapes from parent") {
		return fmt.Errorf("%w (a symbolic link or \"..\" leads outside the log directory: refusing to follow it)", err)
	}
	return err
}

// fileKind names the type of a file that is not regular, with an article.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "an irregular file"
}

// OpenSource returns an HTTP Source (see NewHTTPSource, using c) if s is an
// http:// or https:// URL with a host and no query or fragment, and
// otherwise a directory Source (see NewDirSource) if s names an existing
// directory. Anything else is an error.
func OpenSource(s string, c *http.Client) (Source, error) {
	lower := strings.ToLower(s)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("log URL %q: %v", s, err)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("log URL %q has no host", s)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("log URL %q must be a prefix without query or fragment", s)
		}
		return NewHTTPSource(s, c), nil
	}
	fi, err := os.Stat(s)
	if err != nil {
		return nil, fmt.Errorf("log %q is neither an http(s) URL nor a directory: %v", s, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("log %q is neither an http(s) URL nor a directory", s)
	}
	return NewDirSource(s), nil
}
