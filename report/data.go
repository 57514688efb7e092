package report

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"strconv"
	"strings"

	"github.com/custodylog/custody/verify"
)

// Format is the value of a report's format element: the version of the
// embedded-data format (docs/report.md) this package writes and reads.
const Format = "custody-report/v1"

// The values of a report's status element.
const (
	StatusClean    = "clean"    // the audit passed with no findings
	StatusFindings = "findings" // the audit passed with findings
	StatusFailed   = "failed"   // the log failed verification
)

// attr is the attribute that marks an element whose content is data the
// report's checker reads.
const attr = ` data-custody="`

// Limits of Parse, so that a hostile file cannot make it allocate without
// bound beyond the file's own size.
const (
	// maxElements is the most data elements a report may hold.
	maxElements = 4*DefaultMaxProofs + 64
	// maxProofHashes is the longest inclusion proof (a tree of at most
	// 2^64-1 leaves).
	maxProofHashes = 64
)

// ErrNotReport is wrapped by Parse's error for a file that is not a custody
// report at all: it has no format element (a report's first data element)
// naming Format. Nothing in it was checked.
var ErrNotReport = errors.New("not a custody report (no " + Format + " format element)")

// Parsed is the data a report embeds, as Parse reads it: nothing in it is
// verified yet (Verify does that).
type Parsed struct {
	// Format is Format.
	Format string
	// Status is StatusClean, StatusFindings or StatusFailed.
	Status string
	// Origin, Size, Root and Key are what the report shows as audited:
	// the log's origin, tree size, base64 root and verifier key.
	Origin, Size, Root, Key string
	// Checkpoint is the signed checkpoint note, verbatim ("" only in a
	// report of a failed audit whose checkpoint did not verify).
	Checkpoint []byte
	// Findings is the number of findings the audit reported, Proved the
	// number of finding rows the report lists (each with its entry's
	// proof); both as written.
	Findings, Proved string
	// Rows are the finding rows, in file order.
	Rows []Row
	// Proofs are the entry proofs, in file order.
	Proofs []Proof
	// Failure is the evidence of a failed audit (JSON), or "".
	Failure string
}

// Row is a finding row as the report shows it.
type Row struct {
	Index  uint64
	Kind   string
	Sample string
	Detail string
}

// Proof is one entry's inclusion proof block.
type Proof struct {
	Index  uint64
	Entry  []byte
	Hashes []verify.Hash
}

// MarshalProof returns the text of an entry proof block (docs/report.md):
//
//	index <decimal>
//	entry <entry bytes>        (if every byte is printable ASCII, 0x20-0x7E)
//	entry-base64 <base64>      (otherwise)
//	<base64 hash>              (zero or more: the inclusion proof)
//
// every line ending in "\n".
func MarshalProof(p Proof) []byte {
	var b bytes.Buffer
	b.WriteString("index ")
	b.WriteString(strconv.FormatUint(p.Index, 10))
	b.WriteByte('\n')
	if printable(p.Entry) {
		b.WriteString("entry ")
		b.Write(p.Entry)
	} else {
		b.WriteString("entry-base64 ")
		b.WriteString(base64.StdEncoding.EncodeToString(p.Entry))
	}
	b.WriteByte('\n')
	for _, h := range p.Hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// printable reports whether b is non-empty and all printable ASCII.
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return len(b) > 0
}

// parseProof parses an entry proof block strictly (MarshalProof's output
// and nothing else).
func parseProof(text string) (Proof, error) {
	var p Proof
	lines := strings.Split(text, "\n")
	if len(lines) < 3 || lines[len(lines)-1] != "" {
		return p, errors.New("a proof block is an index line, an entry line and hash lines, each ending in a newline")
	}
	lines = lines[:len(lines)-1]
	idx, ok := strings.CutPrefix(lines[0], "index ")
	if !ok {
		return p, fmt.Errorf("line 1 is %q, want \"index <decimal>\"", clip(lines[0]))
	}
	var err error
	if p.Index, err = parseDecimal(idx); err != nil {
		return p, fmt.Errorf("index %q: %v", clip(idx), err)
	}
	if e, ok := strings.CutPrefix(lines[1], "entry "); ok {
		if !printable([]byte(e)) {
			return p, errors.New("line 2: the entry is empty or not printable ASCII (such entries are written as entry-base64)")
		}
		p.Entry = []byte(e)
	} else if e, ok := strings.CutPrefix(lines[1], "entry-base64 "); ok {
		b, err := base64.StdEncoding.Strict().DecodeString(e)
		if err != nil || base64.StdEncoding.EncodeToString(b) != e || printable(b) {
			return p, errors.New("line 2: entry-base64 is not the canonical base64 of an entry that is not printable ASCII")
		}
		p.Entry = b
	} else {
		return p, fmt.Errorf("line 2 is %q, want \"entry <bytes>\" or \"entry-base64 <base64>\"", clip(lines[1]))
	}
	if len(lines)-2 > maxProofHashes {
		return p, fmt.Errorf("%d proof hashes, at most %d", len(lines)-2, maxProofHashes)
	}
	for i, l := range lines[2:] {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != verify.HashSize || base64.StdEncoding.EncodeToString(h) != l {
			return p, fmt.Errorf("line %d: proof hash %d %q is not the canonical base64 of %d bytes", i+3, i, clip(l), verify.HashSize)
		}
		p.Hashes = append(p.Hashes, verify.Hash(h))
	}
	return p, nil
}

