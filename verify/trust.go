package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// maxCosignatureSkew is how far in the future a witness cosignature's
// timestamp may be before [TrustPolicy.Evaluate] refuses to count it.
const maxCosignatureSkew = 10 * time.Minute

// TrustPolicy is a parsed c2sp.org/tlog-policy file: the logs a verifier
// accepts, the witnesses it knows and the quorum of witness cosignatures it
// requires before it treats a checkpoint as final. It is immutable once
// parsed and safe for concurrent use.
type TrustPolicy struct {
	items     []policyItem // every definition in file order, for Marshal
	logs      []*policyLog
	witnesses []*policyWitness
	groups    []*policyGroup
	defined   map[string]bool // witness and group names
	quorum    string          // a witness or group name, or "none"
}

type policyItem struct {
	log     *policyLog
	witness *policyWitness
	group   *policyGroup
	quorum  string
}

type policyLog struct {
	vkey, url string
	v         note.Verifier
}

type policyWitness struct {
	name, vkey, url string
	v               *cosigVerifier
}

type policyGroup struct {
	name      string
	threshold string // as written: "any", "all" or k
	k         int
	members   []string
}

// trustLog is a log listed in a trust policy.
type trustLog struct {
	// VKey is the log's Ed25519 (type 0x01) verifier key.
	VKey string
	// URL is the optional URL from the policy line, or "".
	URL string
}

// TrustWitness is a witness listed in a trust policy.
type TrustWitness struct {
	// Name is the witness's name within the policy (not its key name).
	Name string
	// VKey is its cosignature/v1 (type 0x04) verifier key.
	VKey string
	// URL is the optional URL from the policy line (by convention the
	// witness's c2sp.org/tlog-witness submission prefix), or "".
	URL string
}

// ParseTrustPolicy parses a c2sp.org/tlog-policy file strictly. Lines are
//
//	log <vkey> [<url>]
//	witness <name> <vkey> [<url>]
//	group <name> <k|any|all> <member>...
//	quorum <name|none>
//
// with items separated by spaces or tabs, and blank lines and lines whose
// first non-blank character is "#" ignored. It guarantees that the result
// has exactly one quorum line naming "none" or a witness or group defined on
// an earlier line; that log keys are valid Ed25519 (type 0x01) note
// verifier keys and witness keys valid cosignature/v1 (type 0x04) keys; that
// no two logs and no two witnesses share a public key and no two keys share
// a (name, key ID) pair; that witness and group names are unique and not
// "none"; that every group has at least one member, each defined on an
// earlier line (so there are no cycles) and listed once, and a threshold k
// with 1 <= k <= members; and that URLs are absolute http(s) URLs. The file
// may contain only tab, newline and bytes 0x20-0x7E and 0x80-0xFF; names are
// opaque bytes. Every error names the line.
func ParseTrustPolicy(b []byte) (*TrustPolicy, error) {
	p, err := parseTrustPolicy(b)
	if err != nil {
		return nil, fmt.Errorf("trust policy: %w", err)
	}
	return p, nil
}

type nameHash struct {
	name string
	hash uint32
}

