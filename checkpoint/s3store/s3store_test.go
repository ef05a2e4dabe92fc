package s3store_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/checkpointtest"
	"github.com/shardflow/shardflow/checkpoint/s3store"
	"github.com/shardflow/shardflow/internal/testenv"
)

func newStore(t *testing.T, c *s3.Client, bucket, prefix string, lease time.Duration) *s3store.Store {
	t.Helper()
	s, err := s3store.New(s3store.Config{Client: c, Bucket: bucket, Prefix: prefix, LeaseTime: lease})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	c := testenv.S3Client(t, testenv.FakeS3(t))
	testenv.CreateBucket(t, c, "ckpt")
	checkpointtest.Run(t, func(t *testing.T) checkpoint.Store {
		return newStore(t, c, "ckpt", testenv.UniqueName("q/"), 600*time.Millisecond)
	})
}

func TestConformanceBucketRoot(t *testing.T) {
	c := testenv.S3Client(t, testenv.FakeS3(t))
	checkpointtest.Run(t, func(t *testing.T) checkpoint.Store {
		b := testenv.UniqueName("b")
		testenv.CreateBucket(t, c, b)
		return newStore(t, c, b, "", 600*time.Millisecond)
	})
}

// TestPrefixIsolation: checkpoints under one bucket, one a prefix of the
// other's name, never see each other's objects.
func TestPrefixIsolation(t *testing.T) {
	ctx := t.Context()
	c := testenv.S3Client(t, testenv.FakeS3(t))
	testenv.CreateBucket(t, c, "ckpt")
	a := newStore(t, c, "ckpt", "queries/a", 0)
	ab := newStore(t, c, "ckpt", "queries/ab", 0)
	if err := a.Create(ctx, "offsets/0", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := ab.Create(ctx, "offsets/0", []byte("ab")); err != nil {
		t.Fatal(err)
	}
	for s, want := range map[*s3store.Store]string{a: "a", ab: "ab"} {
		got, err := s.Read(ctx, "offsets/0")
		if err != nil || string(got) != want {
			t.Fatalf("%s: Read = %q, %v; want %q", s.Location(), got, err, want)
		}
		names, err := s.List(ctx, "offsets")
		if err != nil || len(names) != 1 {
			t.Fatalf("%s: List = %q, %v", s.Location(), names, err)
		}
	}
	ra, err := a.Lock(ctx, "query a")
	if err != nil {
		t.Fatal(err)
	}
	defer ra()
	rab, err := ab.Lock(ctx, "query ab")
	if err != nil {
		t.Fatalf("a lock on queries/a blocked queries/ab: %v", err)
	}
	rab()
}

// TestLeaseExpiry: a holder that dies without releasing (its heartbeat
// stops) blocks the next Lock for about its lease time, no longer.
func TestLeaseExpiry(t *testing.T) {
	ctx := t.Context()
	c := testenv.S3Client(t, testenv.FakeS3(t))
	testenv.CreateBucket(t, c, "ckpt")
	const leaseTime = 800 * time.Millisecond
	// Simulate a dead holder: its lease object, never renewed.
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ckpt"), Key: aws.String("q/#lease"),
		Body: strings.NewReader(`{"owner":"dead run","token":"x","beat":0,"leaseMs":800}`)})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, c, "ckpt", "q", leaseTime)
	start := time.Now()
	release, err := s.Lock(ctx, "next run")
	if err != nil {
		t.Fatalf("Lock over an expired lease: %v", err)
	}
	defer release()
	if d := time.Since(start); d < leaseTime || d > 3*leaseTime {
		t.Fatalf("Lock took %v over a dead holder's lease, want about %v", d, leaseTime)
	}
	// The new holder renews: another Lock is refused, naming it.
	other := newStore(t, c, "ckpt", "q", leaseTime)
	_, err = other.Lock(ctx, "third run")
	if !errors.Is(err, checkpoint.ErrLocked) || !strings.Contains(err.Error(), "next run") {
		t.Fatalf("Lock while renewed = %v, want ErrLocked naming %q", err, "next run")
	}
}

// TestLostLeaseFencesWrites: a holder whose lease was taken over refuses
// to write.
func TestLostLeaseFencesWrites(t *testing.T) {
	ctx := t.Context()
	c := testenv.S3Client(t, testenv.FakeS3(t))
	testenv.CreateBucket(t, c, "ckpt")
	s := newStore(t, c, "ckpt", "q", 300*time.Millisecond)
	release, err := s.Lock(ctx, "old run")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// Another process overwrites the lease (as after a takeover).
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ckpt"), Key: aws.String("q/#lease"),
		Body: strings.NewReader(`{"owner":"new run","token":"y","beat":0,"leaseMs":300}`)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.Create(ctx, "offsets/9", []byte("late"))
		if errors.Is(err, checkpoint.ErrLocked) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Create after the lease was taken over = %v, want ErrLocked", err)
		}
		if err == nil {
			_ = s.Delete(ctx, "offsets/9")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLostLeaseFencesDeleteMany: DeleteMany, a write, is refused too.
func TestLostLeaseFencesDeleteMany(t *testing.T) {
	ctx := t.Context()
	c := testenv.S3Client(t, testenv.FakeS3(t))
	testenv.CreateBucket(t, c, "ckpt")
	s := newStore(t, c, "ckpt", "q", 300*time.Millisecond)
	if err := s.Create(ctx, "offsets/1", []byte("o")); err != nil {
		t.Fatal(err)
	}
	release, err := s.Lock(ctx, "old run")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ckpt"), Key: aws.String("q/#lease"),
		Body: strings.NewReader(`{"owner":"new run","token":"y","beat":0,"leaseMs":300}`)}); err != nil {
		t.Fatal(err)
	}
	checkpointtest.DeleteManyFenced(t, s, func(name string) error { _, err := s.Read(ctx, name); return err })
}

