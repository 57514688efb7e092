// Package fuzzseeds checks a package's checked-in fuzz seed corpora
// (testdata/fuzz/<Target>/*, in "go test fuzz v1" form): each target has at
// least 8 seeds, a seed named valid-* is accepted by the parser under test
// and every other seed is rejected. So a seed that stops testing what its
// name says fails the build.
package fuzzseeds

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ReadCorpusFile reads the values of one "go test fuzz v1" file: []byte,
// string and int values, in order.
func ReadCorpusFile(name string) ([]any, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("first line %q, want %q", lines[0], "go test fuzz v1")
	}
	var args []any
	for _, l := range lines[1:] {
		typ, rest, ok := strings.Cut(l, "(")
		if !ok || !strings.HasSuffix(rest, ")") {
			return nil, fmt.Errorf("cannot read value %q", l)
		}
		lit := strings.TrimSuffix(rest, ")")
		switch typ {
		case "[]byte", "string":
			s, err := strconv.Unquote(lit)
			if err != nil {
				return nil, fmt.Errorf("value %q: %v", l, err)
			}
			if typ == "string" {
				args = append(args, s)
			} else {
				args = append(args, []byte(s))
			}
		case "int":
			n, err := strconv.Atoi(lit)
			if err != nil {
				return nil, fmt.Errorf("value %q: %v", l, err)
			}
			args = append(args, n)
		default:
			return nil, fmt.Errorf("unexpected type in %q", l)
		}
	}
	return args, nil
}

// Check fails t for each target of try whose seeds break the rules in
// the package documentation; try[target] runs the parser on a seed's
// values and returns its error.
func Check(t *testing.T, try map[string]func(args []any) error) {
	t.Helper()
	for target, fn := range try {
		files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) < 8 {
			t.Errorf("%s has %d seeds, want at least 8", target, len(files))
		}
		valid := 0
		for _, file := range files {
			args, err := ReadCorpusFile(file)
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			err = fn(args)
			if strings.HasPrefix(filepath.Base(file), "valid-") {
				valid++
				if err != nil {
					t.Errorf("%s: seed named valid is rejected: %v", file, err)
				}
			} else if err == nil {
				t.Errorf("%s: seed not named valid is accepted", file)
			}
		}
		if valid == 0 {
			t.Errorf("%s has no valid-* seed", target)
		}
	}
}
