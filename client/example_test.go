package client_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/custodylog/custody/client"
	"github.com/custodylog/custody/record"
	"golang.org/x/mod/sumdb/note"
)

// A data centre's software submits what it did with a sample and keeps the
// receipts: each one is verified against the log's key before Append
// returns it.
func ExampleClient_Append() {
	key, err := note.NewVerifier(os.Getenv("CUSTODY_LOG_KEY")) // the contents of log.pub
	if err != nil {
		fmt.Println("bad log key:", err)
		return
	}
	c, err := client.New("https://log.example", os.Getenv("CUSTODY_TOKEN"), key)
	if err != nil {
		fmt.Println(err)
		return
	}
	receipts, err := c.Append(context.Background(), []record.Event{{
		Sample: "smp-0001", Action: record.Analysed, Location: "ch-zrh-1", Region: "EU",
		Actor: "sandbox/7", Time: time.Now().UTC(),
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range receipts {
		fmt.Printf("entry %d in the tree of size %d\n", r.Index, r.Checked.Size)
	}
}