// methodCounter counts the requests of an S3 client by HTTP method.
type methodCounter struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *methodCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.Method]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *methodCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// countedClient returns an S3 client of a fresh gofakes3 with the bucket
// "ckpt", and the counter of its requests.
func countedClient(t *testing.T) (*s3.Client, *methodCounter) {
	t.Helper()
	mc := &methodCounter{next: http.DefaultTransport, n: map[string]int{}}
	c := s3.New(s3.Options{
		Region: testenv.Region, BaseEndpoint: aws.String(testenv.FakeS3(t)), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(testenv.AccessKeyID, testenv.SecretKey, ""),
		HTTPClient:  &http.Client{Transport: mc},
	})
	testenv.CreateBucket(t, c, "ckpt")
	return c, mc
}

// TestDeleteRequests: deleting an object this store wrote is one DELETE (the
// engine's purge of its own log entries); any other object is checked with
// a HEAD first, so a missing one is still reported.
func TestDeleteRequests(t *testing.T) {
	ctx := t.Context()
	c, mc := countedClient(t)
	s := newStore(t, c, "ckpt", "q", 0)
	other := newStore(t, c, "ckpt", "q", 0) // another process, or this one restarted
	for _, name := range []string{"offsets/1", "commits/1", "offsets/2"} {
		if err := s.Create(ctx, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "sinks/x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	mc.take()

	for _, name := range []string{"offsets/1", "commits/1", "sinks/x"} {
		if err := s.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if got := mc.take(); got[http.MethodDelete] != 3 || len(got) != 1 {
		t.Fatalf("deleting 3 objects this store wrote sent %v, want 3 DELETEs only", got)
	}
	if err := s.Delete(ctx, "offsets/1"); !errors.Is(err, checkpoint.ErrNotExist) {
		t.Fatalf("second Delete = %v, want ErrNotExist", err)
	}
	if err := other.Delete(ctx, "offsets/2"); err != nil {
		t.Fatalf("Delete of an object another store wrote: %v", err)
	}
	if got := mc.take(); got[http.MethodHead] != 2 || got[http.MethodDelete] != 1 {
		t.Fatalf("a missing object and another store's object: sent %v, want 2 HEADs and 1 DELETE", got)
	}
	if _, err := s.Read(ctx, "offsets/2"); !errors.Is(err, checkpoint.ErrNotExist) {
		t.Fatalf("Read after another store's Delete = %v, want ErrNotExist", err)
	}
}

// TestDeleteManyRequests: DeleteMany is one POST (DeleteObjects) per 1000
// names and never reads, whoever wrote the objects and whether they exist.
func TestDeleteManyRequests(t *testing.T) {
	ctx := t.Context()
	c, mc := countedClient(t)
	s := newStore(t, c, "ckpt", "q", 0)
	other := newStore(t, c, "ckpt", "q", 0)
	var names []string
	for i := range 2100 {
		name := fmt.Sprintf("offsets/%d", i)
		st := s
		if i%2 == 1 {
			st = other
		}
		if err := st.Create(ctx, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	names = append(names, "offsets/99999", "commits/1")
	mc.take()
	if err := s.DeleteMany(ctx, names); err != nil {
		t.Fatal(err)
	}
	if got := mc.take(); got[http.MethodPost] != 3 || len(got) != 1 {
		t.Fatalf("DeleteMany of %d names sent %v, want 3 POSTs only", len(names), got)
	}
	if left, err := s.List(ctx, "offsets"); err != nil || len(left) != 0 {
		t.Fatalf("List after DeleteMany = %d names, %v", len(left), err)
	}
	// Delete still tells a missing object.
	if err := s.Delete(ctx, "offsets/0"); !errors.Is(err, checkpoint.ErrNotExist) {
		t.Fatalf("Delete after DeleteMany = %v, want ErrNotExist", err)
	}
}

func TestParseLocation(t *testing.T) {
	for loc, want := range map[string][2]string{
		"s3://bucket/a/b":  {"bucket", "a/b"},
		"s3://bucket":      {"bucket", ""},
		"s3a://bucket/a/":  {"bucket", "a"},
		"S3://bucket/x.y_": {"bucket", "x.y_"},
	} {
		b, p, err := s3store.ParseLocation(loc)
		if err != nil || b != want[0] || p != want[1] {
			t.Errorf("ParseLocation(%q) = %q, %q, %v; want %q", loc, b, p, err, want)
		}
	}
	for _, bad := range []string{"s3:///x", "/tmp/x", "s3://b/a b", "s3://b/a/../c", "gs://b/x"} {
		if _, _, err := s3store.ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q) succeeded", bad)
		}
	}
}

var _ = context.Background
