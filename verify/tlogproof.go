package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TLogProofHeader is the first line of a c2sp.org/tlog-proof@v1 proof.
const TLogProofHeader = "c2sp.org/tlog-proof@v1"

// maxProofHashes is the longest possible inclusion proof: a tree of at most
// 2^64-1 leaves has depth at most 64.
const maxProofHashes = 64

// TLogProof is an offline proof of inclusion in c2sp.org/tlog-proof@v1
// format:
//
//	c2sp.org/tlog-proof@v1
//	extra <base64>            (only if Extra is not empty)
//	index <decimal>
//	<base64 hash>             (zero or more, the leaf's sibling first)
//	                          (an empty line)
//	<signed checkpoint note, verbatim>
//
// Parsing does not verify anything: open Checkpoint with OpenCheckpoint and
// check the proof with CheckInclusion against the checkpoint's size and root.
type TLogProof struct {
	// Extra is optional, unauthenticated, application-specific data. Empty
	// (nil or zero-length) means no extra line.
	Extra []byte
	// Index is the zero-based index of the entry in the log.
	Index uint64
	// Proof is the RFC 6962 inclusion proof, from the leaf's sibling up to
	// the root's child.
	Proof []Hash
	// Checkpoint is the complete signed checkpoint note, with the log's
	// signature and any cosignatures, byte for byte.
	Checkpoint []byte
}

// Marshal returns the proof in c2sp.org/tlog-proof@v1 text form. For every
// TLogProof returned by ParseTLogProof, Marshal returns exactly the parsed
// bytes. Marshal does not check p: a proof whose Checkpoint is not a valid
// signed checkpoint marshals to bytes that ParseTLogProof rejects.
func (p TLogProof) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(TLogProofHeader)
	b.WriteByte('\n')
	if len(p.Extra) > 0 {
		b.WriteString("extra ")
		b.WriteString(base64.StdEncoding.EncodeToString(p.Extra))
		b.WriteByte('\n')
	}
	b.WriteString("index ")
	b.WriteString(strconv.FormatUint(p.Index, 10))
	b.WriteByte('\n')
	for _, h := range p.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// ParseTLogProof parses a c2sp.org/tlog-proof@v1 proof strictly, so that
// ParseTLogProof(b).Marshal() == b for every accepted b. It requires the
// exact header line; an optional "extra " line with non-empty canonical
// standard base64; an "index " line in decimal without leading zeros; at most
// 64 proof lines, each the canonical base64 of a 32-byte hash; an empty line;
// and then a checkpoint that is a syntactically valid signed note whose text
// is a valid checkpoint (ParseCheckpoint). It checks no signature and no
// proof; the checkpoint is kept verbatim.
func ParseTLogProof(b []byte) (TLogProof, error) {
	p, err := parseTLogProof(b)
	if err != nil {
		return TLogProof{}, fmt.Errorf("parsing tlog-proof: %w", err)
	}
	return p, nil
}

func parseTLogProof(b []byte) (TLogProof, error) {
	var p TLogProof
	lineNo := 0
	next := func() (string, error) {
		lineNo++
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return "", fmt.Errorf("line %d: missing (proof ends without a newline)", lineNo)
		}
		line := string(b[:i])
		b = b[i+1:]
		return line, nil
	}
	line, err := next()
	if err != nil {
		return p, err
	}
	if line != TLogProofHeader {
		return p, fmt.Errorf("line 1: got %q, want %q", line, TLogProofHeader)
	}
	if line, err = next(); err != nil {
		return p, err
	}
	if e, ok := strings.CutPrefix(line, "extra "); ok {
		if e == "" {
			return p, fmt.Errorf("line %d: extra line with no data (omit the line instead)", lineNo)
		}
		extra, err := base64.StdEncoding.Strict().DecodeString(e)
		if err != nil || base64.StdEncoding.EncodeToString(extra) != e {
			return p, fmt.Errorf("line %d: extra data is not canonical standard base64", lineNo)
		}
		p.Extra = extra
		if line, err = next(); err != nil {
			return p, err
		}
	}
	idx, ok := strings.CutPrefix(line, "index ")
	if !ok {
		return p, fmt.Errorf("line %d: got %q, want \"index <decimal>\"", lineNo, line)
	}
	if p.Index, err = parseDecimal(idx); err != nil {
		return p, fmt.Errorf("line %d: index %q: %v", lineNo, idx, err)
	}
	for {
		if line, err = next(); err != nil {
			return p, err
		}
		if line == "" {
			break
		}
		if len(p.Proof) == maxProofHashes {
			return p, fmt.Errorf("line %d: more than %d proof hashes", lineNo, maxProofHashes)
		}
		h, err := decodeHash(line)
		if err != nil {
			return p, fmt.Errorf("line %d: proof hash %d: %v", lineNo, len(p.Proof), err)
		}
		p.Proof = append(p.Proof, h)
	}
	if err := checkSignedCheckpoint(b); err != nil {
		return p, fmt.Errorf("checkpoint after line %d: %w", lineNo, err)
	}
	p.Checkpoint = bytes.Clone(b)
	return p, nil
}

// checkSignedCheckpoint checks, without verifying any signature, that msg is
// a syntactically valid signed note whose text is a valid checkpoint.
func checkSignedCheckpoint(msg []byte) error {
	if len(msg) == 0 {
		return errors.New("checkpoint is missing")
	}
	if err := checkNoteSyntax(msg); err != nil {
		return fmt.Errorf("%w: %s", ErrMalformedNote, err)
	}
	text := msg[:bytes.LastIndex(msg, []byte("\n\n"))+1]
	if _, err := ParseCheckpoint(text); err != nil {
		return err
	}
	return nil
}
