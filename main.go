// Command custody is a verifiable chain-of-custody log: run `custody --help`.
package main

import (
	"os"

	"github.com/custodylog/custody/cmd"
)

func main() {
	os.Exit(cmd.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
