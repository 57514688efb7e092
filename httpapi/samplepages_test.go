package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// pagesServer answers getJSON from a map of path to page, recording the
// paths asked for.
type pagesServer struct {
	pages map[string]SamplePage
	asked []string
}

func (s *pagesServer) getJSON(_ context.Context, path string, v any) error {
	s.asked = append(s.asked, path)
	p, ok := s.pages[path]
	if !ok {
		return fmt.Errorf("server answered 404: no page %s", path)
	}
	b, _ := json.Marshal(p)
	return json.Unmarshal(b, v)
}

func entries(idx ...uint64) []EntryJSON {
	var es []EntryJSON
	for _, i := range idx {
		es = append(es, EntryJSON{Index: i, Event: json.RawMessage(`{}`)})
	}
	return es
}

func TestReadSampleFollowsComputedCursor(t *testing.T) {
	s := &pagesServer{pages: map[string]SamplePage{
		"/v1/samples/s1": {Sample: "s1", Size: 10, Events: entries(1, 4), Next: "/evil?after=0"},
		// The server's "next" link is ignored: the cursor is computed.
		"/v1/samples/s1?after=4&size=10": {Sample: "s1", Size: 10, Events: entries(7)},
	}}
	got, err := ReadSample(context.Background(), s.getJSON, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != 3 || got.Events[2].Index != 7 || got.Size != 10 || got.Next != "" {
		t.Errorf("got %+v", got)
	}
	if want := []string{"/v1/samples/s1", "/v1/samples/s1?after=4&size=10"}; strings.Join(s.asked, " ") != strings.Join(want, " ") {
		t.Errorf("asked %q, want %q", s.asked, want)
	}
}

func TestReadSampleRefusesBadPages(t *testing.T) {
	const second = "/v1/samples/s1?after=4&size=10"
	first := SamplePage{Sample: "s1", Size: 10, Events: entries(1, 4), Next: "more"}
	for _, tc := range []struct {
		name string
		page SamplePage // the second page
		want string
	}{
		{"other sample", SamplePage{Sample: "s2", Size: 10, Events: entries(5)}, `is for sample "s2" at tree size 10, want "s1" at 10`},
		{"other size", SamplePage{Sample: "s1", Size: 11, Events: entries(5)}, `at tree size 11, want "s1" at 10`},
		{"no progress", SamplePage{Sample: "s1", Size: 10, Events: entries(4), Next: "more"}, "entry 4 does not come after entry 4"},
		{"beyond size", SamplePage{Sample: "s1", Size: 10, Events: entries(10)}, "entry 10 is beyond the tree size 10"},
		{"empty but more", SamplePage{Sample: "s1", Size: 10, Next: "more"}, "page 2 of sample s1 is empty but says more follow"},
	} {
		s := &pagesServer{pages: map[string]SamplePage{"/v1/samples/s1": first, second: tc.page}}
		_, err := ReadSample(context.Background(), s.getJSON, "s1")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	// A failing later page is named.
	s := &pagesServer{pages: map[string]SamplePage{"/v1/samples/s1": first}}
	if _, err := ReadSample(context.Background(), s.getJSON, "s1"); err == nil || !strings.Contains(err.Error(), "reading page 2 of sample s1: server answered 404") {
		t.Errorf("missing page 2: got %v", err)
	}
}
