package kds

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/engine"
)

var sinkSchemaBytes = engine.Schema{{Name: "partitionKey", Type: engine.TypeString}, {Name: "data", Type: engine.TypeBytes}}

func testSinkConfig() SinkConfig {
	return SinkConfig{
		StreamName:     "out",
		Retry:          RetryConfig{MaxAttempts: 3, Initial: 100 * time.Millisecond, Max: time.Second},
		MaxConnections: 4,
		RecordTTL:      30 * time.Second,
	}
}

func fakeSink(t *testing.T, cfg SinkConfig, api kinesisAPI) *Sink {
	t.Helper()
	if err := validateSink(&cfg); err != nil {
		t.Fatal(err)
	}
	return newSink(cfg, api, nil)
}

// rows returns n rows of (pk-i, data-i).
func rows(n int) []engine.Row {
	out := make([]engine.Row, n)
	for i := range out {
		out[i] = engine.Row{fmt.Sprintf("pk-%d", i), fmt.Appendf(nil, "data-%d", i)}
	}
	return out
}

func TestSinkRejectsInvalidRows(t *testing.T) {
	t.Parallel()
	big := make([]byte, 1153434)
	strSchema := engine.Schema{{Name: "partitionKey", Type: engine.TypeString}, {Name: "DATA", Type: engine.TypeString}}
	ehkSchema := append(sinkSchemaBytes[:2:2], engine.Column{Name: "explicitHashKey", Type: engine.TypeString})
	withRow := func(n int, r engine.Row) []engine.Row {
		rs := rows(n)
		rs[n-1] = r
		return rs
	}
	tests := []struct {
		name   string
		schema engine.Schema
		rows   []engine.Row
		want   string
	}{
		{"data too big", sinkSchemaBytes, withRow(18, engine.Row{"pk", big}),
			"kds sink: batch 3 row 17: data is 1153434 bytes; Kinesis accepts at most 1048576"},
		{"string data too big", strSchema, withRow(2, engine.Row{"pk", string(big)}),
			"kds sink: batch 3 row 1: data is 1153434 bytes; Kinesis accepts at most 1048576"},
		{"empty partition key", sinkSchemaBytes, withRow(5, engine.Row{"", []byte("x")}),
			"kds sink: batch 3 row 4: partitionKey is empty"},
		{"257-character partition key", sinkSchemaBytes, withRow(1, engine.Row{strings.Repeat("é", 257), []byte("x")}),
			"kds sink: batch 3 row 0: partitionKey is 257 characters; Kinesis accepts at most 256"},
		{"null partition key", sinkSchemaBytes, withRow(1, engine.Row{nil, []byte("x")}),
			"kds sink: batch 3 row 0: partitionKey is null"},
		{"null data", sinkSchemaBytes, withRow(1, engine.Row{"pk", nil}),
			"kds sink: batch 3 row 0: data is null"},
		{"wrong value type", sinkSchemaBytes, withRow(1, engine.Row{int64(5), []byte("x")}),
			"kds sink: batch 3 row 0: partitionKey holds a int64"},
		{"short row", sinkSchemaBytes, withRow(1, engine.Row{"pk"}),
			"kds sink: batch 3 row 0: has 1 values"},
		{"bad hash key", ehkSchema, []engine.Row{{"pk", []byte("x"), "340282366920938463463374607431768211456"}},
			"kds sink: batch 3 row 0: explicitHashKey"},
		{"negative hash key", ehkSchema, []engine.Row{{"pk", []byte("x"), "-1"}},
			"kds sink: batch 3 row 0: explicitHashKey"},
		{"several bad rows", sinkSchemaBytes, []engine.Row{{"a", []byte("x")}, {"", []byte("x")}, {"", []byte("x")}, {"", nil}},
			"kds sink: batch 3 row 1: partitionKey is empty; Kinesis needs 1 to 256 characters (and 2 more invalid rows)"},
		{"no partitionKey column", engine.Schema{{Name: "key", Type: engine.TypeString}, {Name: "data", Type: engine.TypeBytes}}, rows(1),
			"kds sink: batch 3: no partitionKey column (columns: key, data)"},
		{"no data column", engine.Schema{{Name: "partitionKey", Type: engine.TypeString}}, rows(1),
			"kds sink: batch 3: no data column"},
		{"data column type", engine.Schema{{Name: "partitionKey", Type: engine.TypeString}, {Name: "data", Type: engine.TypeInt64}}, rows(1),
			"kds sink: batch 3: column data has type bigint; want string or binary"},
		{"partitionKey column type", engine.Schema{{Name: "partitionKey", Type: engine.TypeBytes}, {Name: "data", Type: engine.TypeBytes}}, rows(1),
			"kds sink: batch 3: column partitionKey has type binary; want string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fk := &fakeKinesis{}
			s := fakeSink(t, testSinkConfig(), fk)
			err := s.AddBatch(t.Context(), &engine.Batch{ID: 3, Schema: tt.schema, Rows: tt.rows})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant prefix %q", err, tt.want)
			}
			if n := len(fk.putCalls()); n != 0 {
				t.Errorf("%d PutRecords calls; an invalid batch must send nothing", n)
			}
		})
	}
}

