package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/sumdb/note"
)

// DefaultMaxLogDelay is the max_log_delay of a policy that does not set one.
const DefaultMaxLogDelay = time.Hour

// MaxPolicySize is the largest policy file, in bytes, that ParsePolicy and
// LoadPolicy accept. Real policies are a few hundred bytes.
const MaxPolicySize = 1 << 20

// Location is one data centre of a policy.
type Location struct {
	// Country is the jurisdiction the data centre is in: two letters A-Z,
	// normally an ISO 3166-1 alpha-2 code (not checked against the list).
	Country string `yaml:"country"`
}

// Region is the rule for the samples of one customer region.
type Region struct {
	// Allowed lists, in the order the policy file gives them, the locations
	// where the region's samples may be handled. In a Policy returned by
	// ParsePolicy it is non-empty, has no duplicates, and every entry is a
	// key of Policy.Locations.
	Allowed []string `yaml:"allowed"`
}

// Site is a site of the policy: a data centre (or campus) whose key vouches
// for the events at its locations (package site, docs/site-signing.md).
type Site struct {
	// Locations are the locations the site may speak for, in file order:
	// non-empty, distinct, each a key of Policy.Locations and claimed by
	// no other site.
	Locations []string
	// Keys are the site's keys, current and past, in file order:
	// non-empty, with distinct key hashes.
	Keys []SiteKey
}

// SiteKey is one key of a site and the window in which it may sign.
type SiteKey struct {
	// Key is the site's Ed25519 verifier key in the signed-note format
	// NAME+HASH+BASE64 (custody keygen --site NAME writes it), NAME being
	// the site's name.
	Key string
	// From is the first instant the key may sign, in UTC.
	From time.Time
	// Until is the instant from which it may no longer sign, in UTC, after
	// From; zero when the file gives no until (no end). Attestations signed
	// before Until stay valid: rotating or revoking a key never invalidates
	// what it signed in its window.
	Until time.Time
}

// Policy is the auditor's routing policy: which data centres exist, where
// each customer region's samples may be handled, how late an event may be
// logged and, optionally, which sites vouch for which locations with which
// keys. The file format is YAML:
//
//	locations:                 # every data centre and its jurisdiction
//	  ch-zrh-1: {country: CH}
//	  ru-mow-1: {country: RU}
//	regions:                   # where each customer region's samples may be handled
//	  EU:  {allowed: [ch-zrh-1]}
//	  ROW: {allowed: [ch-zrh-1, ru-mow-1]}
//	max_log_delay: 1h          # optional, default 1h
//	sites:                     # optional: who signs for which locations
//	  zrh:
//	    locations: [ch-zrh-1]
//	    keys:
//	      - key: zrh+b68d1ea8+AcBQxWN6RPqGKf/zzMziMAyzYqY9mdlfxUFFJm9DMkRa
//	        from: 2026-01-01T00:00:00Z
//	        until: 2026-07-01T00:00:00Z   # optional: rotated out
//	      - key: zrh+d6440a39+AT7wiVkDMCjI/G/G1JGhJUjnjfau+y18LBkMP3jO8/UL
//	        from: 2026-06-15T00:00:00Z
//
// A Policy returned by ParsePolicy or LoadPolicy satisfies every rule listed
// at ParsePolicy. A Policy built in code need not; the Engine then treats a
// location as known exactly when it is a key of Locations.
type Policy struct {
	// Locations maps each data centre name ([a-z0-9-]{2,32}) to its
	// jurisdiction. It has at least one entry.
	Locations map[string]Location
	// Regions maps each customer region name ([A-Z]{2,8}) to the locations
	// its samples may be handled in. It has at least one entry.
	Regions map[string]Region
	// MaxLogDelay is the longest an event may take from its time to being
	// logged without a "late" finding; positive. DefaultMaxLogDelay when
	// the file does not set max_log_delay.
	MaxLogDelay time.Duration
	// Sites maps each site name ([a-z0-9-]{2,32}) to its locations and
	// keys; nil when the file has no sites key (an unsigned log).
	Sites map[string]Site
}

