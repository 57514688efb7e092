package verify_test

import (
	"fmt"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

func ExampleOpenCheckpoint() {
	// The checkpoint of the tessera test log at size 15, and its key.
	msg := []byte("example.com/log/testdata\n" +
		"15\n" +
		"rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=\n" +
		"\n" +
		"— example.com/log/testdata M9e0luh4jTG+UMBqOUo9/q+yAEvx1ilBEniMvjf1zfcBOhg+CKubMt53MvIt/uEWP6zdkdIQzd/fmwlM/dlPWF74ewI=\n")
	v, err := verify.NewVerifier("example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx")
	if err != nil {
		panic(err)
	}
	c, _, err := verify.OpenCheckpoint(msg, "example.com/log/testdata", note.VerifierList(v))
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Origin, c.Size)
	fmt.Printf("%x\n", c.Root)
	// Output:
	// example.com/log/testdata 15
	// aca6c38a90af86e5f5199ee0e4105ef2c03a05b27b8daff59e4e36eefdfcddcb
}

func ExampleParseBundle() {
	bundle := []byte("\x00\x03one\x00\x03two\x00\x05three")
	entries, err := verify.ParseBundle(bundle, 3)
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		fmt.Printf("%s %x\n", e, verify.LeafHash(e))
	}
	// The leaf hashes are hash 0, 1 and 2 of tile/0/000.p/3.
	// Output:
	// one d0d7360ab79f58ab1e1e3fe64ad77e2ea0bc07e36b5f46ed2223edd9298df9e9
	// two ab1ab7f07c7c8fe0eff4ba6faa53c7e4412e91a599153e8aa4e01beece5b7825
	// three 671f146c5e471e8a1a83a3c214ce4ba907b8f3a5888d14cc8cd3ce75bb12ef94
}
