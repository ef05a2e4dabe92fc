package datagen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// call is one PutRecords request the fake received.
type call struct {
	at      time.Time
	records []types.PutRecordsRequestEntry // copies
}

// fakeKinesis is a Putter. Each call takes latency (on the synctest clock),
// then fails as a whole if failCall says so, else fails the entries
// failEntry names.
type fakeKinesis struct {
	latency   time.Duration
	failCall  func(n int) error                  // n counts calls from 0
	failEntry func(n, i int, data []byte) string // an error code, or ""
	block     chan struct{}                      // if set, each call waits for a receive... or ctx

	mu    sync.Mutex
	calls []call
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if aws.ToString(in.StreamName) != "s" {
		return nil, fmt.Errorf("wrong stream %q", aws.ToString(in.StreamName))
	}
	c := call{at: time.Now()}
	for _, e := range in.Records {
		c.records = append(c.records, types.PutRecordsRequestEntry{Data: bytes.Clone(e.Data), PartitionKey: aws.String(aws.ToString(e.PartitionKey))})
	}
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.latency > 0 {
		time.Sleep(f.latency)
	}
	if f.failCall != nil {
		if err := f.failCall(n); err != nil {
			return nil, err
		}
	}
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
	for i, e := range in.Records {
		code := ""
		if f.failEntry != nil {
			code = f.failEntry(n, i, e.Data)
		}
		if code != "" {
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("no")})
			*out.FailedRecordCount++
		} else {
			out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String("shardId-000000000000"), SequenceNumber: aws.String("1")})
		}
	}
	return out, nil
}

func (f *fakeKinesis) all() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// written returns the data of every entry that succeeded, in order.
func (f *fakeKinesis) written(t *testing.T) []string {
	t.Helper()
	var out []string
	for n, c := range f.all() {
		if f.failCall != nil && f.failCall(n) != nil {
			continue
		}
		for i, e := range c.records {
			if f.failEntry == nil || f.failEntry(n, i, e.Data) == "" {
				out = append(out, string(e.Data))
			}
		}
	}
	return out
}

var counter = MustParse(`{"n":{{random.number(1000000)}},"u":"{{random.uuid}}"}`)

func TestProduceCountAndBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := &fakeKinesis{latency: 10 * time.Millisecond}
		var progress []Stats
		st, err := Produce(t.Context(), Config{
			Client: fk, Stream: "s", Record: counter, Count: 1234, Rand: seeded(5),
			Now: func() time.Time { return testNow }, Progress: func(s Stats) { progress = append(progress, s) },
		})
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for _, c := range fk.all() {
			sizes = append(sizes, len(c.records))
		}
		if fmt.Sprint(sizes) != "[500 500 234]" {
			t.Errorf("request sizes %v, want [500 500 234]", sizes)
		}
		if st.Sent != 1234 || st.Failed != 0 || st.Retries != 0 || st.Errors != 0 || st.Requests != 3 {
			t.Errorf("stats %+v", st)
		}
		if len(progress) != 3 || progress[0].Sent != 500 || progress[2].Sent != 1234 {
			t.Errorf("progress %+v", progress)
		}
		// The records are the template's, in order, for the seed: record
		// then partition key from the same rand.
		r := seeded(5)
		pk := MustParse(DefaultPartitionKey)
		var i int
		for _, c := range fk.all() {
			for _, e := range c.records {
				want := counter.Execute(nil, r, testNow)
				wantKey := pk.Execute(nil, r, testNow)
				if string(e.Data) != string(want) || aws.ToString(e.PartitionKey) != string(wantKey) {
					t.Fatalf("record %d: %s/%s, want %s/%s", i, e.Data, aws.ToString(e.PartitionKey), want, wantKey)
				}
				i++
			}
		}
	})
}

func TestProduceBatchSizeAndBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := &fakeKinesis{}
		_, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: counter, Count: 25, BatchSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for _, c := range fk.all() {
			sizes = append(sizes, len(c.records))
		}
		if fmt.Sprint(sizes) != "[10 10 5]" {
			t.Errorf("BatchSize 10: request sizes %v", sizes)
		}

		// 900 KB records: five fit in 5 MiB, a sixth does not.
		big := MustParse(strings.Repeat("x", 900_000) + "{{random.number}}")
		fk = &fakeKinesis{}
		st, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: big, Count: 13})
		if err != nil {
			t.Fatal(err)
		}
		sizes = nil
		for _, c := range fk.all() {
			total := 0
			for _, e := range c.records {
				total += len(e.Data) + len(aws.ToString(e.PartitionKey))
			}
			if total > MaxBatchBytes {
				t.Errorf("a request of %d bytes", total)
			}
			sizes = append(sizes, len(c.records))
		}
		if fmt.Sprint(sizes) != "[5 5 3]" || st.Sent != 13 {
			t.Errorf("900 KB records: request sizes %v, sent %d; want [5 5 3], 13", sizes, st.Sent)
		}
	})
}

func TestProduceRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := &fakeKinesis{latency: 5 * time.Millisecond}
		start := time.Now()
		st, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: counter, Rate: 200, Duration: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		// 200/s for 10 s, plus the bucket's initial burst of 200×100ms.
		if st.Sent < 1990 || st.Sent > 2020 {
			t.Errorf("sent %d records in 10s at 200/s", st.Sent)
		}
		if el := time.Since(start); el < 10*time.Second || el > 10*time.Second+100*time.Millisecond {
			t.Errorf("Produce took %v for a 10s duration", el)
		}
		// No one-second window holds much more than the rate.
		calls := fk.all()
		for i := range calls {
			n := 0
			for _, c := range calls[i:] {
				if c.at.Sub(calls[i].at) >= time.Second {
					break
				}
				n += len(c.records)
			}
			if n > 200+20 {
				t.Fatalf("%d records in the second from %v", n, calls[i].at.Sub(start))
			}
		}
		// Requests carry about 100 ms of the rate, not one record each.
		if len(calls) > 110 {
			t.Errorf("%d requests for %d records", len(calls), st.Sent)
		}
	})
}

func TestProduceSlowRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := &fakeKinesis{}
		start := time.Now()
		st, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: counter, Rate: 0.5, Count: 3})
		if err != nil {
			t.Fatal(err)
		}
		// The first record at once, then one every 2 s.
		if st.Sent != 3 || time.Since(start) != 4*time.Second {
			t.Errorf("sent %d in %v, want 3 in 4s", st.Sent, time.Since(start))
		}
	})
}

func TestProduceDurationWithoutRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := &fakeKinesis{latency: 100 * time.Millisecond}
		st, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: counter, Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if st.Requests != 10 || st.Sent != 5000 {
			t.Errorf("1s of 100ms requests: %d requests, %d records", st.Requests, st.Sent)
		}
	})
}

func TestProduceRetriesFailedEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The first request fails every third entry with a throttle and
		// one with InternalFailure; later requests succeed.
		fk := &fakeKinesis{failEntry: func(n, i int, _ []byte) string {
			switch {
			case n == 0 && i == 1:
				return "InternalFailure"
			case n == 0 && i%3 == 0:
				return "ProvisionedThroughputExceededException"
			}
			return ""
		}}
		st, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: counter, Count: 30, BatchSize: 30})
		if err != nil {
			t.Fatal(err)
		}
		calls := fk.all()
		if len(calls) != 2 {
			t.Fatalf("%d requests, want 2", len(calls))
		}
		// Only the 11 failed entries were sent again.
		var failed []string
		for i, e := range calls[0].records {
			if i == 1 || i%3 == 0 {
				failed = append(failed, string(e.Data))
			}
		}
		var again []string
		for _, e := range calls[1].records {
			again = append(again, string(e.Data))
		}
		if fmt.Sprint(again) != fmt.Sprint(failed) {
			t.Errorf("retried %d entries %v, want the %d failed ones", len(again), again, len(failed))
		}
		if st.Sent != 30 || st.Retries != 11 || st.Errors != 11 || st.Failed != 0 || st.LastErr == nil {
			t.Errorf("stats %+v", st)
		}
		if got := fk.written(t); len(got) != 30 || len(uniq(got)) != 30 {
			t.Errorf("%d records written, %d distinct; want 30", len(got), len(uniq(got)))
		}
	})
}

func uniq(ss []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range ss {
		m[s] = true
	}
	return m
}

func TestProduceGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Records whose number is odd always fail; a KMS error is never
		// retried.
		fk := &fakeKinesis{failEntry: func(n, i int, data []byte) string {
			if i == 0 && n == 0 {
				return "KMSAccessDeniedException"
			}
			if bytes.Contains(data, []byte(`"odd"`)) {
				return "ProvisionedThroughputExceededException"
			}
			return ""
		}}
		rec := MustParse(`{"k":"{{random.arrayElement(["odd","even"])}}","u":"{{random.uuid}}"}`)
		st, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: rec, Count: 200, MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		odd := 0
		for _, e := range fk.all()[0].records {
			if bytes.Contains(e.Data, []byte(`"odd"`)) {
				odd++
			}
		}
		firstOdd := bytes.Contains(fk.all()[0].records[0].Data, []byte(`"odd"`))
		wantFailed := int64(odd)
		if !firstOdd {
			wantFailed++ // the KMS failure
		}
		if st.Failed != wantFailed || st.Sent != 200-wantFailed || st.Sent+st.Failed != 200 {
			t.Errorf("stats %+v; want %d failed", st, wantFailed)
		}
		// Odd records were sent 3 times each, 2 retries, except the first
		// record if odd: its KMS failure was not retried.
		retried := int64(odd)
		if firstOdd {
			retried--
		}
		if st.Retries != 2*retried || len(fk.all()) != 3 {
			t.Errorf("retries %d, requests %d; want %d and 3", st.Retries, len(fk.all()), 2*retried)
		}
	})
}

func apiErr(code string, status int) error {
	return &withStatus{GenericAPIError: smithy.GenericAPIError{Code: code, Message: "m"}, status: status}
}

