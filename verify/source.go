package verify

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Size limits on what a Source returns. A hash tile is at most TileWidth
// hashes; an entry bundle at most TileWidth entries of MaxEntrySize bytes
// each with their 2-byte length prefix. Checkpoints are small; the limit only
// stops a hostile server from exhausting memory.
const (
	// MaxCheckpointSize is the largest checkpoint note accepted: 1 MiB.
	MaxCheckpointSize = 1 << 20
	// MaxHashTileSize is the size of a full hash tile, 8192 bytes.
	MaxHashTileSize = TileWidth * HashSize
	// MaxBundleSize is the largest possible entry bundle,
	// 256 * (2 + 65535) bytes.
	MaxBundleSize = TileWidth * (2 + MaxEntrySize)
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
	// at most MaxCheckpointSize bytes.
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	// ReadTile returns the hash tile or entry bundle at a (a.Path()), at
	// most MaxHashTileSize or MaxBundleSize bytes. Its error wraps
	// ErrTileNotFound when the resource does not exist.
	ReadTile(ctx context.Context, a TileAddr) ([]byte, error)
}

// tileLimit is the most bytes a Source returns for a.
func tileLimit(a TileAddr) int64 {
	if a.Entries {
		return MaxBundleSize
	}
	return MaxHashTileSize
}

type httpSource struct {
	base string
	c    *http.Client
}

// NewHTTPSource returns a Source reading a log over HTTP(S) from baseURL,
// the log's URL prefix: GET <baseURL>/checkpoint and GET <baseURL>/<a.Path()>
// (a trailing slash on baseURL is ignored). It sends "Accept-Encoding: gzip,
// identity" and decodes a gzip Content-Encoding itself, since a log may gzip
// entry bundles unasked. Responses (after decoding) larger than the
// MaxCheckpointSize, MaxHashTileSize or MaxBundleSize limits are errors, as
// is any status but 200; errors name the URL and the status, and a 404 for a
// tile wraps ErrTileNotFound. A nil c means http.DefaultClient, which has no
// timeout: pass a client with one, or use contexts with deadlines.
func NewHTTPSource(baseURL string, c *http.Client) Source {
	if c == nil {
		c = http.DefaultClient
	}
	return &httpSource{base: strings.TrimRight(baseURL, "/"), c: c}
}

func (s *httpSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return s.get(ctx, s.base+"/checkpoint", MaxCheckpointSize, false)
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
	req.Header.Set("Accept-Encoding", "gzip, identity")
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
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", u, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: response is larger than the %d-byte limit", u, limit)
	}
	return data, nil
}

type dirSource struct{ dir string }

// NewDirSource returns a Source reading a log laid out on disk exactly as it
// is served over HTTP: dir/checkpoint, dir/tile/0/000, dir/tile/entries/000.p/5
// and so on. Files larger than the size limits are errors; a missing tile
// file gives an error wrapping ErrTileNotFound.
func NewDirSource(dir string) Source { return &dirSource{dir: dir} }

func (s *dirSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return readFileLimit(filepath.Join(s.dir, "checkpoint"), MaxCheckpointSize, false)
}

func (s *dirSource) ReadTile(ctx context.Context, a TileAddr) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("reading tile: %v", err)
	}
	return readFileLimit(filepath.Join(s.dir, filepath.FromSlash(a.Path())), tileLimit(a), true)
}

func readFileLimit(name string, limit int64, tile bool) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		if tile && errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading %s: %w", name, ErrTileNotFound)
		}
		return nil, fmt.Errorf("reading log file: %w", err)
	}
	defer f.Close()
	// Read into a buffer of the file's size (and a byte more, to see the
	// end), as os.ReadFile does, rather than growing one from 512 bytes:
	// an audit reads every bundle of the log.
	size := int64(512)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = min(fi.Size(), limit) + 1
	}
	data := make([]byte, 0, size)
	r := io.LimitReader(f, limit+1)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := r.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("reading %s: file is larger than the %d-byte limit", name, limit)
	}
	return data, nil
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
