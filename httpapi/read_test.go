package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/verify"
)

// TestEntryBundleEncodings checks that an entry bundle is the same bytes
// (the entries as logged, in tlog-tiles framing) whether it is asked for
// gzipped or not, also with many requests at once (the gzip writers are
// pooled), and that an uncompressed one announces its length.
func TestEntryBundleEncodings(t *testing.T) {
	tl, srv := newTestServer(t, log.Config{})
	post(t, srv.URL, testToken, eventLines(0, 300))
	es, err := tl.st.Entries(context.Background(), 0, 256)
	if err != nil || len(es) != 256 {
		t.Fatalf("stored entries: %d, %v", len(es), err)
	}
	var want []byte
	for _, e := range es {
		if want, err = verify.AppendBundleEntry(want, e.Data); err != nil {
			t.Fatal(err)
		}
	}
	// The transport must not add or decode gzip by itself.
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	fetch := func(accept string) ([]byte, http.Header, error) {
		req, _ := http.NewRequest("GET", srv.URL+"/tile/entries/000", nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, nil, fmt.Errorf("status %s", resp.Status)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, nil, err
		}
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, nil, err
			}
			if b, err = io.ReadAll(zr); err != nil {
				return nil, nil, err
			}
		}
		return b, resp.Header, nil
	}
	for _, tc := range []struct {
		accept   string
		encoding string
	}{
		{"", ""},
		{"identity", ""},
		{"gzip, identity", "gzip"},
		{"gzip;q=0", ""},
		{"br, gzip", "gzip"},
	} {
		b, h, err := fetch(tc.accept)
		if err != nil {
			t.Fatalf("Accept-Encoding %q: %v", tc.accept, err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("Accept-Encoding %q: bundle of %d bytes differs from the %d logged", tc.accept, len(b), len(want))
		}
		if got := h.Get("Content-Encoding"); got != tc.encoding {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", tc.accept, got, tc.encoding)
		}
		if tc.encoding == "" && h.Get("Content-Length") != strconv.Itoa(len(want)) {
			t.Errorf("Accept-Encoding %q: Content-Length %q, want %d", tc.accept, h.Get("Content-Length"), len(want))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			accept := "gzip"
			if i%3 == 0 {
				accept = "identity"
			}
			b, _, err := fetch(accept)
			if err == nil && !bytes.Equal(b, want) {
				err = fmt.Errorf("request %d (%s): bundle differs", i, accept)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
