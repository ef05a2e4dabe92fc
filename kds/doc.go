// Package kds reads and writes Amazon Kinesis Data Streams: the polling
// source (GetRecords) and the aws-kinesis sink (PutRecords) of shardflow.
// It is named kds so it never shadows the AWS SDK's kinesis package.
//
// # Source
//
// [NewSource] returns a [Source], which implements the engine's source:
// ListShards lists every shard with its lineage (cached for
// kinesis.describeShardInterval), ResolveInitial turns
// kinesis.startingPosition into a position kept in the checkpoint (LATEST
// becomes AT_TIMESTAMP of the query's first start), and OpenShard starts one
// long-lived reader per shard.
//
// A shard reader is one goroutine that calls GetRecords at most every
// kinesis.getRecords.fetchIntervalMs and appends to a buffer bounded in
// records and bytes; when the buffer is full it stops fetching until the
// engine releases records. It never writes checkpoints. It handles:
//
//   - expired iterators: a new iterator right after the last record read;
//   - the tail: only an empty page with MillisBehindLatest 0 sets AtTail,
//     since some servers report 0 on every page;
//   - shard end: a missing NextShardIterator sets Ended and keeps the
//     reported child shards; an empty page of a closed shard is not its end;
//   - AT_TIMESTAMP in the future, which Kinesis rejects: the reader asks for
//     now (or LATEST if the server's clock lags) and drops the records that
//     arrived before the timestamp itself;
//   - AFTER_SEQUENCE_NUMBER: it starts AT the sequence number and drops
//     sub-records up to the start's sub-sequence number, so a restart can
//     resume inside a KPL aggregate.
//
// # Sink
//
// [NewSink] returns a [Sink]. Rows need partitionKey (string) and data
// (string or binary) and may have explicitHashKey (string). Every row is
// validated before anything is sent; records go out in PutRecords requests
// of at most 500 records and 5 MiB, at most kinesis.sink.maxConnections at
// a time, and entries that fail are retried until kinesis.sink.recordTtl.
// The sink is at-least-once.
//
// # Retries
//
// The SDK's retryer is off. Every call goes through one retry layer (see
// [RetryConfig]): full-jitter exponential backoff, retrying only throttling,
// HTTP 5xx and network errors. An error that ends a call is a [*CallError]
// naming the call, the shard and the stream.
package kds
