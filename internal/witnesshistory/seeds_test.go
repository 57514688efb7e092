package witnesshistory

import (
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/fuzzseeds"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz/FuzzWitnessHistory")

// seal is a snapshot of body: the magic, body and its checksum.
func seal(body []byte) []byte {
	b := append(slices.Clone(snapshotMagic), body...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// rec is one witness record's encoding.
func rec(name string, hash uint32, known bool, cosigned, untimed uint64, first, last int64, lastSize uint64, days []int64, hours []int64) []byte {
	b := binary.AppendUvarint(nil, uint64(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, hash)
	b = append(b, boolByte(known))
	b = binary.AppendUvarint(b, cosigned)
	b = binary.AppendUvarint(b, untimed)
	b = binary.AppendVarint(b, first)
	b = binary.AppendVarint(b, last)
	b = binary.AppendUvarint(b, lastSize)
	for _, set := range [][]int64{days, hours} {
		b = binary.AppendUvarint(b, uint64(len(set)))
		for i, v := range set {
			if i == 0 {
				b = binary.AppendVarint(b, v)
			} else {
				b = binary.AppendUvarint(b, uint64(v-set[i-1]))
			}
		}
	}
	return b
}

// head is the encoding of the fields before the witnesses.
func head(next uint64, read bool, checkpoints uint64, witnesses int) []byte {
	b := binary.AppendUvarint(nil, next)
	b = append(b, make([]byte, 32)...)
	b = append(b, boolByte(read))
	if read || next != 0 {
		b = binary.AppendUvarint(b, 300)
	} else {
		b = binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, checkpoints)
	b = binary.AppendUvarint(b, 0)
	return binary.AppendUvarint(b, uint64(witnesses))
}

// seeds are the checked-in seeds of FuzzWitnessHistory.
func seeds(t *testing.T) map[string][]byte {
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).Unix()
	d0, h0 := t0/86400, t0/3600
	a := rec("witness-a.test", 7, true, 3, 0, t0, t0+7200, 30, []int64{d0}, []int64{h0, h0 + 1, h0 + 2})
	b := rec("witness-b.test", 9, false, 2, 1, t0, t0, 20, []int64{d0}, []int64{h0})
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	empty := head(0, false, 0, 0)
	two := cat(head(30, true, 4, 2), a, b)
	out := map[string][]byte{
		"valid-empty":             seal(empty),
		"valid-two":               seal(two),
		"valid-other":             seal(cat(head(30, true, 4, 2), rec(OtherName, 0, false, 1, 1, 0, 0, 10, nil, nil), a)),
		"bad-magic":               append([]byte("custody-witnesseS\x00\x01"), seal(two)[len(snapshotMagic):]...),
		"other-version":           append([]byte("custody-witnesses\x00\x02"), seal(two)[len(snapshotMagic):]...),
		"bad-checksum":            append(seal(two)[:len(seal(two))-1], seal(two)[len(seal(two))-1]^1),
		"truncated":               seal(two[:len(two)-3]),
		"trailing-bytes":          seal(cat(two, []byte{0})),
		"unsorted-witnesses":      seal(cat(head(30, true, 4, 2), b, a)),
		"day-not-increasing":      seal(cat(head(30, true, 4, 1), rec("w.test", 1, false, 2, 0, t0, t0, 10, []int64{d0, d0}, nil))),
		"untimed-over-cosigned":   seal(cat(head(30, true, 4, 1), rec("w.test", 1, false, 1, 2, 0, 0, 10, nil, nil))),
		"cosigned-after-newest":   seal(cat(head(30, true, 4, 1), rec("w.test", 1, false, 1, 0, t0, t0, 40, []int64{d0}, nil))),
		"first-after-last":        seal(cat(head(30, true, 4, 1), rec("w.test", 1, false, 1, 0, t0+1, t0, 10, []int64{d0}, nil))),
		"long-number":             seal(cat([]byte{0x80, 0x00}, empty[1:])),
		"too-many-witnesses":      seal(head(30, true, 4, MaxWitnesses+2)),
		"checkpoint-without-read": seal(head(30, false, 0, 0)),
	}
	return out
}

// TestFuzzSeeds: the checked-in seeds of FuzzWitnessHistory test what
// their names say (internal/fuzzseeds); -write-seeds rewrites them.
func TestFuzzSeeds(t *testing.T) {
	if *writeSeeds {
		dir := filepath.Join("testdata", "fuzz", "FuzzWitnessHistory")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range seeds(t) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	fuzzseeds.Check(t, map[string]func(args []any) error{
		"FuzzWitnessHistory": func(args []any) error {
			_, err := unmarshalState(args[0].([]byte))
			return err
		},
	})
}
