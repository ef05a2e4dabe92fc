// Package awscfg loads the one AWS configuration (region, credentials, HTTP
// client) that Kinesis, S3, DynamoDB and STS clients share.
//
// Credentials, first match wins (the Spark connector's precedence):
//
//  1. Config.CredentialsProvider, a Go hook (the Go form of
//     kinesis.credentialProviderClass);
//  2. Config.RoleARN (kinesis.stsRoleArn): STS AssumeRole, with the static
//     keys below as base credentials when given, else the default chain;
//     the credentials are cached and refreshed before they expire;
//  3. static keys (kinesis.awsAccessKeyId, kinesis.awsSecretKey, with
//     kinesis.sessionToken);
//  4. the SDK's default chain: environment, shared config and credentials
//     files with profiles (AWS_PROFILE), web identity, ECS and EC2 roles.
//     Static keys of a profile in the shared files are read again when a
//     file changes (checked every SharedFilesCheckEvery), so keys rotated
//     on disk are used without a restart; the SDK alone would keep the
//     first keys for ever.
//
// Endpoints are left to the SDK unless a caller overrides BaseEndpoint, so
// the standard AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> variables
// work for every service.
package awscfg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/shardflow/shardflow/internal/awshttpfix"
)

// Config is what Load needs.
type Config struct {
	// Region wins over the SDK's configuration; FallbackRegion is used
	// when neither gives one.
	Region         string
	FallbackRegion string
	// Static credentials.
	AccessKeyID, SecretKey, SessionToken string
	// Assume-role settings: RoleARN with RoleSessionName (both or
	// neither), an optional ExternalID and STS endpoint.
	RoleARN, RoleSessionName, ExternalID, STSEndpointURL string
	// CredentialsProvider overrides everything above.
	CredentialsProvider aws.CredentialsProvider
	// HTTPClient overrides the HTTP client; it is set after the SDK config
	// is loaded (AWS_CA_BUNDLE breaks a client passed to LoadDefaultConfig).
	HTTPClient *http.Client
	// Transport adjusts the SDK's transport when HTTPClient is nil.
	Transport func(*http.Transport)
}

// Check reports option combinations that cannot work.
func (c Config) Check() error {
	if (c.AccessKeyID == "") != (c.SecretKey == "") {
		return errors.New("kinesis.awsAccessKeyId and kinesis.awsSecretKey must be set together")
	}
	if c.SessionToken != "" && c.AccessKeyID == "" {
		return errors.New("kinesis.sessionToken needs kinesis.awsAccessKeyId and kinesis.awsSecretKey")
	}
	if (c.RoleARN == "") != (c.RoleSessionName == "") {
		return errors.New("kinesis.stsRoleArn and kinesis.stsSessionName must be set together")
	}
	if c.RoleARN == "" && (c.ExternalID != "" || c.STSEndpointURL != "") {
		return errors.New("kinesis.stsEndpointUrl and shardflow.sts.externalId need kinesis.stsRoleArn")
	}
	return nil
}

// RefreshBefore is how long before they expire assumed-role credentials
// are refreshed.
const RefreshBefore = 2 * time.Minute

// Load returns the AWS configuration for c.
func Load(ctx context.Context, c Config) (aws.Config, error) {
	if err := c.Check(); err != nil {
		return aws.Config{}, err
	}
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretKey, c.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		// The SDK's messages name files and profiles, never secrets.
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = c.FallbackRegion
	}
	if c.CredentialsProvider == nil && c.AccessKeyID == "" && fromSharedFiles(cfg.Credentials) {
		// Static keys of a profile: re-read when the files change. This
		// also refreshes the base credentials of RoleARN below.
		p, err := newSharedFiles()
		if err != nil {
			return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
		}
		cfg.Credentials = p
	}
	switch {
	case c.HTTPClient != nil:
		cfg.HTTPClient = c.HTTPClient
	default:
		bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
		if !ok {
			bc = awshttp.NewBuildableClient()
		}
		if c.Transport != nil {
			bc = bc.WithTransportOptions(c.Transport)
		}
		cfg.HTTPClient = bc
	}
	cfg.HTTPClient = awshttpfix.Client(cfg.HTTPClient) // aws-sdk-go-v2 issue 2737; replayable bodies

	switch {
	case c.CredentialsProvider != nil:
		cfg.Credentials = c.CredentialsProvider
	case c.RoleARN != "":
		stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if c.STSEndpointURL != "" {
				o.BaseEndpoint = aws.String(c.STSEndpointURL)
			}
		})
		p := stscreds.NewAssumeRoleProvider(stsClient, c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = c.RoleSessionName
			if c.ExternalID != "" {
				o.ExternalID = aws.String(c.ExternalID)
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = RefreshBefore
			o.ExpiryWindowJitterFrac = 0.5
		})
	}
	return cfg, nil
}
