package kds_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/kds"
)

func TestParseSourceOptionsDefaults(t *testing.T) {
	got, err := kds.ParseSourceOptions(map[string]string{"kinesis.streamName": "orders"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := kds.SourceConfig{
		StreamName:              "orders",
		Retry:                   kds.RetryConfig{MaxAttempts: 5, Initial: time.Second, Max: 10 * time.Second},
		ConsumerType:            kds.GetRecords,
		EFO:                     kds.EFOConfig{Registration: kds.RegisterAuto, SubscribeTimeout: time.Minute, MaxRetries: 10},
		StartingPosition:        kds.StartingPosition{Kind: "LATEST"},
		DescribeShardInterval:   time.Second,
		FetchInterval:           200 * time.Millisecond,
		RecordsPerFetch:         10000,
		FailOnDataLoss:          false,
		BufferRecords:           10000,
		BufferBytes:             64 << 20,
		MaxFetchRecordsPerShard: 100000,
		MaxFetchTimePerShard:    0,
		MinBatchesToRetain:      100,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseSourceOptionsMapsEveryField(t *testing.T) {
	got, err := kds.ParseSourceOptions(map[string]string{
		"kinesis.streamName":                         "orders",
		"kinesis.region":                             "eu-west-1",
		"kinesis.kinesisRegion":                      "us-east-2", // wins for the Kinesis client
		"kinesis.endpointUrl":                        "http://127.0.0.1:4567",
		"kinesis.awsAccessKeyId":                     "AKID",
		"kinesis.awsSecretKey":                       "SECRET",
		"kinesis.sessionToken":                       "TOKEN",
		"kinesis.clientNumRetries":                   "7",
		"kinesis.clientRetryIntervalsMs":             "250",
		"kinesis.clientMaxRetryIntervalMs":           "4s",
		"kinesis.startingPosition":                   `{"shardId-000000000001": {"type": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "42", "subSequenceNumber": 3}, "default": "AT_TIMESTAMP 2026-01-02T03:04:05Z"}`,
		"kinesis.describeShardInterval":              "0",
		"kinesis.getRecords.fetchIntervalMs":         "1000",
		"kinesis.getRecords.numberOfRecordsPerFetch": "500",
		"kinesis.failOnDataLoss":                     "TRUE",
		"shardflow.buffer.maxRecordsPerShard":        "123",
		"shardflow.buffer.maxBytesPerShard":          "8m",
		"kinesis.maxFetchRecordsPerShard":            "1000",
		"kinesis.maxFetchTimePerShardSec":            "30",
		"kinesis.minBatchesToRetain":                 "7",
		"kinesis.consumerType":                       "subscribetoshard",
		"kinesis.consumerName":                       "etl",
		"kinesis.consumerARN":                        "arn:aws:kinesis:us-east-2:123456789012:stream/orders/consumer/etl:1700000000",
		"kinesis.consumerRegistration":               "REGISTER-ONLY",
		"kinesis.subscribeToShard.timeoutSec":        "5",
		"kinesis.subscribeToShard.maxRetries":        "3",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := kds.SourceConfig{
		StreamName: "orders",
		AWS: kds.AWSConfig{
			Region: "us-east-2", EndpointURL: "http://127.0.0.1:4567",
			AccessKeyID: "AKID", SecretKey: "SECRET", SessionToken: "TOKEN",
		},
		Retry:        kds.RetryConfig{MaxAttempts: 7, Initial: 250 * time.Millisecond, Max: 4 * time.Second},
		ConsumerType: kds.SubscribeToShard,
		EFO: kds.EFOConfig{
			ConsumerName: "etl", ConsumerARN: "arn:aws:kinesis:us-east-2:123456789012:stream/orders/consumer/etl:1700000000",
			Registration: kds.RegisterOnly, SubscribeTimeout: 5 * time.Second, MaxRetries: 3,
		},
		StartingPosition: kds.StartingPosition{
			Kind:      "SHARDS",
			Default:   "AT_TIMESTAMP",
			Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Shards: map[string]kds.ShardPosition{
				"shardId-000000000001": {Type: "AFTER_SEQUENCE_NUMBER", SequenceNumber: "42", SubSequenceNumber: 3},
			},
		},
		DescribeShardInterval:   0,
		FetchInterval:           time.Second,
		RecordsPerFetch:         500,
		FailOnDataLoss:          true,
		BufferRecords:           123,
		BufferBytes:             8 << 20,
		MaxFetchRecordsPerShard: 1000,
		MaxFetchTimePerShard:    30 * time.Second,
		MinBatchesToRetain:      7,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// Without kinesis.kinesisRegion, kinesis.region is the client's region.
	got, err = kds.ParseSourceOptions(map[string]string{"kinesis.streamName": "s", "kinesis.region": "eu-west-1"}, nil)
	if err != nil || got.AWS.Region != "eu-west-1" {
		t.Errorf("region = %q, %v; want eu-west-1", got.AWS.Region, err)
	}
}

func TestParseSinkOptions(t *testing.T) {
	tests := []struct {
		opts map[string]string
		want kds.SinkConfig
	}{
		{
			opts: map[string]string{"kinesis.streamName": "out"},
			want: kds.SinkConfig{
				StreamName:     "out",
				Retry:          kds.RetryConfig{MaxAttempts: 5, Initial: time.Second, Max: 10 * time.Second},
				MaxConnections: 1,
				RecordTTL:      30 * time.Second,
				// KPL aggregation is on by default, as in Spark.
				Aggregation:           true,
				RecordMaxBufferedTime: time.Second,
			},
		},
		{
			opts: map[string]string{
				"kinesis.streamName": "out", "kinesis.region": "ap-south-1", "kinesis.endpointUrl": "https://kinesis.example.com",
				"kinesis.awsAccessKeyId": "AKID", "kinesis.awsSecretKey": "SECRET", "kinesis.sessionToken": "TOKEN",
				"kinesis.sink.maxConnections": "8", "kinesis.sink.recordTtl": "5000", "kinesis.clientNumRetries": "2",
				"kinesis.sink.aggregationEnabled": "false", "kinesis.sink.flushWaitTimeMs": "100",
			},
			want: kds.SinkConfig{
				StreamName: "out",
				AWS: kds.AWSConfig{Region: "ap-south-1", EndpointURL: "https://kinesis.example.com",
					AccessKeyID: "AKID", SecretKey: "SECRET", SessionToken: "TOKEN"},
				Retry:                 kds.RetryConfig{MaxAttempts: 2, Initial: time.Second, Max: 10 * time.Second},
				MaxConnections:        8,
				RecordTTL:             5 * time.Second,
				RecordMaxBufferedTime: time.Second,
			},
		},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got, err := kds.ParseSinkOptions(tt.opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseOptionsErrors(t *testing.T) {
	_, err := kds.ParseSourceOptions(map[string]string{"kinesis.clientNumRetries": "0", "kinesis.sink.maxConnections": "2"}, nil)
	if _, ok := errors.AsType[*shardflow.OptionError](err); !ok {
		t.Errorf("err = %v, want an *shardflow.OptionError", err)
	}
	if _, ok := errors.AsType[*shardflow.UnknownOptionError](err); !ok {
		t.Errorf("err = %v, want an *shardflow.UnknownOptionError for the sink option", err)
	}
	_, err = kds.ParseSinkOptions(map[string]string{"kinesis.streamName": "s", "kinesis.credentialProviderClass": "com.example.Provider"}, nil)
	if !errors.Is(err, shardflow.ErrNotSupported) {
		t.Errorf("err = %v, want ErrNotSupported", err)
	}

	sinkOpts, _, err := shardflow.ParseOptions(shardflow.ScopeSink, map[string]string{"kinesis.streamName": "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kds.SourceConfigFrom(sinkOpts); err == nil {
		t.Error("SourceConfigFrom(sink options) succeeded")
	}
	srcOpts, _, err := shardflow.ParseOptions(shardflow.ScopeSource, map[string]string{"kinesis.streamName": "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kds.SinkConfigFrom(srcOpts); err == nil {
		t.Error("SinkConfigFrom(source options) succeeded")
	}
}

// countHandler counts records at Warn level and above.
type countHandler struct{ warns atomic.Int32 }

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

func TestWarningsGoToTheLogger(t *testing.T) {
	h := &countHandler{}
	_, err := kds.ParseSourceOptions(map[string]string{
		"kinesis.streamName":                 "s",
		"kinesis.checkNewRecordThreads":      "8",
		"kinesis.internal.dataQueueCapacity": "10",
	}, slog.New(h))
	if err != nil {
		t.Fatal(err)
	}
	if n := h.warns.Load(); n != 2 {
		t.Errorf("%d warnings logged, want 2", n)
	}
	// A warning accompanies an error too, and a nil logger is fine.
	if _, err := kds.ParseSinkOptions(map[string]string{"kinesis.sink.proxyPort": "8080"}, nil); err == nil {
		t.Error("missing stream name accepted")
	}
}

// TestParsedConfigsAreAccepted checks that what the options produce is
// what NewSource and NewSink accept, for each starting-position form the
// source resolves.
func TestParsedConfigsAreAccepted(t *testing.T) {
	ctx := context.Background()
	base := map[string]string{
		"kinesis.streamName":     "orders",
		"kinesis.region":         "us-east-1",
		"kinesis.endpointUrl":    "http://127.0.0.1:1",
		"kinesis.awsAccessKeyId": "AKID",
		"kinesis.awsSecretKey":   "SECRET",
	}
	for _, pos := range []string{
		"LATEST", "TRIM_HORIZON", "EARLIEST", "AT_TIMESTAMP 2026-01-02T03:04:05.123+01:00",
		`{"shardId-000000000000": {"type": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "42"}, "shardId-000000000001": "TRIM_HORIZON", "default": "TRIM_HORIZON"}`,
		`{"shardId-000000000000": "AT_SEQUENCE_NUMBER 0", "default": "AT_TIMESTAMP 2026-01-02T03:04:05Z"}`,
	} {
		t.Run(pos, func(t *testing.T) {
			opts := map[string]string{"kinesis.startingPosition": pos}
			for k, v := range base {
				opts[k] = v
			}
			cfg, err := kds.ParseSourceOptions(opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			src, err := kds.NewSource(ctx, cfg, nil)
			if err != nil {
				t.Fatalf("NewSource: %v", err)
			}
			if _, err := src.ResolveInitial(ctx, time.Now()); err != nil {
				t.Fatalf("ResolveInitial: %v", err)
			}
		})
	}
	sinkCfg, err := kds.ParseSinkOptions(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := kds.NewSink(ctx, sinkCfg, nil)
	if err != nil {
		t.Fatalf("NewSink: %v", err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
}

// ExampleParseSourceOptions turns a Spark job's source options into a
// SourceConfig for NewSource.
func ExampleParseSourceOptions() {
	cfg, err := kds.ParseSourceOptions(map[string]string{
		"kinesis.streamName":                 "orders",
		"kinesis.region":                     "eu-west-1",
		"kinesis.startingPosition":           "TRIM_HORIZON",
		"kinesis.maxFetchTimePerShardSec":    "30",
		"kinesis.getRecords.fetchIntervalMs": "500",
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.StreamName, cfg.AWS.Region, cfg.StartingPosition.Kind)
	fmt.Println(cfg.FetchInterval, cfg.MaxFetchTimePerShard, cfg.Retry.MaxAttempts)

	_, err = kds.ParseSourceOptions(map[string]string{
		"kinesis.streamName":       "orders",
		"kinesis.clientNumRetries": "0",
	}, nil)
	fmt.Println(strings.ReplaceAll(err.Error(), "; ", ";\n  "))
	// Output:
	// orders eu-west-1 TRIM_HORIZON
	// 500ms 30s 5
	// option "kinesis.clientNumRetries"="0": too small;
	//   accepted: an integer >= 1
}
