// Package ckptopen opens the checkpoint store a checkpointLocation and the
// source options name. The root shardflow package opens local directories
// only (it stays free of the AWS SDK); programs that want S3 or DynamoDB
// checkpoints open the store here and pass it in QueryConfig.Checkpoint, as
// the CLI does:
//
//	o, _, err := shardflow.ParseOptions(shardflow.ScopeSource, opts)
//	...
//	cfg := ckptopen.FromOptions(o)
//	store, err := ckptopen.Open(ctx, "s3://bucket/queries/orders", cfg)
//	...
//	q, err := shardflow.NewQuery(shardflow.QueryConfig{Checkpoint: store, ...})
//
// Dispatch (the Spark connector's metadataCommitterType):
//
//   - HDFS (the default) keeps the checkpoint at the location: a local path
//     or file:// URL (fsstore), or s3://bucket/prefix (s3store; s3a:// and
//     s3n:// are accepted too). hdfs:// gets an error that says what to
//     use instead.
//   - DYNAMODB keeps it in a DynamoDB table (ddbstore), keyed by the
//     checkpoint id: Config.CheckpointID, else the location made absolute.
//     The location still matters: the checkpoint's generation is kept
//     there (object "dynamodb-generation"), so deleting the location
//     starts a new checkpoint that never reads the old items.
//
// The AWS clients share one configuration (region, credentials: static
// keys, an assumed role, the CredentialsProvider hook or the SDK's default
// chain) from Config.AWS, with per-service overrides. Endpoints not set
// here come from the SDK (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB).
// S3 uses path-style addressing when its endpoint is an IP address or
// localhost. Both stores retry throttling and 5xx answers with the SDK's
// standard retryer (10 attempts, exponential backoff up to 5 s, no retry
// quota).
package ckptopen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/ddbstore"
	"github.com/shardflow/shardflow/checkpoint/fsstore"
	"github.com/shardflow/shardflow/checkpoint/s3store"
	"github.com/shardflow/shardflow/kds"
)

// Committer types (kinesis.metadataCommitterType).
const (
	HDFS     = "HDFS"
	DYNAMODB = "DYNAMODB"
)

// Service overrides the shared AWS configuration for one service.
type Service struct {
	// EndpointURL overrides the SDK's endpoint.
	EndpointURL string
	// Region overrides Config.AWS.Region.
	Region string
	// CredentialsProvider overrides the shared credentials.
	CredentialsProvider aws.CredentialsProvider
}

// Config says how to open a checkpoint. The zero value opens local
// directories and S3 prefixes with the SDK's default configuration.
type Config struct {
	// CommitterType is HDFS (default) or DYNAMODB.
	CommitterType string
	// AWS is the configuration every AWS client starts from (the source's
	// kds.AWSConfig; its EndpointURL, the Kinesis endpoint, is not used).
	AWS kds.AWSConfig
	// S3 and DynamoDB override it per service.
	S3       Service
	DynamoDB Service
	// S3PathStyle is "auto" (default: path-style for IP and localhost
	// endpoints), "true" or "false".
	S3PathStyle string
	// Table is the DynamoDB table (kinesis.dynamodb.tableName); default
	// "shardflow-checkpoints".
	Table string
	// CheckpointID keys the checkpoint in the table; default the location
	// made absolute.
	CheckpointID string
	// LeaseTime is the S3 and DynamoDB stores' lease; 0 means 30 s.
	LeaseTime time.Duration
}

// DefaultTable is the DynamoDB table when none is named.
const DefaultTable = "shardflow-checkpoints"

