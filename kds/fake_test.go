package kds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/engine"
)

// fakeKinesis is a kinesisAPI whose answers the test scripts with
// functions. Unset functions fail the call. It records every input.
type fakeKinesis struct {
	listShards       func(*kinesis.ListShardsInput) (*kinesis.ListShardsOutput, error)
	getShardIterator func(*kinesis.GetShardIteratorInput) (*kinesis.GetShardIteratorOutput, error)
	getRecords       func(*kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error)
	putRecords       func(context.Context, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error)

	mu        sync.Mutex
	lists     []kinesis.ListShardsInput
	iterators []kinesis.GetShardIteratorInput
	gets      []kinesis.GetRecordsInput
	puts      [][]types.PutRecordsRequestEntry
}

var errUnscripted = errors.New("fake: call not scripted")

func (f *fakeKinesis) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	f.lists = append(f.lists, *in)
	f.mu.Unlock()
	if f.listShards == nil {
		return nil, errUnscripted
	}
	return f.listShards(in)
}

func (f *fakeKinesis) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	f.mu.Lock()
	f.iterators = append(f.iterators, *in)
	f.mu.Unlock()
	if f.getShardIterator == nil {
		return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String("it-0")}, nil
	}
	return f.getShardIterator(in)
}

func (f *fakeKinesis) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.mu.Lock()
	f.gets = append(f.gets, kinesis.GetRecordsInput{ShardIterator: in.ShardIterator, Limit: aws.Int32(aws.ToInt32(in.Limit))})
	f.mu.Unlock()
	if f.getRecords == nil {
		return nil, errUnscripted
	}
	return f.getRecords(in)
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	f.puts = append(f.puts, append([]types.PutRecordsRequestEntry(nil), in.Records...))
	f.mu.Unlock()
	if f.putRecords == nil {
		return okPut(in), nil
	}
	return f.putRecords(ctx, in)
}

func (f *fakeKinesis) getCalls() []kinesis.GetRecordsInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]kinesis.GetRecordsInput(nil), f.gets...)
}

func (f *fakeKinesis) iteratorCalls() []kinesis.GetShardIteratorInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]kinesis.GetShardIteratorInput(nil), f.iterators...)
}

func (f *fakeKinesis) putCalls() [][]types.PutRecordsRequestEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]types.PutRecordsRequestEntry(nil), f.puts...)
}

// okPut answers a PutRecords with every entry written.
func okPut(in *kinesis.PutRecordsInput) *kinesis.PutRecordsOutput {
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
	for i := range in.Records {
		out.Records = append(out.Records, types.PutRecordsResultEntry{
			ShardId: aws.String("shardId-000000000000"), SequenceNumber: aws.String(fmt.Sprint(1000 + i)),
		})
	}
	return out
}

// kRecord is a Kinesis record with sequence number seq, arrived at t.
func kRecord(seq int, t time.Time) types.Record {
	return types.Record{
		SequenceNumber:              aws.String(fmt.Sprint(seq)),
		PartitionKey:                aws.String(fmt.Sprintf("pk-%d", seq)),
		Data:                        fmt.Appendf(nil, "data-%d", seq),
		ApproximateArrivalTimestamp: aws.Time(t),
	}
}

// page is a GetRecords answer; next "" means the shard ended.
func page(next string, mbl int64, recs ...types.Record) *kinesis.GetRecordsOutput {
	out := &kinesis.GetRecordsOutput{Records: recs, MillisBehindLatest: aws.Int64(mbl)}
	if next != "" {
		out.NextShardIterator = aws.String(next)
	}
	return out
}

// testSourceConfig is a valid config with fast retries.
func testSourceConfig() SourceConfig {
	return SourceConfig{
		StreamName: "s",
		Retry:      RetryConfig{MaxAttempts: 3, Initial: 100 * time.Millisecond, Max: time.Second},
		StartingPosition: StartingPosition{
			Kind: "TRIM_HORIZON",
		},
		FetchInterval: 200 * time.Millisecond,
	}
}

// fakeSource returns a Source on api with cfg validated.
func fakeSource(t *testing.T, cfg SourceConfig, api kinesisAPI) *Source {
	t.Helper()
	if err := validateSource(&cfg); err != nil {
		t.Fatal(err)
	}
	return newSource(cfg, api, nil)
}

// openReader opens a shard reader and closes it at the end of the test.
func openReader(t *testing.T, src *Source, shard string, from engine.Start) *shardReader {
	t.Helper()
	r, err := src.OpenShard(t.Context(), shard, from)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r.(*shardReader)
}

// seqs returns the sequence numbers of recs.
func seqs(recs []engine.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = recs[i].SequenceNumber
	}
	return out
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
