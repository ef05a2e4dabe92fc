package kdsfake_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/kds/kdsfake"
)

func TestDataDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := kdsfake.New(kdsfake.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	kc := newClient(t, srv, clientOpts{})
	createStream(t, kc, "p", 2)
	putRange(t, kc, "p", 0, 100, 10)
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("p"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatal(err)
	}
	arn := registerConsumer(t, kc, "p", "c")
	last, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("p"), Data: []byte("last"), PartitionKey: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	srv2 := kdsfake.Start(t, kdsfake.Config{DataDir: dir})
	kc2 := newClient(t, srv2, clientOpts{})
	ls, err := kc2.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("p")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Shards) != 4 {
		t.Fatalf("restored %d shards, want 4", len(ls.Shards))
	}
	total := 0
	for _, sh := range ls.Shards {
		recs, _ := readAll(t, kc2, shardIterator(t, kc2, "p", *sh.ShardId, types.ShardIteratorTypeTrimHorizon))
		total += len(recs)
	}
	if total != 101 {
		t.Fatalf("restored %d records, want 101", total)
	}
	d, err := kc2.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
	if err != nil || d.ConsumerDescription.ConsumerStatus != types.ConsumerStatusActive {
		t.Fatalf("restored consumer: %v", err)
	}
	next, err := kc2.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("p"), Data: []byte("next"), PartitionKey: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if seqInt(t, next.SequenceNumber).Cmp(seqInt(t, last.SequenceNumber)) <= 0 {
		t.Error("sequence numbers went back after a restart")
	}
}