// PolicyError reports a policy that ParsePolicy or LoadPolicy rejects. Every
// error those functions return is a *PolicyError.
type PolicyError struct {
	// File is the path given to LoadPolicy; empty from ParsePolicy.
	File string
	// Line is the 1-based line of the offending YAML node, or 0 when the
	// problem has no single place (the file is empty, too big, or not
	// YAML at all, in which case Reason usually names the line).
	Line int
	// Path names the offending key in the document, in the form
	// "regions.EU.allowed[1]"; empty for the document as a whole.
	Path string
	// Reason says what is wrong.
	Reason string
}

// Error returns "policy[ FILE]: [PATH: ]REASON[ (line N)]", for example
//
//	policy: regions.EU.allowed[1]: unknown location "xx-yyy-1" (line 9)
func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("policy")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// LoadPolicy reads the policy file at path and parses it with ParsePolicy.
// Every error is a *PolicyError with File set to path, including failures to
// read the file.
func LoadPolicy(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &PolicyError{File: path, Reason: err.Error()}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPolicySize+1))
	if err != nil {
		return nil, &PolicyError{File: path, Reason: err.Error()}
	}
	p, err := ParsePolicy(b)
	if err != nil {
		var pe *PolicyError
		if errors.As(err, &pe) {
			pe.File = path
		}
		return nil, err
	}
	return p, nil
}

