package ckptopen_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/ddbstore"
	"github.com/shardflow/shardflow/checkpoint/fsstore"
	"github.com/shardflow/shardflow/checkpoint/s3store"
	"github.com/shardflow/shardflow/internal/testenv"
)

// counter counts a store's calls by kind. Calls on the Lock lease (the
// object or item "#lease") are counted apart: they are the lease's
// heartbeat, paced by time, not by batches.
type counter struct {
	next                    http.RoundTripper
	writes, reads           atomic.Int64
	leaseWrites, leaseReads atomic.Int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	write, lease := false, false
	if t := r.Header.Get("X-Amz-Target"); t != "" { // DynamoDB
		op := t[strings.LastIndex(t, ".")+1:]
		write = op == "PutItem" || op == "DeleteItem" || op == "UpdateItem" || op == "BatchWriteItem"
		if r.Body != nil {
			body, err := io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				return nil, err
			}
			r = r.Clone(r.Context())
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			lease = bytes.Contains(body, []byte(`"#lease"`))
		}
	} else { // S3
		write = r.Method == http.MethodPut || r.Method == http.MethodDelete || r.Method == http.MethodPost
		lease = strings.HasSuffix(r.URL.Path, "/#lease")
	}
	switch {
	case lease && write:
		c.leaseWrites.Add(1)
	case lease:
		c.leaseReads.Add(1)
	case write:
		c.writes.Add(1)
	default:
		c.reads.Add(1)
	}
	return c.next.RoundTrip(r)
}

// calls is a snapshot of a counter's store calls.
type calls struct{ writes, reads int64 }

func (c *counter) calls() calls { return calls{c.writes.Load(), c.reads.Load()} }

func (a calls) sub(b calls) calls { return calls{a.writes - b.writes, a.reads - b.reads} }

func (a calls) add(b calls) calls { return calls{a.writes + b.writes, a.reads + b.reads} }

// writeBatch is what the engine writes for a batch with no records:
// offsets/N, then commits/N, both create-if-absent.
func writeBatch(ctx context.Context, s checkpoint.Store, n int64) error {
	off := fmt.Appendf(nil, `{"batchId":%d,"timestamp":"%s","shards":{"shardId-000000000000":{"start":{"type":"AFTER_SEQUENCE_NUMBER","seq":"49650000000000000000000000000000000000000000000000000000"},"state":"open"}}}`, n, time.Now().UTC().Format(time.RFC3339Nano))
	if err := s.Create(ctx, "offsets/"+strconv.FormatInt(n, 10), off); err != nil {
		return err
	}
	return s.Create(ctx, "commits/"+strconv.FormatInt(n, 10), fmt.Appendf(nil, `{"batchId":%d,"numInputRows":0}`, n))
}

// purgeDue reports whether the engine purges after batch n: every keep/10
// batches (internal/engine purgeEvery).
func purgeDue(n, keep int64) bool { return n%max(1, keep/10) == 0 }

// purger is the engine's purge (internal/engine wal.purge): the first purge
// that has something to delete lists both logs; later ones delete the ids
// that fell out of retention since the last one, without listing, in one
// DeleteMany when the store has it (one Delete each otherwise).
type purger struct {
	listed bool
	older  []string // entries the listing found, not deleted yet
	next   int64    // the oldest id after the listing not yet deleted
}

// purge is the purge after batch n.
func (p *purger) purge(ctx context.Context, s checkpoint.Store, n, keep int64) error {
	last := n - keep
	if last < 0 {
		return nil
	}
	if !p.listed {
		for _, dir := range []string{"commits", "offsets"} {
			names, err := s.List(ctx, dir)
			if err != nil {
				return err
			}
			for _, name := range names {
				p.older = append(p.older, dir+"/"+name)
			}
		}
		p.listed, p.next = true, n+1
	}
	var names []string
	kept := p.older[:0]
	for _, name := range p.older {
		id, _ := strconv.ParseInt(name[strings.IndexByte(name, '/')+1:], 10, 64)
		if id <= last {
			names = append(names, name)
		} else {
			kept = append(kept, name)
		}
	}
	p.older = kept
	for ; p.next <= last; p.next++ {
		names = append(names, "commits/"+strconv.FormatInt(p.next, 10), "offsets/"+strconv.FormatInt(p.next, 10))
	}
	if len(names) == 0 {
		return nil
	}
	if bd, ok := s.(checkpoint.BatchDeleter); ok {
		return bd.DeleteMany(ctx, names)
	}
	for _, name := range names {
		if err := s.Delete(ctx, name); err != nil && !errors.Is(err, checkpoint.ErrNotExist) {
			return err
		}
	}
	return nil
}