// parseDecimal parses a decimal uint64 without sign or leading zeros.
func parseDecimal(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a decimal number without leading zeros")
	}
	return strconv.ParseUint(s, 10, 64)
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// escape is the HTML escaping of data element content: html.EscapeString
// (<, >, &, ' and " as &lt; &gt; &amp; &#39; &#34;).
func escape(s string) string { return html.EscapeString(s) }

// unescape reverses escape, and also accepts what an HTML serializer may
// write for the same text: raw >, " and ', and &quot; and &apos;. A raw <
// or any other character reference is an error.
func unescape(s string) (string, error) {
	if !strings.ContainsAny(s, "&<") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			return "", fmt.Errorf("markup (<) at byte %d of the content", i)
		case '&':
			ok := false
			for _, e := range entities {
				if strings.HasPrefix(s[i:], e.ref) {
					b.WriteByte(e.c)
					i += len(e.ref)
					ok = true
					break
				}
			}
			if !ok {
				return "", fmt.Errorf("unknown character reference %q at byte %d of the content", clip(s[i:min(len(s), i+8)]), i)
			}
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

var entities = []struct {
	ref string
	c   byte
}{{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&#34;", '"'}, {"&#39;", '\''}, {"&quot;", '"'}, {"&apos;", '\''}}

// element is one data element of a report.
type element struct {
	tag, name, id string
	content       string // raw, still escaped
	at            int    // byte offset of its start tag
}

// elements returns the data elements of file, in order: every start tag
// with a data-custody attribute, written as
//
//	<TAG data-custody="NAME"[ id="ID"]>CONTENT</TAG>
//
// (TAG lowercase letters and digits; CONTENT up to the first </TAG>).
func elements(file []byte) ([]element, error) {
	var out []element
	s := string(file)
	for off := 0; ; {
		i := strings.Index(s[off:], attr)
		if i < 0 {
			return out, nil
		}
		p := off + i
		if len(out) == maxElements {
			return nil, fmt.Errorf("more than %d data elements", maxElements)
		}
		lt := strings.LastIndexByte(s[:p], '<')
		if lt < 0 {
			return nil, fmt.Errorf("byte %d: a data-custody attribute outside a start tag", p)
		}
		tag := s[lt+1 : p]
		if !isTag(tag) {
			return nil, fmt.Errorf("byte %d: a data-custody attribute that is not the first attribute of a start tag", p)
		}
		rest := s[p+len(attr):]
		q := strings.IndexByte(rest, '"')
		if q < 0 {
			return nil, fmt.Errorf("byte %d: unterminated data-custody attribute", p)
		}
		e := element{tag: tag, name: rest[:q], at: lt}
		rest = rest[q+1:]
		if id, ok := strings.CutPrefix(rest, ` id="`); ok {
			q := strings.IndexByte(id, '"')
			if q < 0 {
				return nil, fmt.Errorf("byte %d: unterminated id attribute", p)
			}
			e.id, rest = id[:q], id[q+1:]
		}
		if !strings.HasPrefix(rest, ">") {
			return nil, fmt.Errorf("byte %d: the <%s data-custody=%q> start tag has other attributes or is not closed", p, tag, clip(e.name))
		}
		rest = rest[1:]
		end := strings.Index(rest, "</"+tag+">")
		if end < 0 {
			return nil, fmt.Errorf("byte %d: <%s data-custody=%q> is not closed by </%s>", p, tag, clip(e.name), tag)
		}
		e.content = rest[:end]
		out = append(out, e)
		off = len(s) - len(rest) + end
	}
}

// isTag reports whether s is a tag name of lowercase letters and digits
// starting with a letter.
func isTag(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Parse reads the data a report embeds (docs/report.md) without verifying
// any of it. It fails with an error wrapping ErrNotReport if the first data
// element is not the format element naming Format, and with an error
// naming the element for anything else out of place: an unknown or
// repeated element, content that is not escaped text, a malformed proof
// block or finding row, a missing checkpoint in a report of an audit that
// passed.
func Parse(file []byte) (*Parsed, error) {
	els, err := elements(file)
	if err != nil {
		return nil, err
	}
	if len(els) == 0 || els[0].name != "format" || els[0].content != Format {
		return nil, ErrNotReport
	}
	r := &Parsed{}
	single := map[string]*string{
		"format": &r.Format, "status": &r.Status, "origin": &r.Origin, "size": &r.Size, "root": &r.Root,
		"key": &r.Key, "findings": &r.Findings, "proved": &r.Proved, "failure": &r.Failure,
	}
	seen := map[string]bool{}
	var checkpoint *string
	for _, e := range els {
		where := fmt.Sprintf("the %s element at byte %d", e.name, e.at)
		switch e.name {
		case "checkpoint":
			if checkpoint != nil {
				return nil, fmt.Errorf("%s: a second checkpoint", where)
			}
			s, err := unescape(e.content)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			checkpoint = &s
		case "proof":
			s, err := unescape(e.content)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			p, err := parseProof(s)
			if err != nil {
				return nil, fmt.Errorf("%s (%s): %v", where, e.id, err)
			}
			if e.id != "entry-"+strconv.FormatUint(p.Index, 10) {
				return nil, fmt.Errorf("%s: its id %q is not entry-%d, the index it proves", where, clip(e.id), p.Index)
			}
			r.Proofs = append(r.Proofs, p)
		case "finding":
			row, err := parseRow(e.content)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			r.Rows = append(r.Rows, row)
		default:
			dst, ok := single[e.name]
			if !ok {
				return nil, fmt.Errorf("%s: unknown data element %q", where, clip(e.name))
			}
			if seen[e.name] {
				return nil, fmt.Errorf("%s: a second %s element", where, e.name)
			}
			seen[e.name] = true
			s, err := unescape(e.content)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			*dst = s
		}
	}
	if checkpoint != nil {
		r.Checkpoint = []byte(*checkpoint)
	}
	switch r.Status {
	case StatusClean, StatusFindings:
		for _, name := range []string{"origin", "size", "root", "key", "findings", "proved"} {
			if !seen[name] {
				return nil, fmt.Errorf("the report has no %s element", name)
			}
		}
		if checkpoint == nil {
			return nil, errors.New("the report has no checkpoint element")
		}
		if seen["failure"] {
			return nil, fmt.Errorf("a report of status %s has a failure element", r.Status)
		}
	case StatusFailed:
		if !seen["failure"] {
			return nil, errors.New("a report of a failed audit has no failure element")
		}
		if len(r.Rows) > 0 || len(r.Proofs) > 0 {
			return nil, errors.New("a report of a failed audit has finding rows or proofs")
		}
	default:
		return nil, fmt.Errorf("status %q is not %s, %s or %s", clip(r.Status), StatusClean, StatusFindings, StatusFailed)
	}
	return r, nil
}

// parseRow parses a finding row's content: four cells
// <td>INDEX</td><td>KIND</td><td>SAMPLE</td><td>DETAIL</td>, then anything
// without a data element.
func parseRow(s string) (Row, error) {
	var cells [4]string
	for i := range cells {
		rest, ok := strings.CutPrefix(s, "<td>")
		if !ok {
			return Row{}, fmt.Errorf("cell %d does not start with <td>", i+1)
		}
		end := strings.Index(rest, "</td>")
		if end < 0 {
			return Row{}, fmt.Errorf("cell %d is not closed by </td>", i+1)
		}
		c, err := unescape(rest[:end])
		if err != nil {
			return Row{}, fmt.Errorf("cell %d: %v", i+1, err)
		}
		cells[i], s = c, rest[end+len("</td>"):]
	}
	idx, err := parseDecimal(cells[0])
	if err != nil {
		return Row{}, fmt.Errorf("index %q: %v", clip(cells[0]), err)
	}
	return Row{Index: idx, Kind: cells[1], Sample: cells[2], Detail: cells[3]}, nil
}
