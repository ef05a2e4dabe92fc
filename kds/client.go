package kds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardflow/shardflow/internal/awscfg"
)

// kinesisAPI is the part of *kinesis.Client that kds calls. Tests fake it;
// production code passes the SDK client.
type kinesisAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

var _ kinesisAPI = (*kinesis.Client)(nil)

// efoAPI is the part of *kinesis.Client that enhanced fan-out calls:
// consumer registration and SubscribeToShard.
type efoAPI interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
	RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
	DeregisterStreamConsumer(ctx context.Context, in *kinesis.DeregisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DeregisterStreamConsumerOutput, error)
	SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)
}

var _ efoAPI = (*kinesis.Client)(nil)

// Connection pool sizing. One source opens one long-lived reader per shard
// and each reader keeps at most one GetRecords call in flight, so the pool
// must keep an idle connection per shard instead of the SDK's 10 per host,
// or every poll past the tenth would pay a new TCP (and TLS) handshake.
const (
	maxIdleConns        = 2048
	maxIdleConnsPerHost = 1024
)

// HTTP/2 settings (docs/architecture.md, "HTTP/2 transport"). HTTP/2 is
// negotiated by ALPN on TLS endpoints; SubscribeToShard event streams are
// HTTP/2 streams multiplexed on few connections (Go opens another
// connection when a server's MAX_CONCURRENT_STREAMS is reached).
//
// Flow-control windows: per stream (one subscription) efoStreamWindow for
// an enhanced fan-out source, else Go's default of 4 MiB; per connection
// Go's 1 GiB. A reader whose shard buffer is full stops taking events, so
// its stream's window fills and the server stops sending on that stream
// only; the large connection window keeps a stalled stream from blocking
// the others on the same connection (a small one would: unread data counts
// against both windows).
const (
	// h2ReadIdleTimeout sends a PING on a connection that received no
	// frame for this long, and h2PingTimeout closes it when the PING gets
	// no answer: a dead connection fails every subscription on it in at
	// most 45 s instead of waiting for TCP.
	h2ReadIdleTimeout = 30 * time.Second
	h2PingTimeout     = 15 * time.Second
)

// The HTTP/2 receive window of each stream of an enhanced fan-out source
// (efoStreamWindow): data Kinesis may push on a subscription that its
// reader has not taken yet, held by the transport. Every subscription may
// hold that much while its shard's buffer is full, on top of the buffer, so
// it is a quarter of the buffer's byte bound (invariant 8: memory stays
// bounded by the buffer options whatever the shard count). Go's 4 MiB
// default would put 4 GiB in the transport on 1000 stalled shards whatever
// shardflow.buffer.maxBytesPerShard says. The default buffer (16 MiB) keeps
// the 4 MiB; the floor keeps one subscription able to carry its shard's
// 2 MB/s: a window of W allows W per round trip, and 256 KiB over a 130 ms
// round trip is 2 MB/s. The window applies to the client NewSource builds
// (AWSConfig.HTTPClient, a test's own client, keeps its settings).
const (
	minEFOStreamWindow = 256 << 10
	maxEFOStreamWindow = 4 << 20
)

// efoStreamWindow returns the HTTP/2 stream receive window of an enhanced
// fan-out source whose shard buffers hold bufferBytes.
func efoStreamWindow(bufferBytes int) int {
	return min(maxEFOStreamWindow, max(minEFOStreamWindow, bufferBytes/4))
}

// transportOptions returns the function that sets the pool and HTTP/2
// settings on the SDK's transport; streamWindow, if not 0, is the
// receive window of each HTTP/2 stream (else Go's default, 4 MiB).
func transportOptions(streamWindow int) func(*http.Transport) {
	return func(tr *http.Transport) {
		tr.MaxIdleConns = maxIdleConns
		tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
		// The TLS config may carry AWS_CA_BUNDLE's roots, which normally turns
		// Go's automatic HTTP/2 off; ForceAttemptHTTP2 keeps it on.
		tr.ForceAttemptHTTP2 = true
		tr.HTTP2 = &http.HTTP2Config{
			SendPingTimeout:           h2ReadIdleTimeout,
			PingTimeout:               h2PingTimeout,
			MaxReceiveBufferPerStream: streamWindow,
		}
	}
}

// NewClient returns a Kinesis client for cfg.
//
// Credentials come from the SDK's default chain (environment, shared
// profile, web identity, container and instance roles) unless
// cfg.AccessKeyID and cfg.SecretKey are set, which must go together.
//
// The region is cfg.Region, else the SDK's configured region (AWS_REGION,
// the shared profile), else the region named by an AWS Kinesis host name in
// cfg.EndpointURL (kinesis.<region>.amazonaws.com, kinesis-fips.<region>...,
// VPC endpoints, .amazonaws.com.cn); otherwise NewClient fails asking for
// kinesis.region.
//
// The SDK's own retryer is disabled: kds retries every call itself with
// full-jitter backoff (see RetryConfig), and two stacked retry layers would
// multiply attempts.
func NewClient(ctx context.Context, cfg AWSConfig) (*kinesis.Client, error) {
	return newClient(ctx, cfg, 0)
}

