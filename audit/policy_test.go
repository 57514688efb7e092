package audit

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/sumdb/note"

	"github.com/custodylog/custody/internal/fuzzseeds"
)

func TestParsePolicyExample(t *testing.T) {
	p, err := LoadPolicy("../testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Locations: map[string]Location{
			"us-ash-1": {"US"}, "de-fra-1": {"DE"}, "uk-lon-1": {"GB"},
			"sg-sin-1": {"SG"}, "ch-zrh-1": {"CH"}, "ru-mow-1": {"RU"},
		},
		Regions: map[string]Region{
			"US":  {[]string{"us-ash-1", "ch-zrh-1"}},
			"EU":  {[]string{"de-fra-1", "ch-zrh-1"}},
			"UK":  {[]string{"uk-lon-1", "ch-zrh-1"}},
			"ROW": {[]string{"sg-sin-1", "ch-zrh-1", "ru-mow-1"}},
		},
		MaxLogDelay: time.Hour,
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("LoadPolicy (-want +got):\n%s", diff)
	}
}

func TestParsePolicyValid(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       *Policy
	}{
		{"minimal, default max_log_delay", "locations: {ch-zrh-1: {country: CH}}\nregions: {EU: {allowed: [ch-zrh-1]}}\n",
			&Policy{
				Locations:   map[string]Location{"ch-zrh-1": {"CH"}},
				Regions:     map[string]Region{"EU": {[]string{"ch-zrh-1"}}},
				MaxLogDelay: DefaultMaxLogDelay,
			}},
		{"block style, keys in another order, comments, quotes", `# policy
max_log_delay: "90m"   # one and a half hours
regions:
  'EU':
    allowed:
      - "ch-zrh-1"
      - de-fra-1
locations:
  de-fra-1:
    country: 'DE'
  "ch-zrh-1":
    country: CH
`,
			&Policy{
				Locations:   map[string]Location{"ch-zrh-1": {"CH"}, "de-fra-1": {"DE"}},
				Regions:     map[string]Region{"EU": {[]string{"ch-zrh-1", "de-fra-1"}}},
				MaxLogDelay: 90 * time.Minute,
			}},
		{"names YAML would read as other types are strings", `---
locations:
  "123": {country: "NO"}
  0x1f: {country: NO}
  null: {country: CH}
  true: {country: CH}
  1e3: {country: CH}
regions:
  NO: {allowed: [123, 0x1f, null, true, 1e3]}
  ON: {allowed: ["null"]}
max_log_delay: 1h30m0.5s
...
`,
			&Policy{
				Locations: map[string]Location{"123": {"NO"}, "0x1f": {"NO"}, "null": {"CH"}, "true": {"CH"}, "1e3": {"CH"}},
				Regions: map[string]Region{
					"NO": {[]string{"123", "0x1f", "null", "true", "1e3"}},
					"ON": {[]string{"null"}},
				},
				MaxLogDelay: time.Hour + 30*time.Minute + 500*time.Millisecond,
			}},
		{"sites: rotation, an open-ended key, quoted times with offsets", okLocations + okRegions + `sites:
  zrh:
    locations: [ch-zrh-1]
    keys:
      - key: ` + zrhOldKey + `
        from: 2026-01-01T00:00:00Z
        until: "2026-07-01T02:00:00+02:00"
      - {key: ` + zrhKey + `, from: '2026-06-15T00:00:00.5Z'}
  fra:
    keys: [{key: ` + fraKey + `, from: 2026-01-01T00:00:00Z, until: 2030-01-01T00:00:00Z}]
    locations: [de-fra-1]
`,
			&Policy{
				Locations:   map[string]Location{"ch-zrh-1": {"CH"}, "de-fra-1": {"DE"}},
				Regions:     map[string]Region{"EU": {[]string{"de-fra-1", "ch-zrh-1"}}},
				MaxLogDelay: DefaultMaxLogDelay,
				Sites: map[string]Site{
					"zrh": {Locations: []string{"ch-zrh-1"}, Keys: []SiteKey{
						{Key: zrhOldKey, From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)},
						{Key: zrhKey, From: time.Date(2026, 6, 15, 0, 0, 0, 5e8, time.UTC)},
					}},
					"fra": {Locations: []string{"de-fra-1"}, Keys: []SiteKey{
						{Key: fraKey, From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
					}},
				},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, p); diff != "" {
				t.Errorf("ParsePolicy (-want +got):\n%s", diff)
			}
			checkPolicyRoundTrip(t, p)
		})
	}
}

