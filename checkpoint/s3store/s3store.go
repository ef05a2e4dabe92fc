// Package s3store keeps a checkpoint under an S3 prefix
// (checkpointLocation s3://bucket/prefix).
//
// Each object is the S3 object <prefix>/<name>. Create is a PutObject with
// If-None-Match: * (S3's create-if-absent, also honoured by gofakes3 and
// MinIO), so of many concurrent writers of one batch exactly one wins. Put is
// a plain PutObject: S3 replaces an object atomically, so a reader sees the
// whole old or the whole new object. Bodies are in-memory, seekable readers,
// which the SDK needs to sign and checksum them over plain HTTP.
//
// Lock keeps a lease in the object <prefix>/#lease ('#' is never in an object
// name, so List never shows it). The lease is taken with If-None-Match: *,
// renewed with If-Match on its ETag every LeaseTime/6, and deleted on
// release. A process killed without releasing blocks the next Lock for at
// most its lease time (Config.LeaseTime, 30 s by default); the expiry is
// judged from the time the next process saw the lease unchanged, never by
// comparing clocks across machines. See package lease for details.
//
// S3 deletes of missing keys succeed, so Delete sends a HeadObject first to
// report a missing object, except for an object this Store itself created or
// put and has not deleted since: those it knows exist, and the DeleteObject
// alone does. The log entries the engine purges are such objects, so in
// steady state a Delete costs one request and no reads. (If another process
// deleted such an object meanwhile, Delete reports success instead of
// checkpoint.ErrNotExist; nothing else changes.) DeleteMany
// (checkpoint.BatchDeleter), which the engine's purge uses, is one
// DeleteObjects request per 1000 names, and never reads.
//
// Retries with backoff on throttling (503 SlowDown) and 5xx answers are the
// SDK client's standard retryer; give the client one (checkpoint/ckptopen
// does).
package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/internal/lease"
)

// API is the part of *s3.Client the store calls.
type API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

var _ API = (*s3.Client)(nil)

// Config configures a Store.
type Config struct {
	// Client calls S3; *s3.Client with a retryer in production.
	Client API
	// Bucket and Prefix locate the checkpoint; Prefix has no leading or
	// trailing slash and may be empty (the bucket's top level).
	Bucket string
	Prefix string
	// Location is the checkpoint's location for messages; default
	// s3://Bucket/Prefix.
	Location string
	// LeaseTime is how long a killed holder can block the next Lock; 0
	// means 30 s. It is also the longest a live holder may go without
	// renewing before it considers the lease lost.
	LeaseTime time.Duration
}

// ParseLocation splits "s3://bucket/prefix" (also s3a:// and s3n://, as
// Hadoop spells them).
func ParseLocation(location string) (bucket, prefix string, err error) {
	u, err := url.Parse(location)
	if err != nil {
		return "", "", fmt.Errorf("s3store: checkpoint location %q: %w", location, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "s3", "s3a", "s3n":
	default:
		return "", "", fmt.Errorf("s3store: checkpoint location %q is not an s3://bucket/prefix URL", location)
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("s3store: checkpoint location %q has no bucket (want s3://bucket/prefix)", location)
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		if err := checkpoint.CheckName(prefix); err != nil {
			return "", "", fmt.Errorf("s3store: checkpoint location %q: the prefix must be made of [A-Za-z0-9._-] segments: %w", location, err)
		}
	}
	return u.Host, prefix, nil
}

// Store is a checkpoint under an S3 prefix. It is safe for concurrent use.
type Store struct {
	c         API
	bucket    string
	base      string // "" or "prefix/"
	location  string
	leaseTime time.Duration
	held      atomic.Pointer[lease.Held]

	mu    sync.Mutex
	known map[string]struct{} // written here and not deleted since; see Delete
}

// maxKnown bounds Store.known: the retained log entries of a query (two per
// batch, kinesis.minBatchesToRetain 100 by default) fit many times over.
// Names written while it is full are deleted with a HeadObject first.
const maxKnown = 1 << 14

// wrote records that name exists because this store wrote it.
func (s *Store) wrote(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known == nil {
		s.known = make(map[string]struct{})
	}
	if len(s.known) < maxKnown {
		s.known[name] = struct{}{}
	}
}

// forget reports whether name was known to exist, and forgets it.
func (s *Store) forget(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.known[name]
	delete(s.known, name)
	return ok
}

var (
	_ checkpoint.Store        = (*Store)(nil)
	_ checkpoint.BatchDeleter = (*Store)(nil)
)

// New returns a store; it does no I/O.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("s3store: no S3 client")
	}
	if cfg.Bucket == "" {
		return nil, errors.New("s3store: no bucket")
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	s := &Store{c: cfg.Client, bucket: cfg.Bucket, location: cfg.Location, leaseTime: cfg.LeaseTime}
	if prefix != "" {
		s.base = prefix + "/"
	}
	if s.location == "" {
		s.location = "s3://" + cfg.Bucket + "/" + prefix
	}
	if s.leaseTime <= 0 {
		s.leaseTime = lease.DefaultTime
	}
	return s, nil
}