// newClient is NewClient with the HTTP/2 stream receive window of
// transportOptions.
func newClient(ctx context.Context, cfg AWSConfig, streamWindow int) (*kinesis.Client, error) {
	endpoint, err := normalizeEndpoint(cfg.EndpointURL)
	if err != nil {
		return nil, err
	}
	fallback, _ := regionFromEndpoint(endpoint)
	awsCfg, err := loadAWS(ctx, cfg, fallback, streamWindow)
	if err != nil {
		return nil, err
	}
	if awsCfg.Region == "" {
		return nil, errors.New("kds: no AWS region: set kinesis.region (or AWS_REGION), or use an AWS Kinesis endpoint such as https://kinesis.us-east-1.amazonaws.com in kinesis.endpointUrl")
	}
	// RetryMaxAttempts stays 0: any other value makes the SDK wrap the
	// retryer again.
	awsCfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	awsCfg.RetryMaxAttempts = 0

	return kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.Retryer = aws.NopRetryer{}
		o.RetryMaxAttempts = 0
	}), nil
}

// LoadAWS returns the AWS configuration cfg describes: region,
// credentials (static keys, an assumed role, the CredentialsProvider hook or
// the SDK's default chain) and the HTTP client. Kinesis, S3, DynamoDB and
// STS clients all start from it (checkpoint/ckptopen uses it for the
// checkpoint stores). fallbackRegion is used when neither cfg nor the SDK's
// configuration names a region.
func LoadAWS(ctx context.Context, cfg AWSConfig, fallbackRegion string) (aws.Config, error) {
	return loadAWS(ctx, cfg, fallbackRegion, 0)
}

func loadAWS(ctx context.Context, cfg AWSConfig, fallbackRegion string, streamWindow int) (aws.Config, error) {
	c := awscfg.Config{
		Region: cfg.Region, FallbackRegion: fallbackRegion,
		AccessKeyID: cfg.AccessKeyID, SecretKey: cfg.SecretKey, SessionToken: cfg.SessionToken,
		RoleARN: cfg.RoleARN, RoleSessionName: cfg.RoleSessionName, ExternalID: cfg.ExternalID, STSEndpointURL: cfg.STSEndpointURL,
		CredentialsProvider: cfg.CredentialsProvider,
		HTTPClient:          cfg.HTTPClient,
		Transport:           transportOptions(streamWindow),
	}
	awsCfg, err := awscfg.Load(ctx, c)
	if err != nil {
		return aws.Config{}, fmt.Errorf("kds: %w", err)
	}
	return awsCfg, nil
}

// normalizeEndpoint checks kinesis.endpointUrl and gives a bare host name
// the https scheme, as the Spark connector accepts both forms.
func normalizeEndpoint(endpoint string) (string, error) {
	endpoint = strings.TrimSpace(endpoint)
	if endpoint == "" {
		return "", nil
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("kds: kinesis.endpointUrl %q: want an http or https URL such as https://kinesis.us-east-1.amazonaws.com", endpoint)
	}
	return endpoint, nil
}

// regionPattern matches AWS region names: us-east-1, eu-central-2,
// us-gov-west-1, cn-northwest-1, ap-southeast-5, ...
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// regionFromEndpoint returns the region named by an AWS Kinesis endpoint:
//
//	kinesis.<region>.amazonaws.com            (and .amazonaws.com.cn)
//	kinesis-fips.<region>.amazonaws.com
//	vpce-<id>.kinesis.<region>.vpce.amazonaws.com
//	<account>.control-kinesis.<region>.amazonaws.com (and data-kinesis)
//
// Any other host (an emulator, a proxy, localhost) gives no region: the
// second label of an arbitrary host name is not a region.
func regionFromEndpoint(endpoint string) (string, bool) {
	if endpoint == "" {
		return "", false
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	var rest string
	switch {
	case strings.HasSuffix(host, ".amazonaws.com"):
		rest = strings.TrimSuffix(host, ".amazonaws.com")
	case strings.HasSuffix(host, ".amazonaws.com.cn"):
		rest = strings.TrimSuffix(host, ".amazonaws.com.cn")
	default:
		return "", false
	}
	labels := strings.Split(rest, ".")
	var region string
	switch {
	case len(labels) == 2 && (labels[0] == "kinesis" || labels[0] == "kinesis-fips"):
		region = labels[1]
	case len(labels) == 3 && isDigits(labels[0]) && (labels[1] == "control-kinesis" || labels[1] == "data-kinesis"):
		region = labels[2]
	case len(labels) == 4 && labels[3] == "vpce" && strings.HasPrefix(labels[0], "vpce-") &&
		(labels[1] == "kinesis" || labels[1] == "kinesis-fips"):
		region = labels[2]
	default:
		return "", false
	}
	if !regionPattern.MatchString(region) {
		return "", false
	}
	return region, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