// checkPolicyRoundTrip checks that yaml.Marshal of p parses back to p.
func checkPolicyRoundTrip(t *testing.T, p *Policy) {
	t.Helper()
	out, err := yaml.Marshal(p)
	if err != nil {
		t.Fatalf("yaml.Marshal: %v", err)
	}
	q, err := ParsePolicy(out)
	if err != nil {
		t.Fatalf("ParsePolicy(yaml.Marshal(p)): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("ParsePolicy(yaml.Marshal(p)) differs from p:\n%s\n%s", cmp.Diff(p, q), out)
	}
}

const okLocations = "locations:\n  ch-zrh-1: {country: CH}\n  de-fra-1: {country: DE}\n"

// Site verifier keys (signed-note format) for the sites tests; the private
// keys were made from fixed seeds and are not kept.
const (
	zrhKey    = "zrh+d6440a39+AT7wiVkDMCjI/G/G1JGhJUjnjfau+y18LBkMP3jO8/UL"
	zrhOldKey = "zrh+b68d1ea8+AcBQxWN6RPqGKf/zzMziMAyzYqY9mdlfxUFFJm9DMkRa"
	fraKey    = "fra+b1e4ac46+AUpy5ANbtDXQqkLUO4hz2fB8ub9Hb+Kt4KukmYPuvUJe"
	mowKey    = "mow+c9e25085+ASASy5DKYOjl2Nr2biJy0iM+BIbVV+jGYUHtiSAXfX63"
)

// sitesWith returns a policy whose sites section has one site, zrh, with
// the given body.
func sitesWith(body string) string {
	return okLocations + okRegions + "sites:\n  zrh:\n" + body
}

const okSiteKeys = "    keys: [{key: " + zrhKey + ", from: 2026-01-01T00:00:00Z}]\n"
const okRegions = "regions:\n  EU: {allowed: [de-fra-1, ch-zrh-1]}\n"

func TestParsePolicyMalformed(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		// the document
		{"empty", "", "policy: empty document"},
		{"comments only", "# nothing\n", "policy: empty document"},
		{"null document", "---\n", "policy: want a mapping with locations and regions, got an empty value (line 2)"},
		{"sequence", "- locations\n", "policy: want a mapping with locations and regions, got a sequence (line 1)"},
		{"scalar", "hello\n", `got the scalar "hello"`},
		{"bad YAML", "locations: {ch-zrh-1: {country: CH}\n", "policy: invalid YAML: line "},
		{"tab indentation", "locations:\n\tch-zrh-1: {country: CH}\n", "policy: invalid YAML"},
		{"invalid UTF-8", "locations: \xff\n", "policy: invalid YAML"},
		{"two documents", okLocations + okRegions + "---\nlocations: {}\n", "policy: more than one YAML document (line 6)"},
		{"two documents, second invalid", okLocations + okRegions + "---\n[\n", "policy: invalid YAML"},
		{"too big", okLocations + okRegions + "#" + strings.Repeat("x", MaxPolicySize) + "\n", "more than the maximum of 1048576"},

		// top-level keys
		{"unknown key", okLocations + okRegions + "max_delay: 1h\n", `policy: unknown key "max_delay": want locations, regions, max_log_delay or sites (line 6)`},
		{"misspelt locations", "locatons:\n  ch-zrh-1: {country: CH}\n" + okRegions, `unknown key "locatons"`},
		{"duplicate top-level key", okLocations + okRegions + "regions:\n  UK: {allowed: [ch-zrh-1]}\n", `policy: duplicate key "regions" (first at line 4) (line 6)`},
		{"missing locations", okRegions, `policy: missing key "locations" (line 1)`},
		{"missing regions", okLocations, `policy: missing key "regions" (line 1)`},
		{"complex key", "? [a, b]\n: x\n" + okLocations + okRegions, "key is not a plain scalar: want a string, got a sequence"},

		// locations
		{"no locations", "locations: {}\n" + okRegions, "policy: locations: no locations: want at least one (line 1)"},
		{"locations null", "locations:\n" + okRegions, "policy: locations: want a mapping from location names to {country: XX}, got an empty value"},
		{"locations a sequence", "locations: [ch-zrh-1]\n" + okRegions, "locations: want a mapping from location names to {country: XX}, got a sequence"},
		{"upper-case location", "locations:\n  CH-ZRH-1: {country: CH}\n" + okRegions, `policy: locations: invalid location name "CH-ZRH-1": want 2..32 characters of a-z 0-9 - (line 2)`},
		{"location with underscore", "locations:\n  ch_zrh_1: {country: CH}\n" + okRegions, `invalid location name "ch_zrh_1"`},
		{"location too short", "locations:\n  c: {country: CH}\n" + okRegions, `invalid location name "c"`},
		{"location too long", "locations:\n  " + strings.Repeat("a", 33) + ": {country: CH}\n" + okRegions, `invalid location name "` + strings.Repeat("a", 33) + `"`},
		{"empty location name", "locations:\n  \"\": {country: CH}\n" + okRegions, `invalid location name ""`},
		{"duplicate location", okLocations + "  ch-zrh-1: {country: CH}\n" + okRegions, `policy: locations: duplicate key "ch-zrh-1" (first at line 2) (line 4)`},
		{"location null", "locations:\n  ch-zrh-1:\n" + okRegions, `policy: locations.ch-zrh-1: want a mapping {country: XX}, got an empty value (line 2)`},
		{"location a scalar", "locations:\n  ch-zrh-1: CH\n" + okRegions, `locations.ch-zrh-1: want a mapping {country: XX}, got the scalar "CH"`},
		{"missing country", "locations:\n  ch-zrh-1: {}\n" + okRegions, `policy: locations.ch-zrh-1: missing key "country" (line 2)`},
		{"unknown location key", "locations:\n  ch-zrh-1: {country: CH, city: Zurich}\n" + okRegions, `policy: locations.ch-zrh-1: unknown key "city": want country (line 2)`},
		{"duplicate country", "locations:\n  ch-zrh-1: {country: CH, country: DE}\n" + okRegions, `locations.ch-zrh-1: duplicate key "country"`},
		{"lower-case country", "locations:\n  ch-zrh-1: {country: ch}\n" + okRegions, `policy: locations.ch-zrh-1.country: invalid country "ch": want two letters A-Z (line 2)`},
		{"three-letter country", "locations:\n  ch-zrh-1: {country: CHE}\n" + okRegions, `invalid country "CHE"`},
		{"empty country", "locations:\n  ch-zrh-1: {country: }\n" + okRegions, `invalid country ""`},
		{"country a sequence", "locations:\n  ch-zrh-1: {country: [CH]}\n" + okRegions, `policy: locations.ch-zrh-1.country: want a string, got a sequence (line 2)`},

		// regions
		{"no regions", okLocations + "regions: {}\n", "policy: regions: no regions: want at least one (line 4)"},
		{"regions null", okLocations + "regions:\n", "policy: regions: want a mapping from region names to {allowed: [...]}, got an empty value"},
		{"lower-case region", okLocations + "regions:\n  eu: {allowed: [ch-zrh-1]}\n", `policy: regions: invalid region name "eu": want 2..8 letters A-Z (line 5)`},
		{"region too long", okLocations + "regions:\n  EUROPEAN: {allowed: [ch-zrh-1]}\n  EUROPEANS: {allowed: [ch-zrh-1]}\n", `invalid region name "EUROPEANS"`},
		{"region too short", okLocations + "regions:\n  E: {allowed: [ch-zrh-1]}\n", `invalid region name "E"`},
		{"duplicate region", okLocations + okRegions + "  EU: {allowed: [ch-zrh-1]}\n", `policy: regions: duplicate key "EU" (first at line 5) (line 6)`},
		{"missing allowed", okLocations + "regions:\n  EU: {}\n", `policy: regions.EU: missing key "allowed" (line 5)`},
		{"unknown region key", okLocations + "regions:\n  EU: {allowed: [ch-zrh-1], denied: [de-fra-1]}\n", `policy: regions.EU: unknown key "denied": want allowed (line 5)`},
		{"duplicate allowed key", okLocations + "regions:\n  EU: {allowed: [ch-zrh-1], allowed: [de-fra-1]}\n", `regions.EU: duplicate key "allowed"`},
		{"allowed empty", okLocations + "regions:\n  EU: {allowed: []}\n", `policy: regions.EU.allowed: empty: want at least one location (line 5)`},
		{"allowed a scalar", okLocations + "regions:\n  EU: {allowed: ch-zrh-1}\n", `policy: regions.EU.allowed: want a sequence of location names, got the scalar "ch-zrh-1" (line 5)`},
		{"allowed null", okLocations + "regions:\n  EU: {allowed: }\n", `regions.EU.allowed: want a sequence of location names, got an empty value`},
		{"unknown allowed location", okLocations + "regions:\n  EU:\n    allowed:\n      - ch-zrh-1\n      - xx-yyy-1\n",
			`policy: regions.EU.allowed[1]: unknown location "xx-yyy-1": not listed under locations (line 8)`},
		{"duplicate allowed location", okLocations + "regions:\n  EU: {allowed: [ch-zrh-1, de-fra-1, ch-zrh-1]}\n", `policy: regions.EU.allowed[2]: duplicate location "ch-zrh-1" (also regions.EU.allowed[0]) (line 5)`},
		{"allowed item a mapping", okLocations + "regions:\n  EU: {allowed: [{ch-zrh-1: yes}]}\n", `policy: regions.EU.allowed[0]: want a string, got a mapping (line 5)`},

		// max_log_delay
		{"delay without unit", okLocations + okRegions + "max_log_delay: 3600\n", `policy: max_log_delay: invalid duration "3600": want a Go duration such as 1h or 90m (line 6)`},
		{"delay in words", okLocations + okRegions + "max_log_delay: 1 hour\n", `invalid duration "1 hour"`},
		{"delay empty", okLocations + okRegions + "max_log_delay:\n", `invalid duration ""`},
		{"delay zero", okLocations + okRegions + "max_log_delay: 0s\n", `policy: max_log_delay: 0s: want a positive duration (line 6)`},
		{"delay negative", okLocations + okRegions + "max_log_delay: -1h\n", `-1h: want a positive duration`},
		{"delay a sequence", okLocations + okRegions + "max_log_delay: [1h]\n", `max_log_delay: want a string, got a sequence`},

		// sites
		{"sites empty", okLocations + okRegions + "sites: {}\n", "policy: sites: no sites: want at least one, or no sites key (line 6)"},
		{"sites a sequence", okLocations + okRegions + "sites: [zrh]\n", "policy: sites: want a mapping from site names to {locations: [...], keys: [...]}, got a sequence (line 6)"},
		{"bad site name", okLocations + okRegions + "sites:\n  ZRH: {locations: [ch-zrh-1], keys: [{key: " + zrhKey + ", from: 2026-01-01T00:00:00Z}]}\n", `policy: sites: invalid site name "ZRH": want 2..32 characters of a-z 0-9 - (line 7)`},
		{"site unknown key", sitesWith("    locations: [ch-zrh-1]\n" + okSiteKeys + "    country: CH\n"), `policy: sites.zrh: unknown key "country": want locations or keys (line 10)`},
		{"site missing locations", sitesWith(okSiteKeys), `policy: sites.zrh: missing key "locations" (line 8)`},
		{"site missing keys", sitesWith("    locations: [ch-zrh-1]\n"), `policy: sites.zrh: missing key "keys" (line 8)`},
		{"site locations empty", sitesWith("    locations: []\n" + okSiteKeys), `policy: sites.zrh.locations: empty: want at least one (line 8)`},
		{"site locations a scalar", sitesWith("    locations: ch-zrh-1\n" + okSiteKeys), `policy: sites.zrh.locations: want a sequence of location names, got the scalar "ch-zrh-1" (line 8)`},
		{"site unknown location", sitesWith("    locations: [ch-zrh-1, xx-yyy-1]\n" + okSiteKeys), `policy: sites.zrh.locations[1]: unknown location "xx-yyy-1": not listed under locations (line 8)`},
		{"site duplicate location", sitesWith("    locations: [ch-zrh-1, ch-zrh-1]\n" + okSiteKeys), `policy: sites.zrh.locations[1]: duplicate location "ch-zrh-1" (also sites.zrh.locations[0]) (line 8)`},
		{"location of two sites", sitesWith("    locations: [ch-zrh-1]\n" + okSiteKeys + "  mow:\n    locations: [de-fra-1, ch-zrh-1]\n    keys: [{key: " + mowKey + ", from: 2026-01-01T00:00:00Z}]\n"),
			`policy: sites.mow.locations[1]: location "ch-zrh-1" already belongs to site "zrh": a location has at most one site (line 11)`},
		{"site keys empty", sitesWith("    locations: [ch-zrh-1]\n    keys: []\n"), `policy: sites.zrh.keys: empty: want at least one (line 9)`},
		{"site key a scalar", sitesWith("    locations: [ch-zrh-1]\n    keys: [" + zrhKey + "]\n"), `policy: sites.zrh.keys[0]: want a mapping {key: ..., from: ..., until: ...}, got the scalar`},
		{"site key missing key", sitesWith("    locations: [ch-zrh-1]\n    keys: [{from: 2026-01-01T00:00:00Z}]\n"), `policy: sites.zrh.keys[0]: missing key "key" (line 9)`},
		{"site key missing from", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: " + zrhKey + "}]\n"), `policy: sites.zrh.keys[0]: missing key "from": when the key starts to sign (line 9)`},
		{"site key unknown field", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: " + zrhKey + ", from: 2026-01-01T00:00:00Z, hsm: yes}]\n"), `policy: sites.zrh.keys[0]: unknown key "hsm": want key, from or until (line 9)`},
		{"site key malformed", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: zrh+d6440a3+AT7w, from: 2026-01-01T00:00:00Z}]\n"), `policy: sites.zrh.keys[0].key: invalid verifier key "zrh+d6440a3+AT7w": malformed verifier id: want NAME+HASH+BASE64 as written by custody keygen --site (line 9)`},
		{"site key hash wrong", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: " + strings.Replace(zrhKey, "d6440a39", "d6440a3a", 1) + ", from: 2026-01-01T00:00:00Z}]\n"), `invalid verifier hash`},
		{"site key private", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: PRIVATE+KEY+zrh+d6440a39+AT7w, from: 2026-01-01T00:00:00Z}]\n"), `sites.zrh.keys[0].key: invalid verifier key`},
		{"site key of another site", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: " + mowKey + ", from: 2026-01-01T00:00:00Z}]\n"), `policy: sites.zrh.keys[0].key: key of "mow", not of the site "zrh" (line 9)`},
		{"site key twice", sitesWith("    locations: [ch-zrh-1]\n    keys:\n      - {key: " + zrhKey + ", from: 2026-01-01T00:00:00Z}\n      - {key: " + zrhKey + ", from: 2027-01-01T00:00:00Z}\n"),
			`policy: sites.zrh.keys[1].key: key hash d6440a39 also in sites.zrh.keys[0]: each key of a site needs its own hash (generate a new key) (line 11)`},
		{"site key date only", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: " + zrhKey + ", from: 2026-01-01}]\n"), `policy: sites.zrh.keys[0].from: invalid time "2026-01-01": want RFC 3339 such as 2026-01-01T00:00:00Z (line 9)`},
		{"site key time without zone", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: " + zrhKey + ", from: 2026-01-01T00:00:00}]\n"), `invalid time "2026-01-01T00:00:00"`},
		{"site key until before from", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: " + zrhKey + ", from: 2026-01-01T00:00:00Z, until: 2025-12-31T23:59:59Z}]\n"),
			`policy: sites.zrh.keys[0].until: 2025-12-31T23:59:59Z is not after from 2026-01-01T00:00:00Z (line 9)`},
		{"site key until equals from", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: " + zrhKey + ", from: 2026-01-01T01:00:00+01:00, until: 2026-01-01T00:00:00Z}]\n"), `is not after from`},
		{"site key until zero", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: " + zrhKey + ", from: 0001-01-01T00:00:00Z, until: 0001-01-01T00:00:00Z}]\n"), `is not after from`},
		{"site key from a sequence", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: " + zrhKey + ", from: [2026]}]\n"), `policy: sites.zrh.keys[0].from: want a string, got a sequence (line 9)`},
		{"site key tagged", sitesWith("    locations: [ch-zrh-1]\n    keys: [{key: " + zrhKey + ", from: !!timestamp 2026-01-01T00:00:00Z}]\n"), `explicit tag !!timestamp is not allowed`},

		// YAML features a policy has no use for
		{"anchor", "locations: &l\n  ch-zrh-1: {country: CH}\n" + okRegions, "policy: locations: anchors are not allowed (line 1)"},
		{"alias", "regions:\n  EU: {allowed: [&z ch-zrh-1]}\nlocations:\n  ch-zrh-1: {country: CH}\n  *z : {country: DE}\n", "policy: locations: key is not a plain scalar: aliases are not allowed (line 5)"},
		{"merge key", "base: &b {country: CH}\nlocations:\n  ch-zrh-1: {<<: *b}\n" + okRegions, "anchors are not allowed"},
		{"explicit tag", okLocations + okRegions + "max_log_delay: !!str 1h\n", "policy: max_log_delay: explicit tag !!str is not allowed (line 6)"},
		{"custom tag", "locations: !dc\n  ch-zrh-1: {country: CH}\n" + okRegions, "policy: locations: explicit tag !dc is not allowed (line 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("ParsePolicy accepted %q as %+v", tc.yaml, p)
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *PolicyError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParsePolicy error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

func TestLoadPolicyErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	_, err := LoadPolicy(missing)
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.File != missing || !strings.HasPrefix(err.Error(), "policy "+missing+": ") {
		t.Errorf("LoadPolicy(missing) = %v", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(okLocations+"regions:\n  EU: {allowed: [ch-zrh-1, xx-yyy-1]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadPolicy(bad)
	want := "policy " + bad + `: regions.EU.allowed[1]: unknown location "xx-yyy-1": not listed under locations (line 5)`
	if err == nil || err.Error() != want {
		t.Errorf("LoadPolicy(bad) = %v, want %s", err, want)
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(okLocations+okRegions+"#"+strings.Repeat("x", 2*MaxPolicySize)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = LoadPolicy(big); err == nil || !strings.Contains(err.Error(), "more than the maximum") {
		t.Errorf("LoadPolicy(big) = %v", err)
	}
}

// Seeds for FuzzParsePolicy are in testdata/fuzz/FuzzParsePolicy/; those
// named valid-* must parse and the others must not (TestPolicyFuzzSeeds).
func FuzzParsePolicy(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePolicy(%q) error %v (%T) is not a *PolicyError", b, err, err)
			}
			if p != nil {
				t.Fatalf("ParsePolicy(%q) returned a policy and an error", b)
			}
			return
		}
		if len(p.Locations) == 0 || len(p.Regions) == 0 || p.MaxLogDelay <= 0 {
			t.Fatalf("ParsePolicy(%q) accepted %+v", b, p)
		}
		for name, l := range p.Locations {
			if !isLocationName(name) || !isCountry(l.Country) {
				t.Fatalf("ParsePolicy(%q) accepted location %q: %+v", b, name, l)
			}
		}
		for name, r := range p.Regions {
			if !isRegionName(name) || len(r.Allowed) == 0 {
				t.Fatalf("ParsePolicy(%q) accepted region %q: %+v", b, name, r)
			}
			for _, l := range r.Allowed {
				if _, ok := p.Locations[l]; !ok {
					t.Fatalf("ParsePolicy(%q) accepted region %q allowing unknown %q", b, name, l)
				}
			}
		}
		owner := map[string]string{}
		for name, st := range p.Sites {
			if !isLocationName(name) || len(st.Locations) == 0 || len(st.Keys) == 0 {
				t.Fatalf("ParsePolicy(%q) accepted site %q: %+v", b, name, st)
			}
			for _, l := range st.Locations {
				if _, ok := p.Locations[l]; !ok {
					t.Fatalf("ParsePolicy(%q) accepted site %q speaking for unknown %q", b, name, l)
				}
				if o, dup := owner[l]; dup {
					t.Fatalf("ParsePolicy(%q) accepted location %q under sites %q and %q", b, l, o, name)
				}
				owner[l] = name
			}
			for _, k := range st.Keys {
				v, err := note.NewVerifier(k.Key)
				if err != nil || v.Name() != name || k.From.Location() != time.UTC || (!k.Until.IsZero() && !k.Until.After(k.From)) {
					t.Fatalf("ParsePolicy(%q) accepted site %q key %+v (%v)", b, name, k, err)
				}
			}
		}
		checkPolicyRoundTrip(t, p)
	})
}

func TestPolicyFuzzSeeds(t *testing.T) {
	fuzzseeds.Check(t, map[string]func(args []any) error{
		"FuzzParsePolicy": func(a []any) error { _, err := ParsePolicy(a[0].([]byte)); return err },
	})
}
