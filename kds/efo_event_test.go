package kds

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithytime "github.com/aws/smithy-go/time"
)

// sameEvent compares two decoded events field by field (values, not
// pointers).
func sameEvent(a, b *types.SubscribeToShardEvent) bool {
	if aws.ToString(a.ContinuationSequenceNumber) != aws.ToString(b.ContinuationSequenceNumber) ||
		(a.ContinuationSequenceNumber == nil) != (b.ContinuationSequenceNumber == nil) ||
		(a.MillisBehindLatest == nil) != (b.MillisBehindLatest == nil) || aws.ToInt64(a.MillisBehindLatest) != aws.ToInt64(b.MillisBehindLatest) ||
		len(a.Records) != len(b.Records) || !reflect.DeepEqual(a.ChildShards, b.ChildShards) {
		return false
	}
	for i := range a.Records {
		x, y := a.Records[i], b.Records[i]
		if !bytes.Equal(x.Data, y.Data) || (x.Data == nil) != (y.Data == nil) || x.EncryptionType != y.EncryptionType ||
			aws.ToString(x.PartitionKey) != aws.ToString(y.PartitionKey) || (x.PartitionKey == nil) != (y.PartitionKey == nil) ||
			aws.ToString(x.SequenceNumber) != aws.ToString(y.SequenceNumber) ||
			(x.ApproximateArrivalTimestamp == nil) != (y.ApproximateArrivalTimestamp == nil) ||
			!aws.ToTime(x.ApproximateArrivalTimestamp).Equal(aws.ToTime(y.ApproximateArrivalTimestamp)) {
			return false
		}
	}
	return true
}

// FuzzEventPayload checks the direct scanner against encoding/json (which
// defines the result): whatever the scanner accepts, encoding/json decodes
// to the same event.
func FuzzEventPayload(f *testing.F) {
	for _, s := range []string{
		`{"ContinuationSequenceNumber":"4959","MillisBehindLatest":0,"Records":[{"ApproximateArrivalTimestamp":1.764123456789E9,"Data":"aGVsbG8=","PartitionKey":"k","SequenceNumber":"4958"}]}`,
		`{"ContinuationSequenceNumber":"1","MillisBehindLatest":7,"Records":[]}`,
		` { "Records" : [ { "SequenceNumber" : "1" , "Data" : "" , "EncryptionType" : "KMS" } ] , "MillisBehindLatest" : -0 } `,
		`{"ChildShards":[{"ShardId":"s","ParentShards":["p"],"HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"1"}}],"MillisBehindLatest":0,"Records":[]}`,
		`{"Records":[{"SequenceNumber":"1","PartitionKey":"\u00e9","ApproximateArrivalTimestamp":1e400}]}`,
		`{}`,
		`{"ChildShards":[],"ContinuationSequenceNumber":"2","MillisBehindLatest":0,"Records":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast eventPayload
		if !fast.scan(b) {
			return
		}
		fast.out.Records = fast.recs
		var ref eventPayload
		want, err := ref.decodeJSON(b)
		if err != nil {
			t.Fatalf("the scanner accepted %q, encoding/json: %v", b, err)
		}
		if !sameEvent(&fast.out, want) {
			t.Fatalf("%q: scanner %+v, encoding/json %+v", b, fast.out, *want)
		}
	})
}

// FuzzEpochSeconds: epochSeconds is the SDK's ParseEpochSeconds.
func FuzzEpochSeconds(f *testing.F) {
	for _, v := range []float64{0, 1.764123456789e9, -1.5, 1e300, math.SmallestNonzeroFloat64, 9.2e15, 0.0015, 1.0005} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return // not a JSON number
		}
		if got, want := epochSeconds(v), smithytime.ParseEpochSeconds(v); !got.Equal(want) {
			t.Fatalf("epochSeconds(%v) = %v, SDK %v", v, got, want)
		}
	})
}

// The common shape allocates the record's data and strings, nothing else.
func TestEventPayloadScanAllocations(t *testing.T) {
	b := []byte(`{"ContinuationSequenceNumber":"4959","MillisBehindLatest":0,"Records":[{"ApproximateArrivalTimestamp":1.764123456789E9,"Data":"aGVsbG8=","PartitionKey":"k","SequenceNumber":"4958"}]}`)
	var p eventPayload
	if !p.scan(b) {
		t.Fatal("the common shape was not scanned")
	}
	// data, the string pair, the timestamp, the continuation, the lag.
	if n := testing.AllocsPerRun(100, func() { p.decode(b) }); n > 7 {
		t.Errorf("%v allocations per event of one record", n)
	}
}
