package kds

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	awsv2 "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardflow/shardflow/internal/engine"
)

func shard(id, parent, adjacent string, closed bool) types.Shard {
	sh := types.Shard{
		ShardId:             awsv2.String(id),
		HashKeyRange:        &types.HashKeyRange{StartingHashKey: awsv2.String("0"), EndingHashKey: awsv2.String("9")},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: awsv2.String("100")},
	}
	if parent != "" {
		sh.ParentShardId = awsv2.String(parent)
	}
	if adjacent != "" {
		sh.AdjacentParentShardId = awsv2.String(adjacent)
	}
	if closed {
		sh.SequenceNumberRange.EndingSequenceNumber = awsv2.String("200")
	}
	return sh
}

func TestListShardsPaginationAndLineage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pages := map[string]*kinesis.ListShardsOutput{
			"":   {Shards: []types.Shard{shard("shardId-0", "", "", true), shard("shardId-1", "", "", true)}, NextToken: awsv2.String("t1")},
			"t1": {Shards: []types.Shard{shard("shardId-2", "shardId-0", "", false)}, NextToken: awsv2.String("t2")},
			// A repeated shard (a server that pages by shard id) is kept once.
			"t2": {Shards: []types.Shard{shard("shardId-2", "shardId-0", "", false), shard("shardId-3", "shardId-0", "shardId-1", false)}},
		}
		fk := &fakeKinesis{listShards: func(in *kinesis.ListShardsInput) (*kinesis.ListShardsOutput, error) {
			return pages[awsv2.ToString(in.NextToken)], nil
		}}
		cfg := testSourceConfig()
		cfg.DescribeShardInterval = time.Second
		src := fakeSource(t, cfg, fk)
		src.pageSize = 2

		got, err := src.ListShards(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := []engine.ShardInfo{
			{ID: "shardId-0", Closed: true, StartingSequenceNumber: "100", HashKeyStart: "0", HashKeyEnd: "9"},
			{ID: "shardId-1", Closed: true, StartingSequenceNumber: "100", HashKeyStart: "0", HashKeyEnd: "9"},
			{ID: "shardId-2", Parents: []string{"shardId-0"}, StartingSequenceNumber: "100", HashKeyStart: "0", HashKeyEnd: "9"},
			{ID: "shardId-3", Parents: []string{"shardId-0", "shardId-1"}, StartingSequenceNumber: "100", HashKeyStart: "0", HashKeyEnd: "9"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("shards (-want +got):\n%s", diff)
		}
		fk.mu.Lock()
		lists := fk.lists
		fk.mu.Unlock()
		if len(lists) != 3 {
			t.Fatalf("%d ListShards calls, want 3", len(lists))
		}
		if awsv2.ToString(lists[0].StreamName) != "s" || lists[0].NextToken != nil {
			t.Errorf("first page request %+v: want StreamName and no NextToken", lists[0])
		}
		for _, in := range lists[1:] {
			if in.StreamName != nil || in.StreamARN != nil || in.ShardFilter != nil || in.ExclusiveStartShardId != nil || in.NextToken == nil {
				t.Errorf("later page request %+v: want only NextToken (and MaxResults)", in)
			}
			if awsv2.ToInt32(in.MaxResults) != 2 {
				t.Errorf("MaxResults %v, want 2", in.MaxResults)
			}
		}

		// Cached for DescribeShardInterval; callers get their own copy.
		got[3].Parents[0] = "mutated"
		time.Sleep(999 * time.Millisecond)
		again, err := src.ListShards(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, again); diff != "" {
			t.Errorf("cached shards (-want +got):\n%s", diff)
		}
		if n := len(fk.lists); n != 3 {
			t.Errorf("%d ListShards calls within the interval, want 3 (cached)", n)
		}
		time.Sleep(time.Millisecond)
		if _, err := src.ListShards(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := len(fk.lists); n != 6 {
			t.Errorf("%d ListShards calls after the interval, want 6", n)
		}
	})
}

func TestListShardsExpiredNextToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		expire := true
		fk := &fakeKinesis{listShards: func(in *kinesis.ListShardsInput) (*kinesis.ListShardsOutput, error) {
			if in.NextToken == nil {
				return &kinesis.ListShardsOutput{Shards: []types.Shard{shard("shardId-0", "", "", false)}, NextToken: awsv2.String("t")}, nil
			}
			if expire {
				expire = false
				return nil, &types.ExpiredNextTokenException{}
			}
			return &kinesis.ListShardsOutput{Shards: []types.Shard{shard("shardId-1", "", "", false)}}, nil
		}}
		got, err := fakeSource(t, testSourceConfig(), fk).ListShards(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Errorf("got %d shards, want 2: %+v", len(got), got)
		}
	})
}

func TestListShardsError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := &fakeKinesis{listShards: func(*kinesis.ListShardsInput) (*kinesis.ListShardsOutput, error) {
			return nil, &types.ResourceNotFoundException{Message: awsv2.String("Stream s under account 1 not found.")}
		}}
		_, err := fakeSource(t, testSourceConfig(), fk).ListShards(t.Context())
		if err == nil || !strings.HasPrefix(err.Error(), `kds: ListShards of stream "s": `) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestResolveInitial(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ts := now.Add(-time.Hour)
	tests := []struct {
		name    string
		sp      StartingPosition
		want    engine.InitialPosition
		wantErr string
	}{
		{"default is LATEST", StartingPosition{}, engine.InitialPosition{Type: engine.AtTimestamp, Timestamp: now}, ""},
		{"LATEST", StartingPosition{Kind: "latest"}, engine.InitialPosition{Type: engine.AtTimestamp, Timestamp: now}, ""},
		{"TRIM_HORIZON", StartingPosition{Kind: "TRIM_HORIZON"}, engine.InitialPosition{Type: engine.TrimHorizon}, ""},
		{"EARLIEST", StartingPosition{Kind: "Earliest"}, engine.InitialPosition{Type: engine.TrimHorizon}, ""},
		{"AT_TIMESTAMP", StartingPosition{Kind: "AT_TIMESTAMP", Timestamp: ts}, engine.InitialPosition{Type: engine.AtTimestamp, Timestamp: ts}, ""},
		{"AT_TIMESTAMP without time", StartingPosition{Kind: "AT_TIMESTAMP"}, engine.InitialPosition{}, "no timestamp"},
		{"unknown", StartingPosition{Kind: "OLDEST"}, engine.InitialPosition{}, `kinesis.startingPosition "OLDEST"`},
		{
			"SHARDS", StartingPosition{Kind: "SHARDS", Default: "TRIM_HORIZON", Shards: map[string]ShardPosition{
				"shardId-000000000000": {Type: "AT_SEQUENCE_NUMBER", SequenceNumber: "49590338271490256608559692538361571095921575989136588898"},
				"shardId-000000000001": {Type: "after_sequence_number", SequenceNumber: "12", SubSequenceNumber: 3},
				"shardId-000000000002": {Type: "LATEST"},
			}},
			engine.InitialPosition{Type: engine.TrimHorizon, Shards: map[string]engine.Start{
				"shardId-000000000000": {Type: engine.AtSequenceNumber, Seq: "49590338271490256608559692538361571095921575989136588898"},
				"shardId-000000000001": {Type: engine.AfterSequenceNumber, Seq: "12", Sub: 3},
				"shardId-000000000002": {Type: engine.AtTimestamp, Timestamp: now}, // LATEST is resolved now,
			}}, "",
		},
		{
			"SHARDS default LATEST", StartingPosition{Kind: "SHARDS", Shards: map[string]ShardPosition{
				"shardId-000000000000": {Type: "AT_SEQUENCE_NUMBER", SequenceNumber: "7"},
			}},
			engine.InitialPosition{Type: engine.AtTimestamp, Timestamp: now, Shards: map[string]engine.Start{
				"shardId-000000000000": {Type: engine.AtSequenceNumber, Seq: "7"},
			}}, "",
		},
		{"SHARDS bad seq", StartingPosition{Kind: "SHARDS", Shards: map[string]ShardPosition{"a": {Type: "AT_SEQUENCE_NUMBER", SequenceNumber: "007"}}}, engine.InitialPosition{}, "needs a sequence number"},
		{"SHARDS bad type", StartingPosition{Kind: "SHARDS", Shards: map[string]ShardPosition{"a": {Type: "AT_THE_END"}}}, engine.InitialPosition{}, `iterator type "AT_THE_END"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(SourceConfig{StreamName: "s", StartingPosition: tt.sp, Retry: RetryConfig{MaxAttempts: 1}}, &fakeKinesis{}, nil)
			got, err := src.ResolveInitial(t.Context(), now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSourceDescribe(t *testing.T) {
	t.Parallel()
	src := newSource(SourceConfig{StreamName: "orders", Retry: RetryConfig{MaxAttempts: 1}}, &fakeKinesis{}, nil)
	if got := src.Describe(); got != "KinesisSource[orders]" {
		t.Errorf("Describe() = %q", got)
	}
	if got := src.Stream(); got != "orders" {
		t.Errorf("Stream() = %q", got)
	}
}

func TestValidateSource(t *testing.T) {
	t.Parallel()
	ok := testSourceConfig()
	tests := []struct {
		name    string
		mod     func(*SourceConfig)
		wantErr string
	}{
		{"valid", func(*SourceConfig) {}, ""},
		{"no stream", func(c *SourceConfig) { c.StreamName = "" }, "kinesis.streamName"},
		{"zero retries", func(c *SourceConfig) { c.Retry.MaxAttempts = 0 }, "kinesis.clientNumRetries"},
		{"negative interval", func(c *SourceConfig) { c.DescribeShardInterval = -time.Second }, "kinesis.describeShardInterval"},
		{"negative fetch interval", func(c *SourceConfig) { c.FetchInterval = -1 }, "kinesis.getRecords.fetchIntervalMs"},
		{"too many per fetch", func(c *SourceConfig) { c.RecordsPerFetch = 10001 }, "kinesis.getRecords.numberOfRecordsPerFetch"},
		{"bad position", func(c *SourceConfig) { c.StartingPosition.Kind = "NOW" }, "kinesis.startingPosition"},
	}
	for _, tt := range tests {
		cfg := ok
		tt.mod(&cfg)
		err := validateSource(&cfg)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			if cfg.RecordsPerFetch != 10000 || cfg.BufferRecords != 20000 || cfg.BufferBytes != 16<<20 {
				t.Errorf("%s: defaults not applied: %+v", tt.name, cfg)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestOpenShardValidatesStart(t *testing.T) {
	t.Parallel()
	src := fakeSource(t, testSourceConfig(), &fakeKinesis{})
	for _, st := range []engine.Start{
		{Type: "LATEST"},
		{Type: engine.AtTimestamp},
		{Type: engine.AtSequenceNumber, Seq: "x1"},
		{Type: engine.AfterSequenceNumber, Seq: ""},
	} {
		if _, err := src.OpenShard(t.Context(), "shardId-0", st); err == nil {
			t.Errorf("OpenShard(%+v) succeeded, want an error", st)
		}
	}
}

func TestResolvePerShardPositions(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ts := now.Add(-time.Hour)
	got, err := resolveStartingPosition(StartingPosition{
		Kind:    "SHARDS",
		Default: "TRIM_HORIZON",
		Shards: map[string]ShardPosition{
			"a": {Type: "AT_TIMESTAMP", Timestamp: ts},
			"b": {Type: "LATEST"},
			"c": {Type: "AFTER_SEQUENCE_NUMBER", SequenceNumber: "123"},
		},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]engine.Start{
		"a": {Type: engine.AtTimestamp, Timestamp: ts},
		"b": {Type: engine.AtTimestamp, Timestamp: now}, // LATEST is resolved now, not to the default
		"c": {Type: engine.AfterSequenceNumber, Seq: "123"},
		"d": {Type: engine.TrimHorizon}, // not listed: the default
	}
	for id, w := range want {
		if s := got.StartFor(id); s != w {
			t.Errorf("shard %s starts at %+v, want %+v", id, s, w)
		}
	}
	if _, err := resolveStartingPosition(StartingPosition{Kind: "SHARDS", Default: "TRIM_HORIZON", Shards: map[string]ShardPosition{"a": {Type: "AT_TIMESTAMP"}}}, now); err == nil {
		t.Error("AT_TIMESTAMP without a timestamp accepted")
	}
}
