package cmd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/custodylog/custody/client"
	"github.com/spf13/cobra"
)

func (e *env) appendCmd() *cobra.Command {
	var logURL, tokenFile, key, siteKey string
	var batch, retries int
	c := &cobra.Command{
		Use:   "append --log URL [--token-file F] [FILE|-]",
		Short: "Append events (JSON lines) and print one receipt per event",
		Long: `append reads events as JSON lines from FILE (or standard input), checks each
one locally, sends them in batches to POST /v1/events and prints one receipt
per line on standard output, in input order. A receipt holds the event's
index, its exact entry bytes, an inclusion proof and the signed checkpoint it
is proved against: keep it, it is your evidence.

Appending is idempotent: an event already in the log gets its original index
and the tree does not grow, so append retries failed batches safely and you
can re-run it on the same file. With --key, every receipt is verified before
it is printed.`,
		Example: `  custody append --log http://127.0.0.1:8080 --token-file tokens.txt testdata/events.jsonl > receipts.jsonl
  echo '{"sample":"s1","action":"collected","location":"ch-zrh-1","region":"EU","time":"2026-01-02T03:04:05Z","actor":"sensor"}' |
    custody append --log http://127.0.0.1:8080 --token-file tokens.txt --key mylog/log.pub -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if logURL == "" {
				return usageError("pass the server's base URL, e.g. --log http://127.0.0.1:8080", "missing --log")
			}
			if batch < 1 || batch > 10000 {
				return usageError("use a --batch between 1 and 10000", "bad --batch %d", batch)
			}
			token, err := readToken(tokenFile)
			if err != nil {
				return err
			}
			opts := []client.Option{client.WithBatch(batch), client.WithRetries(retries)}
			var cl *client.Client
			if key != "" {
				v, err := loadVerifier(key)
				if err != nil {
					return usageErr(fmt.Errorf("--key: %w", err), keyHint("--key", err, "pass the log's verifier key or its .pub file"))
				}
				if opts, err = siteOption(opts, siteKey); err != nil {
					return err
				}
				cl, err = client.New(logURL, token, v, opts...)
			} else if siteKey != "" {
				return usageError("pass --key (the log's verifier key: its name is the origin the site signs for)", "--site-key needs --key")
			} else {
				cl, err = client.NewUnverified(logURL, token, opts...)
			}
			if err != nil {
				return usageError("pass the server's base URL, e.g. --log http://127.0.0.1:8080", "%v", err)
			}
			in := e.stdin
			name := "standard input"
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return &cliError{err: err, code: exitUsageIO}
				}
				defer f.Close()
				in, name = f, args[0]
			}
			out := bufio.NewWriter(e.stdout)
			defer out.Flush()
			sent, err := cl.AppendStream(c.Context(), in, name, func(rs []client.Receipt) error {
				for _, r := range rs {
					b, _ := json.Marshal(r.Receipt)
					out.Write(append(b, '\n'))
				}
				return out.Flush()
			})
			if err != nil {
				return err // client's errors say what to do, and the exit code
			}
			fmt.Fprintf(e.stderr, "custody: %d receipts\n", sent)
			return nil
		},
	}
	c.Flags().StringVar(&logURL, "log", "", "base URL of the custody server")
	c.Flags().StringVar(&tokenFile, "token-file", "", "file whose first token authenticates the append (default $CUSTODY_TOKEN)")
	c.Flags().StringVar(&key, "key", "", "log verifier key (string or file): verify every receipt before printing it")
	c.Flags().IntVar(&batch, "batch", 1000, "events per request")
	c.Flags().StringVar(&siteKey, "site-key", "", "site private key file (custody keygen --site): sign every batch as that site")
	c.Flags().IntVar(&retries, "retries", 8, "retries of a batch after a network error or 503 (with backoff)")
	return c
}
