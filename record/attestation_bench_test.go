package record

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

func benchIDs(n int) [][32]byte {
	ids := make([][32]byte, n)
	for i := range ids {
		ids[i] = sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
	}
	return ids
}

// BenchmarkRootBuilder is the audit's and the site checker's cost of an
// attestation root: one RootBuilder over a batch of 256 identities. It
// must not allocate.
func BenchmarkRootBuilder(b *testing.B) {
	ids := benchIDs(256)
	b.ReportAllocs()
	for b.Loop() {
		var rb RootBuilder
		for i := range ids {
			rb.Add(&ids[i])
		}
		_ = rb.Root()
	}
}

// BenchmarkCheckAttestationPath is a receipt check's cost of the
// attestation path of one event in a batch of 256.
func BenchmarkCheckAttestationPath(b *testing.B) {
	ids := benchIDs(256)
	root := AttestationRoot(ids)
	path := AttestationPath(ids, 77)
	b.ReportAllocs()
	for b.Loop() {
		if !CheckAttestationPath(root, 256, 77, ids[77], path) {
			b.Fatal("path rejected")
		}
	}
}

// split returns the largest power of two smaller than n (n > 1): where
// RFC 6962 splits a tree of n leaves (attestation_test uses it).
func split(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}