// FromOptions reads the checkpoint settings from source options.
func FromOptions(o shardflow.Options) Config {
	region := o.String("kinesis.region")
	return Config{
		CommitterType: o.String("kinesis.metadataCommitterType"),
		AWS: kds.AWSConfig{
			Region:          region,
			AccessKeyID:     o.String("kinesis.awsAccessKeyId"),
			SecretKey:       o.String("kinesis.awsSecretKey"),
			SessionToken:    o.String("kinesis.sessionToken"),
			RoleARN:         o.String("kinesis.stsRoleArn"),
			RoleSessionName: o.String("kinesis.stsSessionName"),
			STSEndpointURL:  o.String("kinesis.stsEndpointUrl"),
			ExternalID:      o.String("shardflow.sts.externalId"),
		},
		S3:           Service{EndpointURL: o.String("shardflow.s3.endpointUrl"), Region: o.String("shardflow.s3.region")},
		DynamoDB:     Service{EndpointURL: o.String("shardflow.dynamodb.endpointUrl"), Region: o.String("shardflow.dynamodb.region")},
		S3PathStyle:  o.String("shardflow.s3.pathStyle"),
		Table:        o.String("kinesis.dynamodb.tableName"),
		CheckpointID: o.String("shardflow.dynamodb.checkpointId"),
		LeaseTime:    o.Duration("shardflow.checkpoint.leaseTime"),
	}
}

// Open opens the checkpoint store for location.
func Open(ctx context.Context, location string, cfg Config) (checkpoint.Store, error) {
	if location == "" {
		return nil, errors.New("checkpointLocation is required: a local directory or s3://bucket/prefix")
	}
	ct := strings.ToUpper(cfg.CommitterType)
	if ct == "" {
		ct = HDFS
	}
	if ct != HDFS && ct != DYNAMODB {
		return nil, fmt.Errorf("kinesis.metadataCommitterType %q: accepted: HDFS or DYNAMODB", cfg.CommitterType)
	}
	loc, err := openLocation(ctx, location, cfg)
	if err != nil {
		return nil, err
	}
	if ct == HDFS {
		return loc, nil
	}
	return openDynamoDB(ctx, location, loc, cfg)
}

// openLocation opens the store at location itself.
func openLocation(ctx context.Context, location string, cfg Config) (checkpoint.Store, error) {
	switch scheme(location) {
	case "", "file":
		return fsstore.Open(location)
	case "s3", "s3a", "s3n":
		return openS3(ctx, location, cfg)
	case "hdfs":
		return nil, fmt.Errorf("checkpointLocation %q: hdfs:// is not supported yet; use a local directory, a file:// URL or s3://bucket/prefix (with kinesis.metadataCommitterType HDFS or DYNAMODB)", location)
	default:
		return nil, fmt.Errorf("checkpointLocation %q: scheme %q is not supported; use a local directory, a file:// URL or s3://bucket/prefix", location, scheme(location))
	}
}

// scheme returns location's URL scheme in lower case, "" for a local path
// (including a Windows drive such as C:).
func scheme(location string) string {
	u, err := url.Parse(location)
	if err != nil || len(u.Scheme) <= 1 {
		return ""
	}
	return strings.ToLower(u.Scheme)
}

// retryer is the stores' retry layer: the SDK's standard retryer, which
// retries throttling errors, 5xx answers and network errors.
func retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 10
		o.MaxBackoff = 5 * time.Second
		o.RateLimiter = ratelimit.None
	})
}

func loadAWS(ctx context.Context, cfg Config, svc Service) (aws.Config, error) {
	a := cfg.AWS
	a.EndpointURL = "" // the Kinesis endpoint
	if svc.Region != "" {
		a.Region = svc.Region
	}
	if svc.CredentialsProvider != nil {
		a.CredentialsProvider = svc.CredentialsProvider
	}
	awsCfg, err := kds.LoadAWS(ctx, a, "")
	if err != nil {
		return aws.Config{}, err
	}
	awsCfg.Retryer = retryer
	return awsCfg, nil
}

