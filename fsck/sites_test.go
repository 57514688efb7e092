package fsck

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/logtest"
	"github.com/custodylog/custody/internal/plant"
	"github.com/custodylog/custody/internal/sitetest"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store/sqlite"
	"golang.org/x/mod/sumdb/note"
)

type siteProblem struct {
	kind  Kind
	where string
}

// TestCheckSites: the tamper drills, planted in the store past the log's
// checks (plant.Plant): each is reported with the right kind at the
// right entry; a clean signed log has no problem; without Options.Sites
// attestation entries are only checked to be stored right.
func TestCheckSites(t *testing.T) {
	w := sitetest.NewWorld(t)
	logged := logtest.Time.Add(time.Minute)
	next := 0
	events := func(n int, loc string) []record.Event {
		evs := logtest.Events(next, n)
		next += n
		for i := range evs {
			evs[i].Location, evs[i].Logged = loc, logged
		}
		return evs
	}
	canon := func(evs ...record.Event) [][]byte {
		var out [][]byte
		for _, ev := range evs {
			out = append(out, ev.Canonical())
		}
		return out
	}
	const origin = "fsck.test/log"
	sign := func(k sitetest.Key, evs ...record.Event) []byte { return sitetest.Sign(t, k, origin, logged, evs) }
	cases := []struct {
		name  string
		build func() [][]byte
		want  []siteProblem
	}{
		{"clean", func() [][]byte {
			a, b := events(3, "ch-zrh-1"), events(2, "ru-mow-1")
			out := append(canon(a...), sign(w.Zrh, a...))
			out = append(out, canon(b...)...)
			return append(append(out, sign(w.Mow, b...)), canon(events(1, "de-fra-1")...)...)
		}, nil},
		{"event edited after signing", func() [][]byte {
			a := events(2, "ch-zrh-1")
			att := sign(w.Zrh, a...)
			a[0].Note = "edited"
			return append(canon(a...), att)
		}, []siteProblem{{KindBadSiteSignature, "entry 2"}}},
		{"event moved out of its attestation", func() [][]byte {
			a := events(2, "ch-zrh-1")
			return append(canon(a[0]), sign(w.Zrh, a...), a[1].Canonical())
		}, []siteProblem{{KindUnsigned, "entry 0"}, {KindBadSiteSignature, "entry 1"}, {KindUnsigned, "entry 2"}}},
		{"attestation replayed with another batch", func() [][]byte {
			a, b := events(2, "ch-zrh-1"), events(2, "ch-zrh-1")
			return append(canon(b...), sign(w.Zrh, a...))
		}, []siteProblem{{KindBadSiteSignature, "entry 2"}}},
		{"key outside its window", func() [][]byte {
			a := events(1, "ch-zrh-1")
			return append(canon(a...), sign(w.ZrhOld, a...))
		}, []siteProblem{{KindSiteKeyNotValid, "entry 1"}}},
		{"site signing for another site's location", func() [][]byte {
			a := events(2, "ch-zrh-1")
			return append(canon(a...), sign(w.Mow, a...))
		}, []siteProblem{{KindSiteNotAllowed, "entry 0"}, {KindSiteNotAllowed, "entry 1"}}},
		{"unsigned at a site's location", func() [][]byte {
			return canon(events(1, "de-fra-1")[0], events(1, "ch-zrh-1")[0])
		}, []siteProblem{{KindUnsigned, "entry 1"}}},
	}
	ctx := context.Background()
	sk, vk, _ := note.GenerateKey(rand.Reader, origin)
	s, _ := note.NewSigner(sk)
	v, _ := note.NewVerifier(vk)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "custody.db")
			st, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := log.Create(ctx, st, s); err != nil {
				t.Fatal(err)
			}
			if _, err := plant.Plant(ctx, st, s, v, tc.build()); err != nil {
				t.Fatal(err)
			}
			st.Close()
			var got []siteProblem
			for _, p := range check(t, path, v, Options{Sites: w.Set}).Problems {
				got = append(got, siteProblem{p.Kind, p.Where})
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("problems %v, want %v", got, tc.want)
			}
			if rep := check(t, path, v, Options{Workers: 1}); len(rep.Problems) != 0 {
				t.Fatalf("without sites: problems %+v, want none", rep.Problems)
			}
			if tc.name == "clean" {
				rep := check(t, path, v, Options{Sites: w.Set, RequireSignatures: true})
				if len(rep.Problems) != 1 || rep.Problems[0].Kind != KindUnsigned || rep.Problems[0].Where != "entry 7" {
					t.Fatalf("required mode: %+v, want entry 7 unsigned", rep.Problems)
				}
			}
		})
	}
}
