package cmd

import (
	logserver "github.com/custodylog/custody/server"
	"github.com/spf13/cobra"
)

func (e *env) witnessCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "witness",
		Short: "Run a C2SP witness that cosigns consistent checkpoints",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(e.witnessServeCmd())
	return c
}

func (e *env) witnessServeCmd() *cobra.Command {
	var o struct {
		dir, listen, key, logLevel string
		logs                       []string
	}
	c := &cobra.Command{
		Use:   "serve --dir DIR --listen ADDR --key F --log VKEY...",
		Short: "Serve the C2SP tlog-witness protocol",
		Long: `witness serve runs a witness (c2sp.org/tlog-witness) over HTTP:

  POST /add-checkpoint                 cosign a checkpoint that extends the last one cosigned
  GET  /<hex sha256(origin)>/checkpoint the latest checkpoint cosigned for a log

The witness cosigns (timestamped Ed25519, c2sp.org/tlog-cosignature
cosignature/v1) only checkpoints signed by a --log key whose tree extends the
last one it cosigned for that log, and stores the new state durably in
DIR/witness.db before answering. It never cosigns two different trees of the
same size of one log. The witness name is the name of the --key.

--key is a PRIVATE+KEY file (mode 0600), made with
'custody keygen --witness'. --log is a log's verifier key, or a file holding
one; repeat it for more logs. A log's origin is its key's name.
SIGINT or SIGTERM finishes the requests in flight and stops.`,
		Example: `  custody keygen --witness --origin witness.example.com --out wit
  custody witness serve --dir ./witness --listen 127.0.0.1:8090 \
      --key wit.key --log ./mylog/log.pub
  # cosign an empty log's checkpoint (old 0, no proof):
  (printf 'old 0\n\n'; curl -s localhost:8080/checkpoint) |
      curl -s --data-binary @- localhost:8090/add-checkpoint`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.dir == "" {
				return usageError("pass a state directory, e.g. --dir ./witness", "missing --dir")
			}
			if o.key == "" {
				return usageError("pass the witness key made by 'custody keygen --witness', e.g. --key wit.key", "missing --key")
			}
			if len(o.logs) == 0 {
				return usageError("pass each trusted log's verifier key, e.g. --log ./mylog/log.pub", "missing --log")
			}
			logger, err := e.logger(o.logLevel)
			if err != nil {
				return err
			}
			return logserver.ServeWitness(c.Context(), logserver.WitnessOptions{Dir: o.dir, Listen: o.listen, KeyFile: o.key, Logs: o.logs, Logger: logger})
		},
	}
	c.Flags().StringVar(&o.dir, "dir", "", "state directory (created if missing); holds witness.db")
	c.Flags().StringVar(&o.listen, "listen", "127.0.0.1:8090", "address to listen on")
	c.Flags().StringVar(&o.key, "key", "", "the witness's PRIVATE+KEY file (mode 0600)")
	c.Flags().StringArrayVar(&o.logs, "log", nil, "a trusted log's verifier key or key file (repeatable)")
	c.Flags().StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return c
}