// ParsePolicy parses a policy file. It is strict; it accepts exactly one
// YAML document of at most MaxPolicySize bytes that is a mapping with
//
//   - locations (required): a mapping, with at least one entry, from location
//     names matching [a-z0-9-]{2,32} to mappings with exactly the key
//     country, whose value matches [A-Z]{2};
//   - regions (required): a mapping, with at least one entry, from region
//     names matching [A-Z]{2,8} to mappings with exactly the key allowed,
//     whose value is a non-empty sequence of distinct location names each of
//     which is a key of locations;
//   - max_log_delay (optional, default DefaultMaxLogDelay): a positive Go
//     duration such as 1h or 90m (time.ParseDuration syntax);
//   - sites (optional): a mapping, with at least one entry, from site names
//     matching [a-z0-9-]{2,32} to mappings with exactly the keys locations
//     (a non-empty sequence of distinct location names, each a key of
//     locations and listed under no other site) and keys (a non-empty
//     sequence of mappings with the keys key, from and optionally until:
//     key an Ed25519 signed-note verifier key NAME+HASH+BASE64 whose NAME
//     is the site's name, with a key hash no other key of the site has;
//     from and until RFC 3339 times such as 2026-01-01T00:00:00Z, until
//     after from);
//
// and nothing else. Unknown keys, duplicate keys, missing keys, values of the
// wrong kind, anchors, aliases and explicit tags (such as !!str) are all
// rejected. Any scalar may be quoted or not. The error is a *PolicyError
// naming the key and the line.
func ParsePolicy(b []byte) (*Policy, error) {
	if len(b) > MaxPolicySize {
		return nil, &PolicyError{Reason: fmt.Sprintf("%d bytes or more, more than the maximum of %d", len(b), MaxPolicySize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := decodeYAML(dec, &doc); err != nil {
		if err == io.EOF {
			return nil, &PolicyError{Reason: "empty document: want a mapping with locations and regions"}
		}
		return nil, &PolicyError{Reason: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := decodeYAML(dec, &extra); err != io.EOF {
		if err != nil {
			return nil, &PolicyError{Reason: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		return nil, &PolicyError{Line: extra.Line, Reason: "more than one YAML document"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &PolicyError{Line: doc.Line, Reason: "want one YAML document"}
	}
	return policyFromNode(doc.Content[0])
}

// decodeYAML decodes the next document into n, turning a panic of the YAML
// library (which it should never have) into an error.
func decodeYAML(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("YAML parser failure: %v", r)
		}
	}()
	return dec.Decode(n)
}

// policyFromNode checks the document's root node and builds the Policy.
func policyFromNode(root *yaml.Node) (*Policy, error) {
	top, err := mappingEntries(root, "", "a mapping with locations and regions")
	if err != nil {
		return nil, err
	}
	var locNode, regNode, delayNode, sitesNode *yaml.Node
	var locLine, regLine, sitesLine int
	for _, kv := range top {
		switch kv.key {
		case "locations":
			locNode, locLine = kv.value, kv.line
		case "regions":
			regNode, regLine = kv.value, kv.line
		case "max_log_delay":
			delayNode = kv.value
		case "sites":
			sitesNode, sitesLine = kv.value, kv.line
		default:
			return nil, &PolicyError{Line: kv.line, Reason: fmt.Sprintf("unknown key %q: want locations, regions, max_log_delay or sites", kv.key)}
		}
	}
	if locNode == nil {
		return nil, &PolicyError{Line: root.Line, Reason: `missing key "locations"`}
	}
	if regNode == nil {
		return nil, &PolicyError{Line: root.Line, Reason: `missing key "regions"`}
	}
	p := &Policy{
		Locations:   make(map[string]Location),
		Regions:     make(map[string]Region),
		MaxLogDelay: DefaultMaxLogDelay,
	}

	locs, err := mappingEntries(locNode, "locations", "a mapping from location names to {country: XX}")
	if err != nil {
		return nil, err
	}
	if len(locs) == 0 {
		return nil, &PolicyError{Line: locLine, Path: "locations", Reason: "no locations: want at least one"}
	}
	for _, kv := range locs {
		path := "locations." + kv.key
		if !isLocationName(kv.key) {
			return nil, &PolicyError{Line: kv.line, Path: "locations", Reason: fmt.Sprintf("invalid location name %q: want 2..32 characters of a-z 0-9 -", kv.key)}
		}
		fields, err := mappingEntries(kv.value, path, "a mapping {country: XX}")
		if err != nil {
			return nil, err
		}
		var loc Location
		seen := false
		for _, f := range fields {
			if f.key != "country" {
				return nil, &PolicyError{Line: f.line, Path: path, Reason: fmt.Sprintf("unknown key %q: want country", f.key)}
			}
			c, err := scalar(f.value, path+".country")
			if err != nil {
				return nil, err
			}
			if !isCountry(c) {
				return nil, &PolicyError{Line: f.value.Line, Path: path + ".country", Reason: fmt.Sprintf("invalid country %q: want two letters A-Z", c)}
			}
			loc.Country, seen = c, true
		}
		if !seen {
			return nil, &PolicyError{Line: kv.value.Line, Path: path, Reason: `missing key "country"`}
		}
		p.Locations[kv.key] = loc
	}

	regs, err := mappingEntries(regNode, "regions", "a mapping from region names to {allowed: [...]}")
	if err != nil {
		return nil, err
	}
	if len(regs) == 0 {
		return nil, &PolicyError{Line: regLine, Path: "regions", Reason: "no regions: want at least one"}
	}
	for _, kv := range regs {
		path := "regions." + kv.key
		if !isRegionName(kv.key) {
			return nil, &PolicyError{Line: kv.line, Path: "regions", Reason: fmt.Sprintf("invalid region name %q: want 2..8 letters A-Z", kv.key)}
		}
		fields, err := mappingEntries(kv.value, path, "a mapping {allowed: [...]}")
		if err != nil {
			return nil, err
		}
		var reg Region
		seen := false
		for _, f := range fields {
			if f.key != "allowed" {
				return nil, &PolicyError{Line: f.line, Path: path, Reason: fmt.Sprintf("unknown key %q: want allowed", f.key)}
			}
			apath := path + ".allowed"
			if err := plainNode(f.value, apath); err != nil {
				return nil, err
			}
			if f.value.Kind != yaml.SequenceNode {
				return nil, &PolicyError{Line: f.value.Line, Path: apath, Reason: "want a sequence of location names, got " + kindName(f.value)}
			}
			if len(f.value.Content) == 0 {
				return nil, &PolicyError{Line: f.value.Line, Path: apath, Reason: "empty: want at least one location"}
			}
			reg.Allowed = make([]string, 0, len(f.value.Content))
			at := make(map[string]int, len(f.value.Content))
			for i, item := range f.value.Content {
				ipath := fmt.Sprintf("%s[%d]", apath, i)
				name, err := scalar(item, ipath)
				if err != nil {
					return nil, err
				}
				if _, ok := p.Locations[name]; !ok {
					return nil, &PolicyError{Line: item.Line, Path: ipath, Reason: fmt.Sprintf("unknown location %q: not listed under locations", name)}
				}
				if j, dup := at[name]; dup {
					return nil, &PolicyError{Line: item.Line, Path: ipath, Reason: fmt.Sprintf("duplicate location %q (also %s[%d])", name, apath, j)}
				}
				at[name] = i
				reg.Allowed = append(reg.Allowed, name)
			}
			seen = true
		}
		if !seen {
			return nil, &PolicyError{Line: kv.value.Line, Path: path, Reason: `missing key "allowed"`}
		}
		p.Regions[kv.key] = reg
	}

	if delayNode != nil {
		s, err := scalar(delayNode, "max_log_delay")
		if err != nil {
			return nil, err
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, &PolicyError{Line: delayNode.Line, Path: "max_log_delay", Reason: fmt.Sprintf("invalid duration %q: want a Go duration such as 1h or 90m", s)}
		}
		if d <= 0 {
			return nil, &PolicyError{Line: delayNode.Line, Path: "max_log_delay", Reason: fmt.Sprintf("%s: want a positive duration", s)}
		}
		p.MaxLogDelay = d
	}
	if sitesNode != nil {
		if p.Sites, err = parseSites(sitesNode, sitesLine, p.Locations); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// parseSites parses the sites mapping; locations are the policy's.
func parseSites(n *yaml.Node, line int, locations map[string]Location) (map[string]Site, error) {
	entries, err := mappingEntries(n, "sites", "a mapping from site names to {locations: [...], keys: [...]}")
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, &PolicyError{Line: line, Path: "sites", Reason: "no sites: want at least one, or no sites key"}
	}
	sites := make(map[string]Site, len(entries))
	owner := make(map[string]string) // location -> site
	for _, kv := range entries {
		path := "sites." + kv.key
		if !isLocationName(kv.key) {
			return nil, &PolicyError{Line: kv.line, Path: "sites", Reason: fmt.Sprintf("invalid site name %q: want 2..32 characters of a-z 0-9 -", kv.key)}
		}
		fields, err := mappingEntries(kv.value, path, "a mapping {locations: [...], keys: [...]}")
		if err != nil {
			return nil, err
		}
		var st Site
		var haveLocs, haveKeys bool
		for _, f := range fields {
			switch f.key {
			case "locations":
				lpath := path + ".locations"
				items, err := sequence(f.value, lpath, "a sequence of location names")
				if err != nil {
					return nil, err
				}
				st.Locations = make([]string, 0, len(items))
				at := make(map[string]int, len(items))
				for i, item := range items {
					ipath := fmt.Sprintf("%s[%d]", lpath, i)
					name, err := scalar(item, ipath)
					if err != nil {
						return nil, err
					}
					if _, ok := locations[name]; !ok {
						return nil, &PolicyError{Line: item.Line, Path: ipath, Reason: fmt.Sprintf("unknown location %q: not listed under locations", name)}
					}
					if j, dup := at[name]; dup {
						return nil, &PolicyError{Line: item.Line, Path: ipath, Reason: fmt.Sprintf("duplicate location %q (also %s[%d])", name, lpath, j)}
					}
					if o, taken := owner[name]; taken {
						return nil, &PolicyError{Line: item.Line, Path: ipath, Reason: fmt.Sprintf("location %q already belongs to site %q: a location has at most one site", name, o)}
					}
					at[name], owner[name] = i, kv.key
					st.Locations = append(st.Locations, name)
				}
				haveLocs = true
			case "keys":
				kpath := path + ".keys"
				items, err := sequence(f.value, kpath, "a sequence of {key: ..., from: ..., until: ...}")
				if err != nil {
					return nil, err
				}
				hashes := make(map[uint32]int, len(items))
				for i, item := range items {
					k, hash, err := parseSiteKey(item, fmt.Sprintf("%s[%d]", kpath, i), kv.key)
					if err != nil {
						return nil, err
					}
					if j, dup := hashes[hash]; dup {
						return nil, &PolicyError{Line: item.Line, Path: fmt.Sprintf("%s[%d].key", kpath, i), Reason: fmt.Sprintf("key hash %08x also in %s[%d]: each key of a site needs its own hash (generate a new key)", hash, kpath, j)}
					}
					hashes[hash] = i
					st.Keys = append(st.Keys, k)
				}
				haveKeys = true
			default:
				return nil, &PolicyError{Line: f.line, Path: path, Reason: fmt.Sprintf("unknown key %q: want locations or keys", f.key)}
			}
		}
		if !haveLocs {
			return nil, &PolicyError{Line: kv.value.Line, Path: path, Reason: `missing key "locations"`}
		}
		if !haveKeys {
			return nil, &PolicyError{Line: kv.value.Line, Path: path, Reason: `missing key "keys"`}
		}
		sites[kv.key] = st
	}
	return sites, nil
}

// sequence returns the items of the non-empty sequence n.
func sequence(n *yaml.Node, path, want string) ([]*yaml.Node, error) {
	if err := plainNode(n, path); err != nil {
		return nil, err
	}
	if n.Kind != yaml.SequenceNode {
		return nil, &PolicyError{Line: n.Line, Path: path, Reason: "want " + want + ", got " + kindName(n)}
	}
	if len(n.Content) == 0 {
		return nil, &PolicyError{Line: n.Line, Path: path, Reason: "empty: want at least one"}
	}
	return n.Content, nil
}

// parseSiteKey parses one item of a site's keys; site is the site's name.
// It returns the key and its key hash.
func parseSiteKey(n *yaml.Node, path, site string) (SiteKey, uint32, error) {
	fields, err := mappingEntries(n, path, "a mapping {key: ..., from: ..., until: ...}")
	if err != nil {
		return SiteKey{}, 0, err
	}
	var k SiteKey
	var hash uint32
	var haveKey, haveFrom bool
	var untilLine int
	for _, f := range fields {
		fpath := path + "." + f.key
		v, err := scalar(f.value, fpath)
		if err != nil {
			return SiteKey{}, 0, err
		}
		switch f.key {
		case "key":
			ver, err := note.NewVerifier(v)
			if err != nil {
				return SiteKey{}, 0, &PolicyError{Line: f.value.Line, Path: fpath, Reason: fmt.Sprintf("invalid verifier key %.80q: %v: want NAME+HASH+BASE64 as written by custody keygen --site", v, err)}
			}
			if ver.Name() != site {
				return SiteKey{}, 0, &PolicyError{Line: f.value.Line, Path: fpath, Reason: fmt.Sprintf("key of %q, not of the site %q", ver.Name(), site)}
			}
			k.Key, hash, haveKey = v, ver.KeyHash(), true
		case "from", "until":
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return SiteKey{}, 0, &PolicyError{Line: f.value.Line, Path: fpath, Reason: fmt.Sprintf("invalid time %q: want RFC 3339 such as 2026-01-01T00:00:00Z", v)}
			}
			if f.key == "from" {
				k.From, haveFrom = t.UTC(), true
			} else {
				k.Until, untilLine = t.UTC(), f.value.Line
			}
		default:
			return SiteKey{}, 0, &PolicyError{Line: f.line, Path: path, Reason: fmt.Sprintf("unknown key %q: want key, from or until", f.key)}
		}
	}
	if !haveKey {
		return SiteKey{}, 0, &PolicyError{Line: n.Line, Path: path, Reason: `missing key "key"`}
	}
	if !haveFrom {
		return SiteKey{}, 0, &PolicyError{Line: n.Line, Path: path, Reason: `missing key "from": when the key starts to sign`}
	}
	if untilLine != 0 && !k.Until.After(k.From) {
		return SiteKey{}, 0, &PolicyError{Line: untilLine, Path: path + ".until", Reason: fmt.Sprintf("%s is not after from %s", k.Until.Format(time.RFC3339Nano), k.From.Format(time.RFC3339Nano))}
	}
	return k, hash, nil
}

// keyValue is one entry of a YAML mapping whose key is a scalar.
type keyValue struct {
	key   string
	line  int // the key's line
	value *yaml.Node
}

// mappingEntries returns the entries of the mapping n, in file order,
// rejecting anything else, non-scalar keys and duplicate keys. path names n
// in errors and want describes what was expected.
func mappingEntries(n *yaml.Node, path, want string) ([]keyValue, error) {
	if err := plainNode(n, path); err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, &PolicyError{Line: n.Line, Path: path, Reason: "want " + want + ", got " + kindName(n)}
	}
	kvs := make([]keyValue, 0, len(n.Content)/2)
	firstLine := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key, err := scalar(k, path)
		if err != nil {
			return nil, &PolicyError{Line: k.Line, Path: path, Reason: "key is not a plain scalar: " + err.(*PolicyError).Reason}
		}
		if line, dup := firstLine[key]; dup {
			return nil, &PolicyError{Line: k.Line, Path: path, Reason: fmt.Sprintf("duplicate key %q (first at line %d)", key, line)}
		}
		firstLine[key] = k.Line
		if err := plainNode(v, joinPath(path, key)); err != nil {
			return nil, err
		}
		kvs = append(kvs, keyValue{key: key, line: k.Line, value: v})
	}
	return kvs, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// plainNode rejects anchors, aliases and explicit tags.
func plainNode(n *yaml.Node, path string) error {
	switch {
	case n.Kind == yaml.AliasNode:
		return &PolicyError{Line: n.Line, Path: path, Reason: "aliases are not allowed"}
	case n.Anchor != "":
		return &PolicyError{Line: n.Line, Path: path, Reason: "anchors are not allowed"}
	case n.Style&yaml.TaggedStyle != 0:
		return &PolicyError{Line: n.Line, Path: path, Reason: fmt.Sprintf("explicit tag %s is not allowed", n.Tag)}
	}
	return nil
}

// scalar returns the value of the scalar node n, whatever type YAML would
// resolve it to: every value of a policy is a string, so "123" or "no" are
// taken literally.
func scalar(n *yaml.Node, path string) (string, error) {
	if err := plainNode(n, path); err != nil {
		return "", err
	}
	if n.Kind != yaml.ScalarNode {
		return "", &PolicyError{Line: n.Line, Path: path, Reason: "want a string, got " + kindName(n)}
	}
	return n.Value, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "an empty value"
		}
		return "the scalar " + strconv.Quote(n.Value)
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "nothing"
}

// isLocationName reports whether s matches [a-z0-9-]{2,32}.
func isLocationName(s string) bool {
	if len(s) < 2 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isRegionName reports whether s matches [A-Z]{2,8}.
func isRegionName(s string) bool {
	return len(s) >= 2 && len(s) <= 8 && isUpper(s)
}

// isCountry reports whether s matches [A-Z]{2}.
func isCountry(s string) bool {
	return len(s) == 2 && isUpper(s)
}

func isUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// policyYAML is the shape MarshalYAML writes.
type policyYAML struct {
	Locations   map[string]Location `yaml:"locations"`
	Regions     map[string]Region   `yaml:"regions"`
	MaxLogDelay string              `yaml:"max_log_delay"`
	Sites       map[string]siteYAML `yaml:"sites,omitempty"`
}

type siteYAML struct {
	Locations []string      `yaml:"locations"`
	Keys      []siteKeyYAML `yaml:"keys"`
}

type siteKeyYAML struct {
	Key   string `yaml:"key"`
	From  string `yaml:"from"`
	Until string `yaml:"until,omitempty"`
}

// MarshalYAML lets yaml.Marshal write p in the policy file format, with
// max_log_delay as a Go duration string, times in RFC 3339 (with any
// fraction of a second) and the keys of each mapping sorted. For a Policy
// returned by ParsePolicy, ParsePolicy of the output returns a Policy equal
// to p (reflect.DeepEqual).
func (p Policy) MarshalYAML() (any, error) {
	out := policyYAML{Locations: p.Locations, Regions: p.Regions, MaxLogDelay: p.MaxLogDelay.String()}
	if p.Sites != nil {
		out.Sites = make(map[string]siteYAML, len(p.Sites))
		for name, st := range p.Sites {
			sy := siteYAML{Locations: st.Locations}
			for _, k := range st.Keys {
				ky := siteKeyYAML{Key: k.Key, From: k.From.UTC().Format(time.RFC3339Nano)}
				if !k.Until.IsZero() {
					ky.Until = k.Until.UTC().Format(time.RFC3339Nano)
				}
				sy.Keys = append(sy.Keys, ky)
			}
			out.Sites[name] = sy
		}
	}
	return out, nil
}