// Location returns the checkpoint's location.
func (s *Store) Location() string { return s.location }

func (s *Store) key(name string) string { return s.base + name }

func (s *Store) check(ctx context.Context, op, name string, write bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3store: %s %s: %w", op, name, err)
	}
	if err := checkpoint.CheckName(name); err != nil {
		return fmt.Errorf("s3store: %s: %w", op, err)
	}
	if h := s.held.Load(); write && h != nil && h.Lost() {
		return fmt.Errorf("s3store: %s %s: %w: the lease on %s was lost (another process took it over, or it could not be renewed in time)",
			op, name, checkpoint.ErrLocked, s.location)
	}
	return nil
}

func (s *Store) opErr(op, name string, err error) error {
	return fmt.Errorf("s3store: %s s3://%s/%s: %w", op, s.bucket, s.key(name), err)
}

// Create writes the object with If-None-Match: *.
func (s *Store) Create(ctx context.Context, name string, data []byte) error {
	if err := s.check(ctx, "create", name, true); err != nil {
		return err
	}
	token := newToken()
	_, err := s.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(s.key(name)),
		Body:        bytes.NewReader(data),
		IfNoneMatch: aws.String("*"),
		Metadata:    map[string]string{writeMeta: token},
	})
	if err == nil {
		s.wrote(name)
		return nil
	}
	if preconditionFailed(err) {
		// A retried request whose first attempt succeeded also lands
		// here: the object is then ours.
		if h, herr := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(name))}); herr == nil && h.Metadata[writeMeta] == token {
			s.wrote(name)
			return nil
		}
		return fmt.Errorf("s3store: create %s/%s: %w", s.location, name, checkpoint.ErrExist)
	}
	return s.opErr("create", name, err)
}

// writeMeta is the user metadata key holding the writer's token.
const writeMeta = "shardflow-write"

// Put writes the object, replacing any.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := s.check(ctx, "put", name, true); err != nil {
		return err
	}
	_, err := s.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.key(name)),
		Body:   bytes.NewReader(data),
	})
	if err != nil {
		return s.opErr("put", name, err)
	}
	s.wrote(name)
	return nil
}

// Read returns the object's bytes.
func (s *Store) Read(ctx context.Context, name string) ([]byte, error) {
	if err := s.check(ctx, "read", name, false); err != nil {
		return nil, err
	}
	b, _, err := s.get(ctx, s.key(name))
	if errors.Is(err, checkpoint.ErrNotExist) {
		return nil, fmt.Errorf("s3store: read %s/%s: %w", s.location, name, err)
	}
	if err != nil {
		return nil, s.opErr("read", name, err)
	}
	return b, nil
}

func (s *Store) get(ctx context.Context, key string) ([]byte, string, error) {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		if notFound(err) {
			return nil, "", checkpoint.ErrNotExist
		}
		return nil, "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", err
	}
	return b, aws.ToString(out.ETag), nil
}

