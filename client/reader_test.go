package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReaderErrors(t *testing.T) {
	huge := "<html>" + strings.Repeat("x", 10*MaxErrorText)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"size": 7}`))
		case "/json":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error": "no entry 9"}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(huge))
		}
	}))
	defer srv.Close()
	r := NewReader(srv.URL + "/")
	var v struct{ Size int }
	if err := r.GetJSON(context.Background(), "/ok", &v); err != nil || v.Size != 7 {
		t.Fatalf("GetJSON /ok: %v, %+v", err, v)
	}
	_, err := r.Get(context.Background(), "/json")
	var he *HTTPError
	if !errors.As(err, &he) || he.Code != 404 || err.Error() != "server answered 404: no entry 9" {
		t.Errorf("404 with a JSON error: got %v", err)
	}
	_, err = r.Get(context.Background(), "/huge")
	if !errors.As(err, &he) || he.Code != 502 || !strings.HasPrefix(he.Message, "<html>") ||
		len(he.Message) > MaxErrorText+64 || !strings.HasSuffix(he.Message, "… (10246 bytes in all)") {
		t.Errorf("502 with a huge body: got %d bytes: %.80q…", len(err.Error()), err)
	}
}
