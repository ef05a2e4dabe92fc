// Package kdsfake is an in-process server compatible with Amazon Kinesis
// Data Streams, for tests and for running shardflow without an AWS account.
// It plays the part franz-go's kfake plays for Kafka.
//
// It speaks the AWS JSON 1.1 protocol (X-Amz-Target: Kinesis_20131202.*)
// that the AWS SDKs and the AWS CLI use, and serves:
//
//   - streams: CreateStream (provisioned or ON_DEMAND), DeleteStream,
//     DescribeStream, DescribeStreamSummary, ListStreams, ListShards (with
//     every ShardFilter type), tags, and DescribeLimits;
//   - records: PutRecord and PutRecords (routed by the MD5 of the partition
//     key or by ExplicitHashKey, with Kinesis's validation limits),
//     GetShardIterator (all five types) and GetRecords (MillisBehindLatest,
//     ChildShards at a closed shard's end);
//   - resharding and retention: SplitShard, MergeShards, UpdateShardCount,
//     IncreaseStreamRetentionPeriod, DecreaseStreamRetentionPeriod;
//   - enhanced fan-out: RegisterStreamConsumer, DescribeStreamConsumer,
//     ListStreamConsumers, DeregisterStreamConsumer and SubscribeToShard,
//     whose event stream starts with the initial-response event the AWS
//     SDKs wait for, pushes records as they arrive, ends a closed shard with
//     ChildShards, and ends after [Config.SubscriptionTTL].
//
// Accounts: a request signed with an access key id that is a 12-digit
// number acts in that account; any other acts in [Config.DefaultAccount].
// Signatures are checked only with [Config.CheckSignatures].
//
// Tests drive failures with the fault injection methods: [Server.ThrottleNext],
// [Server.FailNext], [Server.ResetNext], [Server.DelayNext],
// [Server.ExpireIterators], [Server.EndSubscriptions],
// [Server.BreakSubscriptions], [Server.DropConnections] and [Server.Trim];
// [Server.Calls] counts the calls of each action so that tests can assert
// retries, [Server.Connections] the connections clients opened and
// [Server.EventBytes] the event bytes a subscriber took (its HTTP/2 flow
// control). [Config.MaxConcurrentStreams] limits the streams per HTTP/2
// connection. [Config.Clock] makes time-driven behaviour (retention, iterator
// expiry, status delays, quotas) deterministic.
//
// In a test, [Start] runs a server on 127.0.0.1 and closes it at the end
// of the test:
//
//	srv := kdsfake.Start(t, kdsfake.Config{})
//	cfg.HTTPClient = srv.Client()
//	client := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
//		o.BaseEndpoint = aws.String(srv.URL()) // srv.TLSURL() for HTTP/2
//	})
//
// Differences from AWS: sequence numbers always have 56 digits; there is
// no KMS encryption, enhanced monitoring, resource policy or stream mode
// change; on-demand streams do not scale by themselves.
package kdsfake
