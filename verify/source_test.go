package verify

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	big := bytes.Repeat([]byte{1}, MaxHashTileSize+1)
	full := bytes.Repeat([]byte{2}, MaxHashTileSize)
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
			w.Write(bytes.Repeat([]byte{3}, MaxHashTileSize+1)) // bundles may be larger
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
		if !strings.Contains(gotAccept, "gzip") || !strings.Contains(gotAccept, "identity") {
			t.Errorf("Accept-Encoding %q", gotAccept)
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
		if b, err := src.ReadTile(ctx, TileAddr{Entries: true, Index: 1}); err != nil || len(b) != MaxHashTileSize+1 {
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

func TestDirSource(t *testing.T) {
	ctx := context.Background()
	dir := writeDir(t, map[string][]byte{
		"checkpoint":            []byte("cp\n"),
		"tile/0/x001/234.p/7":   bytes.Repeat([]byte{1}, 7*32),
		"tile/0/000":            bytes.Repeat([]byte{1}, MaxHashTileSize+1),
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
