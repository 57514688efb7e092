package audit

import (
	"strings"
	"testing"

	"github.com/custodylog/custody/record"
)

func TestReadSampleFile(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"smp-1\n", []string{"smp-1"}, ""},
		{"# comment\n\n  smp-1  \r\nsmp:2\n", []string{"smp-1", "smp:2"}, ""},
		{"smp-1\nsmp 2\n", nil, "line 2:"},
		{"smp-1\n" + strings.Repeat("x", 129), nil, "line 2:"},
	} {
		got, err := ReadSampleFile([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%q: %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzReadSampleFile: whatever the input, ReadSampleFile returns only
// valid sample identifiers, or an error.
func FuzzReadSampleFile(f *testing.F) {
	f.Add([]byte("smp-1\n# c\n\nsmp:2\n"))
	f.Add([]byte("a b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ids, err := ReadSampleFile(data)
		if err != nil {
			return
		}
		for _, id := range ids {
			if record.CheckSample(id) != nil {
				t.Fatalf("returned invalid sample %q", id)
			}
		}
	})
}