type withStatus struct {
	smithy.GenericAPIError
	status int
}

func (e *withStatus) HTTPStatusCode() int { return e.status }

func TestProduceRequestErrors(t *testing.T) {
	t.Run("retryable", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fk := &fakeKinesis{failCall: func(n int) error {
				switch n {
				case 0:
					return apiErr("ProvisionedThroughputExceededException", 400)
				case 1:
					return apiErr("InternalFailure", 500)
				}
				return nil
			}}
			st, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: counter, Count: 100})
			if err != nil {
				t.Fatal(err)
			}
			if st.Sent != 100 || st.Errors != 2 || st.Retries != 200 || st.Requests != 3 || len(uniq(fk.written(t))) != 100 {
				t.Errorf("stats %+v", st)
			}
		})
	})
	t.Run("fatal", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fk := &fakeKinesis{failCall: func(int) error { return apiErr("ResourceNotFoundException", 400) }}
			st, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: counter, Count: 100})
			if err == nil || !strings.Contains(err.Error(), `PutRecords to stream "s"`) || !strings.Contains(err.Error(), "ResourceNotFoundException") {
				t.Fatalf("err = %v", err)
			}
			if st.Requests != 1 || st.Failed != 100 {
				t.Errorf("stats %+v", st)
			}
		})
	})
	t.Run("never gets through", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fk := &fakeKinesis{failCall: func(int) error { return apiErr("ServiceUnavailable", 503) }}
			st, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: counter, MaxAttempts: 4})
			if err == nil || !strings.Contains(err.Error(), "failed 4 times in a row") {
				t.Fatalf("err = %v", err)
			}
			if st.Requests != 4 {
				t.Errorf("stats %+v", st)
			}
		})
	})
}

func TestProduceStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := &fakeKinesis{block: make(chan struct{}), failEntry: func(n, i int, _ []byte) string {
			if i < 3 {
				return "ProvisionedThroughputExceededException"
			}
			return ""
		}}
		stop := make(chan struct{})
		type result struct {
			st  Stats
			err error
		}
		done := make(chan result)
		go func() {
			st, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: counter, BatchSize: 100, Stop: stop})
			done <- result{st, err}
		}()
		synctest.Wait() // the first request is in flight
		close(stop)
		fk.block <- struct{}{} // it completes
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		// The request in flight finished; its 3 failed entries were not
		// retried but given up, and nothing else was sent.
		if len(fk.all()) != 1 || res.st.Sent != 97 || res.st.Failed != 3 {
			t.Errorf("%d requests, stats %+v", len(fk.all()), res.st)
		}
	})
}

func TestProduceContextCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := &fakeKinesis{block: make(chan struct{})}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() {
			_, err := Produce(ctx, Config{Client: fk, Stream: "s", Record: counter})
			done <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestProduceRequestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The first call hangs past the timeout; the retry succeeds.
		fk := &fakeKinesis{}
		hang := &hangOnce{fakeKinesis: fk}
		st, err := Produce(t.Context(), Config{Client: hang, Stream: "s", Record: counter, Count: 10, RequestTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if st.Sent != 10 || st.Errors != 1 || st.Requests != 2 {
			t.Errorf("stats %+v", st)
		}
	})
}

type hangOnce struct {
	*fakeKinesis
	hung bool
}

func (h *hangOnce) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, o ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if !h.hung {
		h.hung = true
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.fakeKinesis.PutRecords(ctx, in, o...)
}

func TestProduceBadRecords(t *testing.T) {
	for _, c := range []struct {
		name    string
		rec, pk string
		want    string
	}{
		{"record too large", strings.Repeat("x", MaxRecordBytes), "k", "Kinesis accepts at most 1048576 (1 MiB) per record"},
		{"empty key", "{}", "", "the partition key template rendered an empty key"},
		{"long key", "{}", strings.Repeat("é", 257), "the partition key has 257 characters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fk := &fakeKinesis{}
			_, err := Produce(t.Context(), Config{Client: fk, Stream: "s", Record: MustParse(c.rec), PartitionKey: MustParse(c.pk), Count: 5})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "record 1") {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if len(fk.all()) != 0 {
				t.Errorf("%d requests were sent", len(fk.all()))
			}
		})
	}
}

func TestProduceConfigErrors(t *testing.T) {
	_, err := Produce(t.Context(), Config{Rate: -1, Count: -1, Duration: -1, BatchSize: 501})
	for _, w := range []string{"datagen: invalid config", "missing Client", "missing Stream", "missing Record", "invalid Rate -1", "invalid Count -1", "invalid Duration -1ns", "invalid BatchSize 501: must be between 1 and 500"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v, want %q", err, w)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n, ceiling := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		for range 100 {
			if d := backoff(n); d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want <= %v", n, d, ceiling)
			}
		}
	}
	for range 100 {
		if d := backoff(30); d > retryMax {
			t.Fatalf("backoff(30) = %v", d)
		}
	}
}
