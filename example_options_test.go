package shardflow_test

import (
	"fmt"

	"github.com/shardflow/shardflow"
)

// ExampleParseOptions parses a Spark job's source options: keys and
// enumerated values are case-insensitive, durations become time.Duration, a
// Spark key with no meaning here is accepted with a warning, and an unknown
// key is an error that suggests the closest one.
func ExampleParseOptions() {
	opts, warnings, err := shardflow.ParseOptions(shardflow.ScopeSource, map[string]string{
		"kinesis.streamName":            "orders",
		"kinesis.startingPosition":      "at_timestamp 2026-11-25T10:00:00.5+01:00",
		"kinesis.describeShardInterval": "5s",
		"KINESIS.CONSUMERTYPE":          "getrecords",
		"kinesis.checkNewRecordThreads": "16",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(opts.String("kinesis.consumerType"))
	fmt.Println(opts.Position("kinesis.startingPosition"))
	fmt.Println(opts.Duration("kinesis.describeShardInterval"), opts.Int("kinesis.clientNumRetries"))
	fmt.Println(warnings[0])

	_, _, err = shardflow.ParseOptions(shardflow.ScopeSource, map[string]string{
		"kinesis.streamName":        "orders",
		"kinesis.client.numRetries": "0",
	})
	fmt.Println(err)
	// Output:
	// GetRecords
	// AT_TIMESTAMP 2026-11-25T09:00:00.5Z
	// 5s 5
	// ignored Spark option "kinesis.checkNewRecordThreads": the Spark driver probes shards for new data with this thread pool; shardflow's long-lived readers report what they buffered, so nothing probes
	// unknown option "kinesis.client.numRetries"; did you mean "kinesis.clientNumRetries"?
}