func parseTrustPolicy(b []byte) (*TrustPolicy, error) {
	p := &TrustPolicy{defined: map[string]bool{}}
	keyIDs := map[nameHash]int{}    // (key name, key ID) -> line
	logPubs := map[string]int{}     // public key -> line
	witnessPubs := map[string]int{} // public key -> line
	quorumLine := 0

	lines := bytes.Split(b, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		// The newline ending the last line; a last line without one is
		// accepted too.
		lines = lines[:len(lines)-1]
	}
	for i, raw := range lines {
		n := i + 1
		fail := func(format string, args ...any) (*TrustPolicy, error) {
			return nil, fmt.Errorf("line %d: %s", n, fmt.Sprintf(format, args...))
		}
		for j, c := range raw {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return fail("byte %d is the control character %#02x (only tab and newline are allowed)", j+1, c)
			}
		}
		f := strings.FieldsFunc(string(raw), func(r rune) bool { return r == ' ' || r == '\t' })
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "log":
			if len(f) < 2 || len(f) > 3 {
				return fail("want \"log <vkey> [<url>]\", got %d items", len(f))
			}
			v, err := NewVerifier(f[1])
			if err != nil {
				return nil, fmt.Errorf("line %d: log key: %w", n, err) // never quotes the key
			}
			_, _, key, _ := splitVKey(f[1])
			if prev, ok := logPubs[string(key[1:])]; ok {
				return fail("log key has the same public key as the log on line %d", prev)
			}
			logPubs[string(key[1:])] = n
			if prev, ok := keyIDs[nameHash{v.Name(), v.KeyHash()}]; ok {
				return fail("log key %s+%08x has the same name and key ID as the key on line %d", v.Name(), v.KeyHash(), prev)
			}
			keyIDs[nameHash{v.Name(), v.KeyHash()}] = n
			l := &policyLog{vkey: f[1], v: v}
			if len(f) == 3 {
				if err := checkPolicyURL(f[2]); err != nil {
					return fail("log URL: %v", err)
				}
				l.url = f[2]
			}
			p.logs = append(p.logs, l)
			p.items = append(p.items, policyItem{log: l})
		case "witness":
			if len(f) < 3 || len(f) > 4 {
				return fail("want \"witness <name> <vkey> [<url>]\", got %d items", len(f))
			}
			name := f[1]
			if err := p.checkNewName(name); err != nil {
				return fail("witness %v", err)
			}
			v, err := newCosigVerifier(f[2])
			if err != nil {
				return nil, fmt.Errorf("line %d: witness %s: %w", n, name, err) // never quotes the key
			}
			if prev, ok := witnessPubs[string(v.pub)]; ok {
				return fail("witness %s has the same public key as the witness on line %d", name, prev)
			}
			witnessPubs[string(v.pub)] = n
			if prev, ok := keyIDs[nameHash{v.name, v.hash}]; ok {
				return fail("witness %s key %s+%08x has the same name and key ID as the key on line %d", name, v.name, v.hash, prev)
			}
			keyIDs[nameHash{v.name, v.hash}] = n
			w := &policyWitness{name: name, vkey: f[2], v: v}
			if len(f) == 4 {
				if err := checkPolicyURL(f[3]); err != nil {
					return fail("witness %s URL: %v", name, err)
				}
				w.url = f[3]
			}
			p.defined[name] = true
			p.witnesses = append(p.witnesses, w)
			p.items = append(p.items, policyItem{witness: w})
		case "group":
			if len(f) < 4 {
				return fail("want \"group <name> <k|any|all> <member>...\" with at least one member, got %d items", len(f))
			}
			name, thr, members := f[1], f[2], f[3:]
			if err := p.checkNewName(name); err != nil {
				return fail("group %v", err)
			}
			seen := map[string]bool{}
			for _, m := range members {
				switch {
				case m == name:
					return fail("group %s lists itself as a member", name)
				case m == "none":
					return fail("group %s: \"none\" cannot be a group member", name)
				case !p.defined[m]:
					return fail("group %s: member %q is not a witness or group defined on an earlier line", name, m)
				case seen[m]:
					return fail("group %s lists member %q more than once", name, m)
				}
				seen[m] = true
			}
			g := &policyGroup{name: name, threshold: thr, members: members}
			switch thr {
			case "any":
				g.k = 1
			case "all":
				g.k = len(members)
			default:
				k, err := parseDecimal(thr)
				if err != nil {
					return fail("group %s: threshold %q is not \"any\", \"all\" or a decimal number: %v", name, thr, err)
				}
				if k < 1 || k > uint64(len(members)) {
					return fail("group %s: threshold %d is outside 1 to %d (the number of members)", name, k, len(members))
				}
				g.k = int(k)
			}
			p.defined[name] = true
			p.groups = append(p.groups, g)
			p.items = append(p.items, policyItem{group: g})
		case "quorum":
			if len(f) != 2 {
				return fail("want \"quorum <name>\", got %d items", len(f))
			}
			if quorumLine != 0 {
				return fail("second quorum line (the first is line %d)", quorumLine)
			}
			if f[1] != "none" && !p.defined[f[1]] {
				return fail("quorum %q is not \"none\" or a witness or group defined on an earlier line", f[1])
			}
			quorumLine = n
			p.quorum = f[1]
			p.items = append(p.items, policyItem{quorum: f[1]})
		default:
			return fail("unknown directive %q (want log, witness, group or quorum)", f[0])
		}
	}
	if quorumLine == 0 {
		return nil, errors.New("no quorum line (write \"quorum none\" to require no witnesses)")
	}
	return p, nil
}

func (p *TrustPolicy) checkNewName(name string) error {
	if name == "none" {
		return errors.New("name \"none\" is reserved")
	}
	if p.defined[name] {
		return fmt.Errorf("name %q is already defined", name)
	}
	return nil
}

func checkPolicyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", s)
	}
	return nil
}

// Marshal returns the policy in canonical tlog-policy form: one line per
// definition in the original order, items separated by one space, without
// comments or blank lines. ParseTrustPolicy(p.Marshal()) succeeds and
// describes the same policy, and marshals to the same bytes.
func (p *TrustPolicy) Marshal() []byte {
	var b bytes.Buffer
	for _, it := range p.items {
		switch {
		case it.log != nil:
			b.WriteString("log " + it.log.vkey)
			if it.log.url != "" {
				b.WriteString(" " + it.log.url)
			}
		case it.witness != nil:
			b.WriteString("witness " + it.witness.name + " " + it.witness.vkey)
			if it.witness.url != "" {
				b.WriteString(" " + it.witness.url)
			}
		case it.group != nil:
			b.WriteString("group " + it.group.name + " " + it.group.threshold + " " + strings.Join(it.group.members, " "))
		default:
			b.WriteString("quorum " + it.quorum)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Logs returns note verifiers for the policy's logs, in file order. A
// checkpoint is acceptable to the policy only with a valid signature from
// one of them whose key name is the checkpoint's origin.
func (p *TrustPolicy) Logs() []note.Verifier {
	vs := make([]note.Verifier, len(p.logs))
	for i, l := range p.logs {
		vs[i] = l.v
	}
	return vs
}

// logKeys returns the policy's logs, in file order.
func (p *TrustPolicy) logKeys() []trustLog {
	out := make([]trustLog, len(p.logs))
	for i, l := range p.logs {
		out[i] = trustLog{VKey: l.vkey, URL: l.url}
	}
	return out
}

// Witnesses returns the policy's witnesses, in file order.
func (p *TrustPolicy) Witnesses() []TrustWitness {
	out := make([]TrustWitness, len(p.witnesses))
	for i, w := range p.witnesses {
		out[i] = TrustWitness{Name: w.name, VKey: w.vkey, URL: w.url}
	}
	return out
}

// Quorum returns the name on the quorum line: "none", a witness or a group.
func (p *TrustPolicy) Quorum() string { return p.quorum }

// TrustResult is what [TrustPolicy.Evaluate] found on a checkpoint.
type TrustResult struct {
	// Log is the verifier key of the policy log whose signature verified,
	// or "" if the policy lists no logs.
	Log string
	// Witnesses are the policy names of the witnesses whose cosignatures
	// verified and count, in policy order.
	Witnesses []string
	// Times holds the timestamp of each counted cosignature, by witness
	// name.
	Times map[string]time.Time
	// Rejected holds, by witness name, why a cosignature that verified was
	// not counted (a timestamp too far in the future).
	Rejected map[string]string
	// Quorum reports whether the policy's quorum is met.
	Quorum bool
}

// check is Evaluate at the current time, returning only the error.
func (p *TrustPolicy) check(signedNote []byte, cp Checkpoint) error {
	_, err := p.Evaluate(signedNote, cp, time.Now())
	return err
}

// Evaluate checks the signed checkpoint note signedNote, whose text must be
// exactly cp.Marshal(), against the policy. It returns nil error only if:
//
//   - when the policy lists logs, one of them whose key name is cp.Origin
//     signed the note validly;
//   - no signature line from a key the policy knows (log or witness) is
//     invalid;
//   - the witnesses whose cosignature/v1 signatures verify, leaving out
//     those timestamped more than maxCosignatureSkew after now, satisfy the
//     quorum.
//
// Signatures from keys the policy does not know are ignored. A failure of
// the log is a *VerificationError with Evidence.Kind "bad-signature" (a bad
// or missing log signature, a bad witness signature, a malformed note) or
// "quorum" (not enough witnesses); the result, when not nil, says which
// witnesses did cosign. A note whose text is not cp is a plain error.
func (p *TrustPolicy) Evaluate(signedNote []byte, cp Checkpoint, now time.Time) (*TrustResult, error) {
	fail := func(kind, what string, err error) error {
		return &VerificationError{Err: err, Evidence: Evidence{
			Kind: kind, What: what, Origin: cp.Origin,
			NewCheckpoint: string(signedNote), NewSize: cp.Size, Time: now.UTC(),
		}}
	}
	if err := checkNoteSyntax(signedNote); err != nil {
		return nil, fail(EvidenceBadSignature, "checkpoint is not a valid signed note", fmt.Errorf("%w: %s", ErrMalformedNote, err))
	}
	text := signedNote[:bytes.LastIndex(signedNote, []byte("\n\n"))+1]
	if !bytes.Equal(text, cp.Marshal()) {
		return nil, errors.New("trust policy: the signed note's text is not the checkpoint given")
	}

	verifiers := make([]note.Verifier, 0, len(p.logs)+len(p.witnesses))
	logByKey := map[nameHash]*policyLog{}
	witnessByKey := map[nameHash]*policyWitness{}
	for _, l := range p.logs {
		verifiers = append(verifiers, l.v)
		logByKey[nameHash{l.v.Name(), l.v.KeyHash()}] = l
	}
	for _, w := range p.witnesses {
		verifiers = append(verifiers, w.v)
		witnessByKey[nameHash{w.v.name, w.v.hash}] = w
	}
	var sigs []note.Signature
	n, err := note.Open(signedNote, note.VerifierList(verifiers...))
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case err == nil:
		sigs = n.Sigs
	case errors.As(err, &unverified):
		// No key the policy knows signed: no log signature, no witnesses.
	case errors.As(err, &invalid):
		k := nameHash{invalid.Name, invalid.Hash}
		what := fmt.Sprintf("signature from key %s+%08x does not verify", invalid.Name, invalid.Hash)
		if w := witnessByKey[k]; w != nil {
			what = fmt.Sprintf("cosignature from witness %s (key %s) does not verify", w.name, w.vkey)
		} else if l := logByKey[k]; l != nil {
			what = fmt.Sprintf("signature from log key %s does not verify", l.vkey)
		}
		return nil, fail(EvidenceBadSignature, what, err)
	default:
		return nil, fail(EvidenceBadSignature, "checking the checkpoint's signatures failed", err)
	}

	res := &TrustResult{Times: map[string]time.Time{}, Rejected: map[string]string{}}
	signed := map[string]bool{}
	for _, s := range sigs {
		k := nameHash{s.Name, s.Hash}
		if l := logByKey[k]; l != nil {
			if s.Name == cp.Origin && res.Log == "" {
				res.Log = l.vkey
			}
			continue
		}
		w := witnessByKey[k]
		if w == nil {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil {
			// Unreachable: note.Open decoded it.
			return nil, fail(EvidenceBadSignature, fmt.Sprintf("cosignature from witness %s is not base64", w.name), err)
		}
		t, err := CosignatureTime(raw)
		if err != nil {
			// Unreachable: the verifier accepted it.
			return nil, fail(EvidenceBadSignature, fmt.Sprintf("cosignature from witness %s is malformed", w.name), err)
		}
		if t.After(now.Add(maxCosignatureSkew)) {
			res.Rejected[w.name] = fmt.Sprintf("timestamp %s is more than %s after the current time %s",
				t.Format(time.RFC3339), maxCosignatureSkew, now.UTC().Format(time.RFC3339))
			continue
		}
		signed[w.name] = true
		res.Times[w.name] = t
	}
	for _, w := range p.witnesses {
		if signed[w.name] {
			res.Witnesses = append(res.Witnesses, w.name)
		}
	}
	if len(p.logs) > 0 && res.Log == "" {
		return res, fail(EvidenceBadSignature,
			fmt.Sprintf("checkpoint is not signed by any log the trust policy lists under the key name %q", cp.Origin), nil)
	}
	res.Quorum = p.quorumMet(signed)
	if !res.Quorum {
		what := fmt.Sprintf("witness quorum %q is not met; cosigned by %s", p.quorum, listOrNone(res.Witnesses))
		if len(res.Rejected) > 0 {
			var rej []string
			for _, w := range p.witnesses {
				if r, ok := res.Rejected[w.name]; ok {
					rej = append(rej, w.name+" ("+r+")")
				}
			}
			what += "; not counted: " + strings.Join(rej, ", ")
		}
		return res, fail(EvidenceQuorum, what, nil)
	}
	return res, nil
}

// quorumMet evaluates the quorum given which witnesses cosigned. Groups only
// name earlier definitions, so one pass in file order suffices.
func (p *TrustPolicy) quorumMet(signed map[string]bool) bool {
	if p.quorum == "none" {
		return true
	}
	ok := map[string]bool{}
	for name, s := range signed {
		ok[name] = s
	}
	for _, g := range p.groups {
		count := 0
		for _, m := range g.members {
			if ok[m] {
				count++
			}
		}
		ok[g.name] = count >= g.k
	}
	return ok[p.quorum]
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "no witness"
	}
	return strings.Join(names, ", ")
}
