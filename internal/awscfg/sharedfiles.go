package awscfg

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Static keys in the shared files (a profile's aws_access_key_id,
// aws_secret_access_key and aws_session_token) are read once by the SDK and
// cached for ever, so keys rotated on disk by `aws configure`, a sidecar or
// a credentials helper are never picked up, and a long-running query fails
// once the old session token expires (the Spark connector's issue #85).
// Load replaces the SDK's provider with sharedFiles in that case only: keys
// given explicitly never change, and assumed-role, web-identity, SSO,
// process, container and instance credentials already refresh.
const (
	// SharedFilesCheckEvery is how often the shared files are looked at
	// (two stats) for a change: the expiry of the cached keys.
	SharedFilesCheckEvery = 5 * time.Second
	// sharedFilesRereadEvery re-reads the files even when their size and
	// modification time look unchanged: on file systems with coarse
	// timestamps a same-size rewrite within one tick is invisible to stat.
	sharedFilesRereadEvery = time.Minute
)

// sharedFilesSource is the Source of the credentials sharedFiles returns.
const sharedFilesSource = "SharedFilesCredentials"

// sharedFiles reads a profile's static keys from the shared config and
// credentials files, again whenever a file's size or modification time
// changes. Wrap it in an aws.CredentialsCache (newSharedFiles does): the
// credentials it returns expire after one check interval, so the cache asks
// again then, and a check that finds nothing changed costs two stats.
//
// A file caught half written (no keys, or unparsable) keeps the previous
// keys in use until the next check.
type sharedFiles struct {
	profile     string
	configFiles []string
	credsFiles  []string
	every       time.Duration
	now         func() time.Time

	mu     sync.Mutex
	creds  aws.Credentials // zero before the first successful read
	stamps []fileStamp     // the files as they were at that read
	readAt time.Time
	reads  int // successful and failed reads, for tests
}

// fileStamp is what stat tells of a file; a missing file is the zero value.
type fileStamp struct {
	size int64
	mod  time.Time
}

// newSharedFiles returns the cached, refreshing provider for the profile
// and files the SDK used, from the environment as the SDK reads it
// (AWS_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE).
func newSharedFiles() (*aws.CredentialsCache, error) {
	env, err := config.NewEnvConfig()
	if err != nil {
		return nil, err
	}
	p := &sharedFiles{
		profile:     env.SharedConfigProfile,
		configFiles: config.DefaultSharedConfigFiles,
		credsFiles:  config.DefaultSharedCredentialsFiles,
		every:       SharedFilesCheckEvery,
		now:         time.Now,
	}
	if p.profile == "" {
		p.profile = config.DefaultSharedConfigProfile
	}
	if env.SharedConfigFile != "" {
		p.configFiles = []string{env.SharedConfigFile}
	}
	if env.SharedCredentialsFile != "" {
		p.credsFiles = []string{env.SharedCredentialsFile}
	}
	return aws.NewCredentialsCache(p), nil
}

// fromSharedFiles reports whether the SDK resolved p to static keys of a
// profile in the shared files (and not to a role, a process, SSO, ... that
// the profile names, nor to environment variables).
func fromSharedFiles(p aws.CredentialsProvider) bool {
	s, ok := p.(aws.CredentialProviderSource)
	return ok && slices.Equal(s.ProviderSources(), []aws.CredentialSource{aws.CredentialSourceProfile})
}

// Retrieve returns the profile's keys, read again if a file changed.
func (p *sharedFiles) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	stamps := p.stat()
	fresh := p.creds.HasKeys() && slices.Equal(stamps, p.stamps) && now.Sub(p.readAt) < sharedFilesRereadEvery
	if !fresh {
		p.reads++
		creds, err := p.read(ctx)
		switch {
		case err == nil:
			p.creds, p.stamps, p.readAt = creds, stamps, now
		case !p.creds.HasKeys():
			return aws.Credentials{}, err
		default:
			// Keep the keys that worked; stamps stay as they were, so
			// the next check reads again.
		}
	}
	c := p.creds
	c.CanExpire = true
	c.Expires = now.Add(p.every)
	return c, nil
}

// ProviderSources tells the SDK where the keys come from, as its own
// provider for them does.
func (p *sharedFiles) ProviderSources() []aws.CredentialSource {
	return []aws.CredentialSource{aws.CredentialSourceProfile}
}

func (p *sharedFiles) stat() []fileStamp {
	stamps := make([]fileStamp, 0, len(p.configFiles)+len(p.credsFiles))
	for _, name := range slices.Concat(p.configFiles, p.credsFiles) {
		var s fileStamp
		if fi, err := os.Stat(name); err == nil {
			s = fileStamp{size: fi.Size(), mod: fi.ModTime()}
		}
		stamps = append(stamps, s)
	}
	return stamps
}

// read parses the files as the SDK does (the credentials file wins over the
// config file) and returns the profile's static keys. Errors name the
// profile and files, never a key.
func (p *sharedFiles) read(ctx context.Context) (aws.Credentials, error) {
	sc, err := config.LoadSharedConfigProfile(ctx, p.profile, func(o *config.LoadSharedConfigOptions) {
		o.ConfigFiles = p.configFiles
		o.CredentialsFiles = p.credsFiles
	})
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("read profile %s of the shared AWS files %s: %w", p.profile, strings.Join(slices.Concat(p.configFiles, p.credsFiles), ", "), err)
	}
	if !sc.Credentials.HasKeys() {
		return aws.Credentials{}, fmt.Errorf("read profile %s of the shared AWS files %s: no aws_access_key_id and aws_secret_access_key", p.profile, strings.Join(slices.Concat(p.configFiles, p.credsFiles), ", "))
	}
	return aws.Credentials{
		AccessKeyID:     sc.Credentials.AccessKeyID,
		SecretAccessKey: sc.Credentials.SecretAccessKey,
		SessionToken:    sc.Credentials.SessionToken,
		AccountID:       sc.Credentials.AccountID,
		Source:          sharedFilesSource,
	}, nil
}