// emptyBatch is one empty batch: writeBatch, then purge when due.
func (p *purger) emptyBatch(ctx context.Context, s checkpoint.Store, n, keep int64) error {
	if err := writeBatch(ctx, s, n); err != nil {
		return err
	}
	if purgeDue(n, keep) {
		return p.purge(ctx, s, n, keep)
	}
	return nil
}

// benchLease is the benchmark's lease time (shardflow.checkpoint.leaseTime,
// 30 s by default), short so that a run of about a second sees heartbeats.
// A holder renews every lease time / 6: 0.2 heartbeats/s at the default.
const benchLease = 3 * time.Second

// BenchmarkEmptyBatchLoop: the checkpoint I/O of one empty batch (plan:
// no I/O; write offsets; commit; purge with kinesis.minBatchesToRetain
// 100 every 10 batches) on each store, in steady state (after 100 batches
// and the purge's one listing of the logs), while holding the checkpoint's
// Lock as a query does. It reports:
//
//   - p50-ms, p99-ms: the latency of one batch, purge included when due;
//   - writes/batch, reads/batch: the calls that write offsets/N and
//     commits/N (the goal: 2 writes, no reads);
//   - purge-writes/batch, purge-reads/batch: the purge's calls (deleting
//     the two entries per batch that fall out of retention: one
//     DeleteObjects or one BatchWriteItem of 20 every 10 batches; no reads,
//     the logs are listed once per run), averaged over all batches;
//   - lease-writes/s, lease-reads/s: the Lock lease's heartbeat, per second
//     of the run (with benchLease; it scales as 6/leaseTime).
func BenchmarkEmptyBatchLoop(b *testing.B) {
	const keep = 100
	stores := []struct {
		name string
		open func(b *testing.B, c *counter) checkpoint.Store
	}{
		{"fsstore", func(b *testing.B, c *counter) checkpoint.Store {
			s, err := fsstore.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"s3store-gofakes3", func(b *testing.B, c *counter) checkpoint.Store {
			client := s3.New(s3.Options{
				Region: testenv.Region, BaseEndpoint: aws.String(testenv.FakeS3(b)), UsePathStyle: true,
				Credentials: credentials.NewStaticCredentialsProvider(testenv.AccessKeyID, testenv.SecretKey, ""),
				HTTPClient:  &http.Client{Transport: c},
			})
			testenv.CreateBucket(b, client, "bench")
			s, err := s3store.New(s3store.Config{Client: client, Bucket: "bench", Prefix: "q", LeaseTime: benchLease})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"ddbstore-dynalite", func(b *testing.B, c *counter) checkpoint.Store {
			client := dynamodb.New(dynamodb.Options{
				Region: testenv.Region, BaseEndpoint: aws.String(testenv.Dynalite(b)),
				Credentials: credentials.NewStaticCredentialsProvider(testenv.AccessKeyID, testenv.SecretKey, ""),
				HTTPClient:  &http.Client{Transport: c},
			})
			s, err := ddbstore.New(b.Context(), ddbstore.Config{Client: client, Table: "bench-checkpoints", CheckpointID: testenv.UniqueName("bench-"), LeaseTime: benchLease})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			c := &counter{next: &http.Transport{MaxIdleConnsPerHost: 16}}
			s := st.open(b, c)
			ctx := b.Context()
			release, err := s.Lock(ctx, "BenchmarkEmptyBatchLoop")
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := release(); err != nil {
					b.Error(err)
				}
			}()
			var n int64
			var p purger
			for ; n <= keep; n++ { // steady state: the purge listed and deletes
				if err := p.emptyBatch(ctx, s, n, keep); err != nil {
					b.Fatal(err)
				}
			}
			var batch, purged calls
			lw0, lr0 := c.leaseWrites.Load(), c.leaseReads.Load()
			lat := make([]time.Duration, 0, b.N)
			start := time.Now()
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				c0 := c.calls()
				if err := writeBatch(ctx, s, n); err != nil {
					b.Fatal(err)
				}
				c1 := c.calls()
				batch = batch.add(c1.sub(c0))
				if purgeDue(n, keep) {
					if err := p.purge(ctx, s, n, keep); err != nil {
						b.Fatal(err)
					}
					purged = purged.add(c.calls().sub(c1))
				}
				lat = append(lat, time.Since(t0))
				n++
			}
			b.StopTimer()
			secs := time.Since(start).Seconds()
			slices.Sort(lat)
			batches := float64(len(lat))
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(batch.writes)/batches, "writes/batch")
			b.ReportMetric(float64(batch.reads)/batches, "reads/batch")
			b.ReportMetric(float64(purged.writes)/batches, "purge-writes/batch")
			b.ReportMetric(float64(purged.reads)/batches, "purge-reads/batch")
			b.ReportMetric(float64(c.leaseWrites.Load()-lw0)/secs, "lease-writes/s")
			b.ReportMetric(float64(c.leaseReads.Load()-lr0)/secs, "lease-reads/s")
		})
	}
}