func TestSinkAcceptsLimits(t *testing.T) {
	t.Parallel()
	fk := &fakeKinesis{}
	s := fakeSink(t, testSinkConfig(), fk)
	sc := append(sinkSchemaBytes[:2:2], engine.Column{Name: "explicitHashKey", Type: engine.TypeString})
	err := s.AddBatch(t.Context(), &engine.Batch{ID: 1, Schema: sc, Rows: []engine.Row{
		{strings.Repeat("é", 256), make([]byte, 1<<20), nil},
		{"k", []byte{}, "340282366920938463463374607431768211455"},
		{"k", []byte("x"), ""},
	}})
	if err != nil {
		t.Fatal(err)
	}
	puts := fk.putCalls()
	if len(puts) != 1 || len(puts[0]) != 3 {
		t.Fatalf("puts %d", len(puts))
	}
	if puts[0][0].ExplicitHashKey != nil || awsv2.ToString(puts[0][1].ExplicitHashKey) != "340282366920938463463374607431768211455" || puts[0][2].ExplicitHashKey != nil {
		t.Errorf("explicit hash keys not passed through as given")
	}
}

func TestSinkChunks(t *testing.T) {
	t.Parallel()
	mib := make([]byte, 1<<20)
	tests := []struct {
		name string
		rows []engine.Row
		want string // records per request
	}{
		{"500 records per request", rows(1201), "[500 500 201]"},
		{"5 MiB per request, keys included", []engine.Row{
			{"a", mib}, {"b", mib}, {"c", mib}, {"d", mib}, {"e", mib}, {"f", mib},
		}, "[4 2]"},
		{"exactly 5 MiB", []engine.Row{
			{"a", mib[1:]}, {"b", mib[1:]}, {"c", mib[1:]}, {"d", mib[1:]}, {"e", mib[1:]}, {"f", []byte("x")},
		}, "[5 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fk := &fakeKinesis{}
			cfg := testSinkConfig()
			cfg.MaxConnections = 1 // in order
			s := fakeSink(t, cfg, fk)
			if err := s.AddBatch(t.Context(), &engine.Batch{ID: 1, Schema: sinkSchemaBytes, Rows: tt.rows}); err != nil {
				t.Fatal(err)
			}
			var sizes []int
			i := 0
			for _, p := range fk.putCalls() {
				sizes = append(sizes, len(p))
				bytes := 0
				for _, e := range p {
					bytes += len(e.Data) + len(*e.PartitionKey)
					if want := tt.rows[i][0].(string); *e.PartitionKey != want {
						t.Fatalf("entry %d has key %q, want %q: order lost", i, *e.PartitionKey, want)
					}
					i++
				}
				if bytes > 5<<20 {
					t.Errorf("request of %d bytes", bytes)
				}
			}
			if fmt.Sprint(sizes) != tt.want {
				t.Errorf("requests of %v records, want %s", sizes, tt.want)
			}
		})
	}
}

func TestSinkMaxConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inFlight, peak atomic.Int32
		fk := &fakeKinesis{putRecords: func(_ context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			n := inFlight.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
			inFlight.Add(-1)
			return okPut(in), nil
		}}
		cfg := testSinkConfig()
		cfg.MaxConnections = 3
		s := fakeSink(t, cfg, fk)
		start := time.Now()
		if err := s.AddBatch(t.Context(), &engine.Batch{ID: 1, Schema: sinkSchemaBytes, Rows: rows(500 * 10)}); err != nil {
			t.Fatal(err)
		}
		if p := peak.Load(); p != 3 {
			t.Errorf("peak %d requests in flight, want 3", p)
		}
		if d := time.Since(start); d != 400*time.Millisecond {
			t.Errorf("10 requests of 100ms, 3 at a time, took %v; want 400ms", d)
		}
	})
}

// failing answers PutRecords failing the entries whose partition key is in
// fail, as often as the count says (-1: always).
type failing struct {
	mu   sync.Mutex
	fail map[string]int
}

func (f *failing) put(_ context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := okPut(in)
	n := int32(0)
	for i, e := range in.Records {
		if c := f.fail[*e.PartitionKey]; c != 0 {
			f.fail[*e.PartitionKey] = c - 1
			out.Records[i] = types.PutRecordsResultEntry{
				ErrorCode:    awsv2.String("ProvisionedThroughputExceededException"),
				ErrorMessage: awsv2.String("Rate exceeded for shard shardId-000000000001"),
			}
			n++
		}
	}
	out.FailedRecordCount = &n
	return out, nil
}

func TestSinkRetriesOnlyFailedEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &failing{fail: map[string]int{"pk-2": 1, "pk-5": 2}}
		fk := &fakeKinesis{putRecords: f.put}
		s := fakeSink(t, testSinkConfig(), fk)
		if err := s.AddBatch(t.Context(), &engine.Batch{ID: 1, Schema: sinkSchemaBytes, Rows: rows(8)}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range fk.putCalls() {
			var keys []string
			for _, e := range p {
				keys = append(keys, *e.PartitionKey)
			}
			got = append(got, strings.Join(keys, ","))
		}
		want := []string{"pk-0,pk-1,pk-2,pk-3,pk-4,pk-5,pk-6,pk-7", "pk-2,pk-5", "pk-5"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("requests %q, want %q", got, want)
		}
		if !bytes.Equal(fk.putCalls()[1][1].Data, []byte("data-5")) {
			t.Error("retried entry lost its data")
		}
	})
}

func TestSinkRecordTTLExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &failing{fail: map[string]int{"pk-1": 1, "pk-3": -1, "pk-6": -1}}
		fk := &fakeKinesis{putRecords: f.put}
		cfg := testSinkConfig()
		cfg.RecordTTL = 5 * time.Second
		s := fakeSink(t, cfg, fk)
		start := time.Now()
		err := s.AddBatch(t.Context(), &engine.Batch{ID: 9, Schema: sinkSchemaBytes, Rows: rows(8)})
		want := "kds sink: batch 9 row 3: not written within kinesis.sink.recordTtl (5s): ProvisionedThroughputExceededException: Rate exceeded for shard shardId-000000000001 (and 1 more records failed)"
		if err == nil || err.Error() != want {
			t.Fatalf("err = %v\nwant  %s", err, want)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("failed after %v, want the TTL (5s)", d)
		}
		if n := len(fk.putCalls()); n < 4 {
			t.Errorf("only %d requests within the TTL", n)
		}
	})
}

func TestSinkWholeRequestRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		fk := &fakeKinesis{putRecords: func(_ context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			calls++
			if calls == 1 {
				return nil, httpErr(500, &types.InternalFailureException{})
			}
			if calls == 2 {
				return nil, &types.ProvisionedThroughputExceededException{}
			}
			return okPut(in), nil
		}}
		s := fakeSink(t, testSinkConfig(), fk)
		if err := s.AddBatch(t.Context(), &engine.Batch{ID: 1, Schema: sinkSchemaBytes, Rows: rows(3)}); err != nil {
			t.Fatal(err)
		}
		if calls != 3 {
			t.Errorf("%d calls, want 3", calls)
		}

		calls = 0
		fk.putRecords = func(context.Context, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			calls++
			return nil, &types.ResourceNotFoundException{Message: awsv2.String("Stream out not found")}
		}
		err := s.AddBatch(t.Context(), &engine.Batch{ID: 2, Schema: sinkSchemaBytes, Rows: rows(3)})
		if err == nil || !strings.Contains(err.Error(), `kds sink: batch 2 rows 0 to 2: kds: PutRecords of stream "out": `) {
			t.Errorf("err = %v", err)
		}
		if calls != 1 {
			t.Errorf("%d calls for a non-retryable error, want 1", calls)
		}
	})
}

func TestSinkClosed(t *testing.T) {
	t.Parallel()
	s := fakeSink(t, testSinkConfig(), &fakeKinesis{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AddBatch(t.Context(), &engine.Batch{ID: 1, Schema: sinkSchemaBytes, Rows: rows(1)}); err == nil {
		t.Error("AddBatch after Close succeeded")
	}
}

func TestSinkUsesEndpoint(t *testing.T) {
	isolateAWSConfig(t)
	srv := newRecordingServer(t, func(target string, req []byte) string {
		return `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]}`
	})
	cfg := testSinkConfig()
	cfg.AWS = AWSConfig{Region: "us-east-1", EndpointURL: srv.URL, AccessKeyID: "a", SecretKey: "b"}
	s, err := NewSink(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddBatch(t.Context(), &engine.Batch{ID: 1, Schema: sinkSchemaBytes, Rows: rows(1)}); err != nil {
		t.Fatal(err)
	}
	if got := srv.calls(); len(got) != 1 || got[0] != "Kinesis_20131202.PutRecords" {
		t.Errorf("server saw %q, want one PutRecords", got)
	}
}

func TestSinkCheckSchema(t *testing.T) {
	s := &Sink{cfg: SinkConfig{StreamName: "out"}}
	if err := s.CheckSchema(engine.SourceSchema()); err != nil {
		t.Fatalf("the source schema (partitionKey, data) must be accepted: %v", err)
	}
	err := s.CheckSchema(engine.Schema{{Name: "partitionKey", Type: engine.TypeInt64}, {Name: "value", Type: engine.TypeString}})
	for _, want := range []string{`"data" is missing`, `"partitionKey" is bigint`, "produces (partitionKey bigint, value string)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
