// Command shardflow runs Spark-style micro-batch queries on Amazon Kinesis
// Data Streams. See the README and `shardflow --help`.
package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/shardflow/shardflow/internal/cli"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}
