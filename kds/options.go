package kds

import (
	"fmt"
	"log/slog"

	"github.com/shardflow/shardflow"
)

// ParseSourceOptions reads the options of readStream.format("aws-kinesis"),
// Spark keys verbatim (case-insensitive), through the option registry of
// package shardflow: every invalid or unknown option is reported at once.
// Warnings about accepted options that have no effect are logged to logger
// at Warn level; a nil logger discards them.
func ParseSourceOptions(opts map[string]string, logger *slog.Logger) (SourceConfig, error) {
	o, warns, err := shardflow.ParseOptions(shardflow.ScopeSource, opts)
	logWarnings(logger, warns)
	if err != nil {
		return SourceConfig{}, err
	}
	return SourceConfigFrom(o)
}

// ParseSinkOptions reads the options of writeStream.format("aws-kinesis")
// like ParseSourceOptions.
func ParseSinkOptions(opts map[string]string, logger *slog.Logger) (SinkConfig, error) {
	o, warns, err := shardflow.ParseOptions(shardflow.ScopeSink, opts)
	logWarnings(logger, warns)
	if err != nil {
		return SinkConfig{}, err
	}
	return SinkConfigFrom(o)
}

// SourceConfigFrom maps options parsed with shardflow.ScopeSource (for a
// caller that also keeps the Options, e.g. to persist Options.Map) to a
// SourceConfig. Options not given take their registry defaults.
func SourceConfigFrom(o shardflow.Options) (SourceConfig, error) {
	if o.Scope() != shardflow.ScopeSource {
		return SourceConfig{}, fmt.Errorf("kds: options of the %v are not source options", o.Scope())
	}
	return SourceConfig{
		StreamName:   o.String("kinesis.streamName"),
		AWS:          awsConfig(o),
		Retry:        retryConfig(o),
		ConsumerType: ConsumerType(o.String("kinesis.consumerType")),
		EFO: EFOConfig{
			ConsumerName:     o.String("kinesis.consumerName"),
			ConsumerARN:      o.String("kinesis.consumerARN"),
			Registration:     Registration(o.String("kinesis.consumerRegistration")),
			SubscribeTimeout: o.Duration("kinesis.subscribeToShard.timeoutSec"),
			MaxRetries:       o.Int("kinesis.subscribeToShard.maxRetries"),
		},
		StartingPosition:        startingPosition(o.Position("kinesis.startingPosition")),
		DescribeShardInterval:   o.Duration("kinesis.describeShardInterval"),
		FetchInterval:           o.Duration("kinesis.getRecords.fetchIntervalMs"),
		RecordsPerFetch:         o.Int("kinesis.getRecords.numberOfRecordsPerFetch"),
		FailOnDataLoss:          o.Bool("kinesis.failOnDataLoss"),
		BufferRecords:           o.Int("shardflow.buffer.maxRecordsPerShard"),
		BufferBytes:             o.Int("shardflow.buffer.maxBytesPerShard"),
		MaxFetchRecordsPerShard: o.Int("kinesis.maxFetchRecordsPerShard"),
		MaxFetchTimePerShard:    o.Duration("kinesis.maxFetchTimePerShardSec"),
		MinBatchesToRetain:      o.Int("kinesis.minBatchesToRetain"),
	}, nil
}

// SinkConfigFrom maps options parsed with shardflow.ScopeSink to a
// SinkConfig.
func SinkConfigFrom(o shardflow.Options) (SinkConfig, error) {
	if o.Scope() != shardflow.ScopeSink {
		return SinkConfig{}, fmt.Errorf("kds: options of the %v are not aws-kinesis sink options", o.Scope())
	}
	return SinkConfig{
		StreamName:     o.String("kinesis.streamName"),
		AWS:            awsConfig(o),
		Retry:          retryConfig(o),
		MaxConnections: o.Int("kinesis.sink.maxConnections"),
		RecordTTL:      o.Duration("kinesis.sink.recordTtl"),

		Aggregation:           o.Bool("kinesis.sink.aggregationEnabled"),
		RecordMaxBufferedTime: o.Duration("kinesis.sink.recordMaxBufferedTimeMs"),
	}, nil
}

func awsConfig(o shardflow.Options) AWSConfig {
	region := o.String("kinesis.region")
	// kinesis.kinesisRegion (source only) is the Kinesis client's region;
	// kinesis.region is the fallback, as in the Spark connector.
	if o.Scope() == shardflow.ScopeSource && o.Has("kinesis.kinesisRegion") {
		region = o.String("kinesis.kinesisRegion")
	}
	return AWSConfig{
		Region:       region,
		EndpointURL:  o.String("kinesis.endpointUrl"),
		AccessKeyID:  o.String("kinesis.awsAccessKeyId"),
		SecretKey:    o.String("kinesis.awsSecretKey"),
		SessionToken: o.String("kinesis.sessionToken"),

		RoleARN:         o.String("kinesis.stsRoleArn"),
		RoleSessionName: o.String("kinesis.stsSessionName"),
		STSEndpointURL:  o.String("kinesis.stsEndpointUrl"),
		ExternalID:      o.String("shardflow.sts.externalId"),
	}
}

func retryConfig(o shardflow.Options) RetryConfig {
	return RetryConfig{
		MaxAttempts: o.Int("kinesis.clientNumRetries"),
		Initial:     o.Duration("kinesis.clientRetryIntervalsMs"),
		Max:         o.Duration("kinesis.clientMaxRetryIntervalMs"),
	}
}

func startingPosition(p shardflow.StartingPosition) StartingPosition {
	sp := StartingPosition{Kind: string(p.Type), Timestamp: p.Timestamp}
	if p.Type != shardflow.PositionShards {
		return sp
	}
	sp.Default = string(p.Default)
	sp.Shards = make(map[string]ShardPosition, len(p.Shards))
	for id, s := range p.Shards {
		sp.Shards[id] = ShardPosition{
			Type:              string(s.Type),
			SequenceNumber:    s.SequenceNumber,
			SubSequenceNumber: s.SubSequenceNumber,
			Timestamp:         s.Timestamp,
		}
	}
	return sp
}

func logWarnings(logger *slog.Logger, warns []string) {
	if logger == nil {
		return
	}
	for _, w := range warns {
		logger.Warn("option has no effect", "reason", w)
	}
}
