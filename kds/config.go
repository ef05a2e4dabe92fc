package kds

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"net/http"
	"time"
)

// AWSConfig selects the region, endpoint and credentials of a Kinesis client.
// Zero values mean "use the SDK's default chain" (AWS_REGION, the shared
// profile, instance roles, ...).
type AWSConfig struct {
	// Region is kinesis.region / kinesis.kinesisRegion. When empty it comes
	// from the SDK's configuration, then from an AWS Kinesis host name in
	// EndpointURL, else NewSource fails with a clear error.
	Region string
	// EndpointURL is kinesis.endpointUrl; empty uses the SDK's endpoint for
	// the region.
	EndpointURL string
	// AccessKeyID, SecretKey and SessionToken are static credentials
	// (kinesis.awsAccessKeyId, kinesis.awsSecretKey, kinesis.sessionToken).
	AccessKeyID  string
	SecretKey    string
	SessionToken string
	// RoleARN and RoleSessionName (kinesis.stsRoleArn, kinesis.stsSessionName,
	// both or neither) assume a role with STS; the base credentials are
	// the static keys when set, else the SDK's default chain. The assumed
	// credentials are cached and refreshed before they expire.
	// STSEndpointURL (kinesis.stsEndpointUrl) and ExternalID
	// (shardflow.sts.externalId) are optional.
	RoleARN         string
	RoleSessionName string
	STSEndpointURL  string
	ExternalID      string
	// CredentialsProvider, when set, is used instead of all the above: the
	// Go form of kinesis.credentialProviderClass. It should cache and
	// refresh (wrap it in aws.NewCredentialsCache).
	CredentialsProvider aws.CredentialsProvider
	// HTTPClient overrides the HTTP client (tests). It is set after the SDK
	// config is loaded, because AWS_CA_BUNDLE breaks a custom client passed
	// to LoadDefaultConfig.
	HTTPClient *http.Client
}

// RetryConfig is the one retry layer for Kinesis calls: full-jitter
// exponential backoff. The SDK's own retryer is disabled so the two never
// stack.
type RetryConfig struct {
	// MaxAttempts is kinesis.clientNumRetries (>= 1).
	MaxAttempts int
	// Initial is kinesis.clientRetryIntervalsMs.
	Initial time.Duration
	// Max is kinesis.clientMaxRetryIntervalMs.
	Max time.Duration
	// AttemptTimeout bounds one attempt; an attempt with no answer in time
	// is retried. 0 means 30s.
	AttemptTimeout time.Duration
}

// StartingPosition is the parsed kinesis.startingPosition.
type StartingPosition struct {
	// Kind is LATEST, TRIM_HORIZON (EARLIEST maps here), AT_TIMESTAMP or
	// SHARDS (the JSON form with per-shard positions).
	Kind      string
	Timestamp time.Time
	// Shards maps shard ids to positions for Kind == SHARDS. Shards not
	// listed start at Default.
	Shards map[string]ShardPosition
	// Default is LATEST, TRIM_HORIZON or AT_TIMESTAMP for shards not listed
	// in Shards (JSON form only).
	Default string
}

// ShardPosition is one entry of the JSON form of kinesis.startingPosition.
type ShardPosition struct {
	// Type is AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER.
	Type              string
	SequenceNumber    string
	SubSequenceNumber int64
	// Timestamp is the start of an AT_TIMESTAMP entry (a Spark offset's
	// shards that had no record yet carry one).
	Timestamp time.Time
}

// ConsumerType is how a source reads shards (kinesis.consumerType).
type ConsumerType string

// Consumer types. The zero value polls.
const (
	// GetRecords polls each shard (shared throughput).
	GetRecords ConsumerType = "GetRecords"
	// SubscribeToShard is enhanced fan-out: a registered stream consumer
	// with its own throughput; events are pushed over HTTP/2.
	SubscribeToShard ConsumerType = "SubscribeToShard"
)

// Registration is the enhanced fan-out consumer lifecycle
// (kinesis.consumerRegistration).
type Registration string

// Registration modes. The zero value is RegisterAuto.
const (
	// RegisterAuto registers the consumer when missing and deregisters it
	// on a graceful stop, only if this query (its checkpoint) registered it.
	RegisterAuto Registration = "auto"
	// RegisterOnly registers the consumer when missing and never
	// deregisters it.
	RegisterOnly Registration = "register-only"
)

// EFOConfig configures enhanced fan-out (ConsumerType SubscribeToShard).
type EFOConfig struct {
	// ConsumerName is kinesis.consumerName: the consumer registered (when
	// missing) and read with. Required unless ConsumerARN is set.
	ConsumerName string
	// ConsumerARN is kinesis.consumerARN: an existing consumer, never
	// registered or deregistered by shardflow. Wins over ConsumerName.
	ConsumerARN string
	// Registration is kinesis.consumerRegistration; "" means RegisterAuto.
	Registration Registration
	// SubscribeTimeout is kinesis.subscribeToShard.timeoutSec: the longest
	// wait for SubscribeToShard's initial response. 0 means 60 s.
	SubscribeTimeout time.Duration
	// MaxRetries is kinesis.subscribeToShard.maxRetries: failed
	// subscription attempts in a row before the query fails. 0 means 10.
	MaxRetries int
	// ReadTimeout is how long a subscription may deliver no event before
	// it is treated as broken and renewed (Kinesis sends one at least every
	// 5 s). 0 means 30 s. Not an option; tests shorten it.
	ReadTimeout time.Duration
}

// SourceConfig configures a Kinesis source. Field comments name the Spark
// option each one comes from.
type SourceConfig struct {
	StreamName string // kinesis.streamName (required)
	AWS        AWSConfig
	Retry      RetryConfig

	ConsumerType ConsumerType // kinesis.consumerType; "" polls
	EFO          EFOConfig    // used with ConsumerType SubscribeToShard

	StartingPosition      StartingPosition // kinesis.startingPosition
	DescribeShardInterval time.Duration    // kinesis.describeShardInterval
	FetchInterval         time.Duration    // kinesis.getRecords.fetchIntervalMs
	RecordsPerFetch       int              // kinesis.getRecords.numberOfRecordsPerFetch
	FailOnDataLoss        bool             // kinesis.failOnDataLoss

	// BufferRecords and BufferBytes bound each shard's buffer (invariant 8).
	BufferRecords int // shardflow.buffer.maxRecordsPerShard
	BufferBytes   int // shardflow.buffer.maxBytesPerShard

	// Batch limits the engine's planner applies (see BatchLimits in package
	// shardflow); the source only carries them.
	MaxFetchRecordsPerShard int           // kinesis.maxFetchRecordsPerShard
	MaxFetchTimePerShard    time.Duration // kinesis.maxFetchTimePerShardSec; 0 = no limit
	MinBatchesToRetain      int           // kinesis.minBatchesToRetain
}

// SinkConfig configures the aws-kinesis sink.
type SinkConfig struct {
	StreamName string // kinesis.streamName (required)
	AWS        AWSConfig
	Retry      RetryConfig

	MaxConnections int           // kinesis.sink.maxConnections: PutRecords in flight
	RecordTTL      time.Duration // kinesis.sink.recordTtl

	// Aggregation packs rows into KPL aggregates per target shard
	// (kinesis.sink.aggregationEnabled; the option's default is true, the
	// zero value sends one Kinesis record per row).
	Aggregation bool
	// RecordMaxBufferedTime bounds how long a row waits in an aggregate
	// being filled (kinesis.sink.recordMaxBufferedTimeMs); 0: no bound. A
	// batch is always written in full before AddBatch returns.
	RecordMaxBufferedTime time.Duration
}
