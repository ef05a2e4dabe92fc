package kdsfake_test

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/kds/kdsfake"
)

// Example starts a server on a free port of 127.0.0.1, creates a stream,
// puts a record and reads it back with the AWS SDK.
func Example() {
	srv, err := kdsfake.New(kdsfake.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	endpoint, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.CreateStream("orders", 1); err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	kc := kinesis.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		HTTPClient:  srv.Client(),
	}, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })

	put, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{
		StreamName:   aws.String("orders"),
		Data:         []byte(`{"id": 42}`),
		PartitionKey: aws.String("42"),
	})
	if err != nil {
		log.Fatal(err)
	}
	it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName:        aws.String("orders"),
		ShardId:           put.ShardId,
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		log.Fatal(err)
	}
	out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range out.Records {
		fmt.Printf("%s %s %s\n", *put.ShardId, *r.PartitionKey, r.Data)
	}
	fmt.Println("behind:", *out.MillisBehindLatest)
	// Output:
	// shardId-000000000000 42 {"id": 42}
	// behind: 0
}
