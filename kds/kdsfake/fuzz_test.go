package kdsfake

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fuzzActions are the targets FuzzRequest picks from.
var fuzzActions = []string{
	"CreateStream", "DeleteStream", "DescribeStream", "DescribeStreamSummary", "ListStreams", "ListShards",
	"PutRecord", "PutRecords", "GetShardIterator", "GetRecords", "SplitShard", "MergeShards", "UpdateShardCount",
	"IncreaseStreamRetentionPeriod", "DecreaseStreamRetentionPeriod", "RegisterStreamConsumer",
	"DescribeStreamConsumer", "ListStreamConsumers", "DeregisterStreamConsumer", "SubscribeToShard",
	"AddTagsToStream", "RemoveTagsFromStream", "ListTagsForStream", "DescribeLimits", "NoSuchAction",
}

// FuzzRequest feeds arbitrary bodies to every action. Every answer must be
// a 200 or an AWS-shaped 4xx error ({"__type", "message"}); never a 5xx,
// never a panic.
func FuzzRequest(f *testing.F) {
	seeds := []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"StreamName":"s","ShardCount":2}`, `{"StreamName":1}`,
		`{"StreamName":"s","Records":[{"Data":"eA==","PartitionKey":"k"}]}`,
		`{"StreamName":"s","Records":[{"Data":"!!","PartitionKey":"k"}]}`,
		`{"StreamName":"s","Records":"x"}`, `{"StreamName":"s","Data":"eA==","PartitionKey":"k","ExplicitHashKey":"-1"}`,
		`{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":"x"}`,
		`{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"AT_SEQUENCE_NUMBER","StartingSequenceNumber":"0"}`,
		`{"ShardIterator":"AQ","Limit":-1}`, `{"ShardIterator":"` + strings.Repeat("A", 600) + `"}`,
		`{"StreamName":"s","ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":1e300}}`, `{"NextToken":"e30"}`,
		`{"StreamName":"s","TargetShardCount":99999,"ScalingType":"UNIFORM_SCALING"}`,
		`{"StreamName":"s","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"99999999999999999999999999999999999999999"}`,
		`{"ConsumerARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1","ShardId":"shardId-000000000000","StartingPosition":{"Type":"LATEST"}}`,
		`{"StreamName":"s","RetentionPeriodHours":1e10}`, `{"StreamName":"s","Limit":1.5}`, "{\"StreamName\":\"\xff\"}",
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, pick uint8, body []byte) {
		srv, err := New(Config{SubscriptionTTL: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		h := srv.Handler()
		// A stream and a consumer to hit, so that deeper paths run too.
		for _, setup := range []struct{ action, body string }{
			{"CreateStream", `{"StreamName":"s","ShardCount":2}`},
			{"PutRecord", `{"StreamName":"s","Data":"eA==","PartitionKey":"k"}`},
		} {
			if rec := do(h, setup.action, []byte(setup.body)); rec.Code != 200 {
				t.Fatalf("setup %s: %d %s", setup.action, rec.Code, rec.Body)
			}
		}
		action := fuzzActions[int(pick)%len(fuzzActions)]
		start := time.Now()
		rec := do(h, action, body)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s took %v on %q", action, d, body)
		}
		checkResponse(t, action, rec)
	})
}

func do(h http.Handler, action string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+action)
	req.Header.Set("Content-Type", jsonContentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func checkResponse(t *testing.T, action string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code == 200 {
		return
	}
	if rec.Code < 400 || rec.Code >= 500 {
		t.Fatalf("%s: status %d: %s", action, rec.Code, rec.Body)
	}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Type == "" || e.Message == "" {
		t.Fatalf("%s: status %d, body not an AWS error: %q", action, rec.Code, rec.Body)
	}
}

func TestMalformedRequests(t *testing.T) {
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h := srv.Handler()
	tests := []struct {
		action, body string
		status       int
		typ          string
	}{
		{"ListStreams", `{`, 400, "SerializationException"},
		{"CreateStream", `{"StreamName":5}`, 400, "SerializationException"},
		{"CreateStream", `{"StreamName":"s","ShardCount":"2"}`, 400, "SerializationException"},
		{"PutRecord", `{"StreamName":"s","Data":"%%%","PartitionKey":"k"}`, 400, "SerializationException"},
		{"GetRecords", `{"ShardIterator":"x","Limit":10001}`, 400, "ValidationException"},
		{"NoSuchAction", `{}`, 400, "UnknownOperationException"},
		{"PutRecords", `{"StreamName":"s","Records":[{"Data":"` + strings.Repeat("A", 11<<20) + `","PartitionKey":"k"}]}`, 413, "ValidationException"},
	}
	for _, tt := range tests {
		rec := do(h, tt.action, []byte(tt.body))
		var e struct {
			Type string `json:"__type"`
		}
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != tt.status || e.Type != tt.typ {
			t.Errorf("%s %.40q: %d %s, want %d %s", tt.action, tt.body, rec.Code, e.Type, tt.status, tt.typ)
		}
		checkResponse(t, tt.action, rec)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	checkResponse(t, "GET", rec)
}