func openS3(ctx context.Context, location string, cfg Config) (*s3store.Store, error) {
	bucket, prefix, err := s3store.ParseLocation(location)
	if err != nil {
		return nil, err
	}
	awsCfg, err := loadAWS(ctx, cfg, cfg.S3)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", location, err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1" // S3 finds a bucket's region from any
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.S3.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.S3.EndpointURL)
		}
		switch strings.ToLower(cfg.S3PathStyle) {
		case "true":
			o.UsePathStyle = true
		case "false":
		default:
			o.UsePathStyle = localEndpoint(aws.ToString(o.BaseEndpoint))
		}
		// Plain-HTTP endpoints (emulators) would log a line per GET
		// without checksums to validate.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return s3store.New(s3store.Config{Client: client, Bucket: bucket, Prefix: prefix, Location: location, LeaseTime: cfg.LeaseTime})
}

// localEndpoint reports whether endpoint's host is an IP address or
// localhost, where virtual-hosted bucket names cannot resolve.
func localEndpoint(endpoint string) bool {
	if endpoint == "" {
		return false
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	h := u.Hostname()
	return net.ParseIP(h) != nil || h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// generationObject is the object at the location that holds the DynamoDB
// checkpoint's generation.
const generationObject = "dynamodb-generation"

func openDynamoDB(ctx context.Context, location string, loc checkpoint.Store, cfg Config) (checkpoint.Store, error) {
	id := cfg.CheckpointID
	if id == "" {
		var err error
		if id, err = checkpointID(location); err != nil {
			return nil, err
		}
	}
	gen, err := generation(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", location, err)
	}
	client, err := DynamoDBClient(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s in DynamoDB: %w", location, err)
	}
	table := cfg.Table
	if table == "" {
		table = DefaultTable
	}
	return ddbstore.New(ctx, ddbstore.Config{
		Client:       client,
		Table:        table,
		CheckpointID: id,
		Generation:   gen,
		Location:     fmt.Sprintf("dynamodb://%s/%s (checkpointLocation %s)", table, id, location),
		LeaseTime:    cfg.LeaseTime,
	})
}

// checkpointID is the default key of a checkpoint in DynamoDB: an S3 URL
// as given, a local path made absolute as a file URL.
func checkpointID(location string) (string, error) {
	switch scheme(location) {
	case "":
		abs, err := filepath.Abs(location)
		if err != nil {
			return "", fmt.Errorf("checkpointLocation %q: %w", location, err)
		}
		return "file://" + filepath.ToSlash(abs), nil
	case "file":
		u, err := url.Parse(location)
		if err != nil {
			return "", err
		}
		return "file://" + u.Path, nil
	}
	return strings.TrimRight(location, "/"), nil
}

// generation reads the generation kept at the location, creating it on
// first use.
func generation(ctx context.Context, loc checkpoint.Store) (string, error) {
	for {
		b, err := loc.Read(ctx, generationObject)
		if err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b)), nil
		}
		if err != nil && !errors.Is(err, checkpoint.ErrNotExist) {
			return "", err
		}
		err = loc.Create(ctx, generationObject, []byte(newGen()+"\n"))
		if err == nil || errors.Is(err, checkpoint.ErrExist) {
			continue
		}
		return "", err
	}
}

func newGen() string {
	return fmt.Sprintf("%x", time.Now().UnixNano()) + "-" + randHex()
}

func randHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DynamoDBClient returns a DynamoDB client with cfg's AWS settings, the
// DynamoDB overrides and the stores' retryer (throttling and 5xx are
// retried with backoff). Worker mode's lease table uses it too.
func DynamoDBClient(ctx context.Context, cfg Config) (*dynamodb.Client, error) {
	awsCfg, err := loadAWS(ctx, cfg, cfg.DynamoDB)
	if err != nil {
		return nil, err
	}
	if awsCfg.Region == "" {
		return nil, errors.New("no AWS region: set kinesis.region, shardflow.dynamodb.region or AWS_REGION")
	}
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.DynamoDB.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoDB.EndpointURL)
		}
	}), nil
}