// List lists the objects directly under dir, with a paginated
// ListObjectsV2 (delimiter "/").
func (s *Store) List(ctx context.Context, dir string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3store: list %s: %w", dir, err)
	}
	if err := checkpoint.CheckDir(dir); err != nil {
		return nil, fmt.Errorf("s3store: list: %w", err)
	}
	prefix := s.base
	if dir != "" {
		prefix += dir + "/"
	}
	var names []string
	p := s3.NewListObjectsV2Paginator(s.c, &s3.ListObjectsV2Input{
		Bucket:    aws.String(s.bucket),
		Prefix:    aws.String(prefix),
		Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3store: list s3://%s/%s: %w", s.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			n := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if n == "" || strings.Contains(n, "/") || checkpoint.CheckName(n) != nil {
				continue // the lease, foreign objects
			}
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Delete removes the object. S3 deletes of missing keys succeed, so a
// HeadObject first tells a missing object, unless this store wrote the
// object and has not deleted it since (see the package documentation).
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.check(ctx, "delete", name, true); err != nil {
		return err
	}
	if !s.forget(name) {
		_, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(name))})
		if err != nil {
			if notFound(err) {
				return fmt.Errorf("s3store: delete %s/%s: %w", s.location, name, checkpoint.ErrNotExist)
			}
			return s.opErr("delete", name, err)
		}
	}
	if _, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(name))}); err != nil {
		return s.opErr("delete", name, err)
	}
	return nil
}

// maxDeleteObjects is the most keys one DeleteObjects request takes.
const maxDeleteObjects = 1000

// DeleteMany removes the named objects with DeleteObjects requests (quiet
// mode, up to 1000 keys each); S3 reports no error for a missing key. It
// checks every name first, and the lease before each request.
func (s *Store) DeleteMany(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := s.check(ctx, "delete", name, true); err != nil {
			return err
		}
	}
	names = slices.Compact(slices.Sorted(slices.Values(names))) // a key twice in one request is an error
	for chunk := range slices.Chunk(names, maxDeleteObjects) {
		if err := s.check(ctx, "delete", chunk[0], true); err != nil {
			return err
		}
		ids := make([]types.ObjectIdentifier, len(chunk))
		for i, name := range chunk {
			ids[i] = types.ObjectIdentifier{Key: aws.String(s.key(name))}
		}
		out, err := s.c.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		for _, name := range chunk {
			s.forget(name) // an unknown name costs a HeadObject in Delete, never a wrong answer
		}
		if err != nil {
			return fmt.Errorf("s3store: delete %d objects under s3://%s/%s: %w", len(chunk), s.bucket, s.base, err)
		}
		var errs []error
		for _, e := range out.Errors {
			if aws.ToString(e.Code) == "NoSuchKey" {
				continue
			}
			errs = append(errs, fmt.Errorf("s3store: delete s3://%s/%s: %s: %s", s.bucket, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// Lock takes the checkpoint's lease (see the package documentation).
func (s *Store) Lock(ctx context.Context, owner string) (func() error, error) {
	h, err := lease.Lock(ctx, leaseBackend{s}, s.location, owner, s.leaseTime)
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	s.held.Store(h)
	return func() error {
		s.held.CompareAndSwap(h, nil)
		return h.Release()
	}, nil
}

// leaseName is the lease object's name under the prefix.
const leaseName = "#lease"

type leaseBackend struct{ s *Store }

func (b leaseBackend) put(ctx context.Context, r lease.Record, ifNoneMatch, ifMatch *string) (string, error) {
	out, err := b.s.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(b.s.bucket),
		Key:         aws.String(b.s.key(leaseName)),
		Body:        bytes.NewReader(r.Marshal()),
		IfNoneMatch: ifNoneMatch,
		IfMatch:     ifMatch,
		ContentType: aws.String("application/json"),
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

func (b leaseBackend) Create(ctx context.Context, r lease.Record) (string, error) {
	v, err := b.put(ctx, r, aws.String("*"), nil)
	if preconditionFailed(err) {
		return "", checkpoint.ErrExist
	}
	return v, err
}

func (b leaseBackend) Read(ctx context.Context) (lease.Record, string, error) {
	data, etag, err := b.s.get(ctx, b.s.key(leaseName))
	if err != nil {
		return lease.Record{}, "", err
	}
	return lease.Unmarshal(data), etag, nil
}

func (b leaseBackend) Replace(ctx context.Context, version string, r lease.Record) (string, error) {
	v, err := b.put(ctx, r, nil, aws.String(version))
	if preconditionFailed(err) || notFound(err) {
		return "", lease.ErrConflict
	}
	return v, err
}

func (b leaseBackend) Delete(ctx context.Context, version string) error {
	_, err := b.s.c.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket:  aws.String(b.s.bucket),
		Key:     aws.String(b.s.key(leaseName)),
		IfMatch: aws.String(version),
	})
	if preconditionFailed(err) || notFound(err) {
		return lease.ErrConflict
	}
	return err
}

func preconditionFailed(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	return false
}

func notFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
