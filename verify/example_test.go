package verify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

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

// A Client reads a log from a directory in the tlog-tiles layout (or, with
// OpenSource, from its base URL) and checks everything it reads against
// the log's key: the checkpoint's signature, every tile against the signed
// root, every entry against its tile.
func ExampleClient_Entries() {
	vkey, err := verify.LoadVerifierKey("../testdata/example/log.pub")
	if err != nil {
		panic(err)
	}
	v, err := verify.NewVerifier(vkey)
	if err != nil {
		panic(err)
	}
	c := verify.NewClient(verify.NewDirSource("../testdata/example/log"), v.Name(), note.VerifierList(v), nil)
	ctx := context.Background()
	cp, _, err := c.Checkpoint(ctx)
	if err != nil {
		panic(err) // a *verify.VerificationError if the log misbehaved
	}
	fmt.Println(cp.Origin, cp.Size)
	err = c.Entries(ctx, 0, 3, cp, func(index uint64, entry []byte) error {
		fmt.Printf("%d %.62s…\n", index, entry)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// example.com/custody-example 6
	// 0 {"sample":"smp-eu-1111","action":"collected","location":"de-fr…
	// 1 {"sample":"smp-us-2222","action":"collected","location":"us-as…
	// 2 {"sample":"smp-eu-1111","action":"transferred","location":"de-…
}

// A receipt is checked offline, with nothing but the log's key: the
// checkpoint's signature and the inclusion proof of the entry.
func ExampleCheckReceipt() {
	b, err := os.ReadFile("../testdata/example/receipt.json")
	if err != nil {
		panic(err)
	}
	var r verify.Receipt
	if err := json.Unmarshal(b, &r); err != nil {
		panic(err)
	}
	v, err := verify.NewVerifier("example.com/custody-example+dcb0915c+AfqNkaYtYG1z1tSuO1Wo66yEuWz7/wU7BF+kQmmL0+fr")
	if err != nil {
		panic(err)
	}
	cp, entry, err := verify.CheckReceipt(r, v.Name(), note.VerifierList(v), nil)
	if ve, ok := verify.IsVerificationError(err); ok {
		fmt.Println("invalid receipt:", ve.Evidence.What)
		return
	}
	if err != nil {
		panic(err) // not a receipt at all
	}
	fmt.Printf("entry %d is in %s at size %d\n%.62s…\n", r.Index, cp.Origin, cp.Size, entry)

	// Any change to what the receipt says is caught.
	r.Index = 3
	_, _, err = verify.CheckReceipt(r, v.Name(), note.VerifierList(v), nil)
	if ve, ok := verify.IsVerificationError(err); ok {
		fmt.Println("invalid receipt:", ve.Evidence.What)
	}
	// Output:
	// entry 2 is in example.com/custody-example at size 6
	// {"sample":"smp-eu-1111","action":"transferred","location":"de-…
	// invalid receipt: the inclusion proof of entry 3 does not lead to the root of the signed tree of size 6
}
