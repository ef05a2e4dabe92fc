package s3store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
