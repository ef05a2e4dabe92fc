package kdsfake_test

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shardflow/shardflow/internal/testenv"
	"github.com/shardflow/shardflow/kds/kdsfake"
)

// The conformance suite: one table of Kinesis API behaviour, run against
// kdsfake and against the emulators the test script starts (kinesis-mock and
// kinesalite, see package internal/testenv), as TestConformance/<case>/<target>.
//
// A case declares, per target, what that target lacks or gets wrong, and
// such a target is skipped with the reason. A key "target" skips the whole
// case; "target/check" skips one check of it (a t.Run inside the case, see
// confTarget.check). kdsfake is never skipped. Where the servers answer the
// same bad request with different error types, the case asserts each one's
// (confTarget.code).
//
// Every case and target runs concurrently (t.Run from goroutines rather than
// t.Parallel, which -parallel would cap at GOMAXPROCS): most of the time is
// spent waiting for streams to become ACTIVE. Data stays small, since
// kinesis-mock writes at about 1.4k records/s.

// Target names.
const (
	confKdsfake     = "kdsfake"
	confKinesisMock = testenv.KinesisMock
	confKinesalite  = testenv.Kinesalite
)

// confDelay is kdsfake's CREATING/UPDATING/DELETING time in the suite, as
// scripts/emulators.sh gives the emulators by default, so that every target
// goes through the same states.
const confDelay = 100 * time.Millisecond

// confTarget is one server under test, as a case sees it.
type confTarget struct {
	name string
	kc   *kinesis.Client
	efo  *kinesis.Client   // for SubscribeToShard: kdsfake's TLS (HTTP/2) endpoint
	skip map[string]string // the running case's skips

	mu   sync.Mutex
	seen map[string]bool // the check keys of the case run so far
}

// check runs f as the subtest name unless the case skips it on this target:
// the key is "target/name", with the names of the enclosing subtests below
// the target's, e.g. "kinesis-mock/DeleteStream/DeletingAtOnce".
func (tg *confTarget) check(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	_, path, _ := strings.Cut(t.Name()+"/"+name, "/"+tg.name+"/")
	key := tg.name + "/" + path
	tg.mu.Lock()
	tg.seen[key] = true
	tg.mu.Unlock()
	t.Run(name, func(t *testing.T) {
		if why, ok := tg.skip[key]; ok {
			t.Skip(why)
		}
		f(t)
	})
}

// code returns the error type this target answers with: per[tg.name] if
// set, else def.
func (tg *confTarget) code(def string, per map[string]string) string {
	if c, ok := per[tg.name]; ok {
		return c
	}
	return def
}

type confCase struct {
	name string
	// skip maps "target" or "target/check" to why it is skipped there.
	skip map[string]string
	run  func(t *testing.T, tg *confTarget)
}

// Skip reasons shared by several cases.
const (
	whyKinesaliteNoEFO = "kinesalite has no enhanced fan-out: RegisterStreamConsumer and the other consumer calls are UnknownOperationException"
)

var confCases = []confCase{
	{name: "StreamLifecycle", skip: map[string]string{
		confKinesalite + "/StreamModeDetails":            "kinesalite omits StreamModeDetails from DescribeStreamSummary",
		confKinesisMock + "/DeleteStream/DeletingAtOnce": "kinesis-mock changes the status in the background: a stream can still be ACTIVE just after DeleteStream",
	}, run: confStreamLifecycle},
	{name: "ListShardsPagination", skip: map[string]string{
		confKinesalite + "/MaxResults": "kinesalite ignores MaxResults: every shard in one page, no NextToken",
		confKinesalite + "/StreamARN":  "kinesalite's ListShards requires StreamName (no StreamARN)",
	}, run: confListShardsPagination},
	{name: "ListShardsShardFilter", skip: map[string]string{
		confKinesalite:                       "kinesalite ignores ShardFilter (lists every shard)",
		confKinesisMock + "/AT_TRIM_HORIZON": "kinesis-mock's AT_TRIM_HORIZON lists every shard, not those open at the trim horizon",
	}, run: confShardFilter},
	{name: "PutRouting", run: confPutRouting},
	{name: "SequenceNumbers", run: confSequenceNumbers},
	{name: "PutValidation", skip: map[string]string{
		confKinesisMock + "/501Records": "kinesis-mock has no 500-record limit: PutRecords of 501 records succeeds",
	}, run: confPutValidation},
	{name: "ShardIteratorTypes", run: confIteratorTypes},
	{name: "GetRecordsPaging", skip: map[string]string{
		confKinesisMock + "/BadIterator": "kinesis-mock answers a malformed ShardIterator with HTTP 500 UnknownError",
	}, run: confGetRecordsPaging},
	{name: "MillisBehindLatest", skip: map[string]string{
		confKinesalite: "kinesalite always reports MillisBehindLatest 0",
	}, run: confMillisBehind},
	{name: "SplitMergeLineage", skip: map[string]string{
		confKinesalite + "/SplitClosedShard": "kinesalite splits a closed shard again (mhart/kinesalite issue 109)",
	}, run: confSplitMerge},
	{name: "ClosedShardEnd", skip: map[string]string{
		confKinesalite + "/ChildShards": "kinesalite returns no ChildShards at a closed shard's end",
	}, run: confClosedShardEnd},
	{name: "UpdateShardCount", skip: map[string]string{
		confKinesalite: "kinesalite has no UpdateShardCount (UnknownOperationException)",
	}, run: confUpdateShardCount},
	{name: "Retention", skip: map[string]string{
		confKinesalite + "/Max8760": "kinesalite caps retention at 168 hours (the limit before 2020): 8760 is a ValidationException",
	}, run: confRetention},
	{name: "StreamConsumers", skip: map[string]string{
		confKinesalite: whyKinesaliteNoEFO,
		confKinesisMock + "/DeleteStreamWithConsumer": "kinesis-mock answers DeleteStream of a stream with consumers with ResourceInUseException but deletes the stream all the same",
	}, run: confConsumers},
	{name: "SubscribeToShard", skip: map[string]string{
		confKinesalite:  whyKinesaliteNoEFO,
		confKinesisMock: "kinesis-mock never sends the initial-response event: aws-sdk-go-v2 fails with \"expected initial-response, got SubscribeToShardEvent\" (and it never ends a closed shard's subscription with ChildShards)",
	}, run: confSubscribe},
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, c := range confCases {
		for k := range c.skip {
			if k == confKdsfake || strings.HasPrefix(k, confKdsfake+"/") {
				t.Fatalf("case %s skips %q: no case may skip kdsfake", c.name, k)
			}
		}
	}

	srv := kdsfake.Start(t, kdsfake.Config{StreamDelay: confDelay, ConsumerDelay: confDelay})
	targets := map[string]*confTarget{
		confKdsfake: {
			name: confKdsfake,
			kc:   testenv.KinesisClient(t, srv.URL()),
			efo: kinesis.New(kinesis.Options{
				Region:       testenv.Region,
				BaseEndpoint: aws.String(srv.TLSURL()),
				Credentials:  credentials.NewStaticCredentialsProvider(testenv.AccessKeyID, testenv.SecretKey, ""),
				HTTPClient:   srv.Client(), // trusts the certificate; carries the awshttpfix workaround
			}),
		},
	}
	for name, env := range map[string]string{confKinesisMock: testenv.EnvKinesisMock, confKinesalite: testenv.EnvKinesalite} {
		if ep := strings.TrimSpace(os.Getenv(env)); ep != "" {
			targets[name] = &confTarget{name: name, kc: testenv.KinesisClient(t, ep)}
		}
	}

	var wg sync.WaitGroup
	for _, c := range confCases {
		wg.Go(func() {
			t.Run(c.name, func(t *testing.T) {
				var wg sync.WaitGroup
				for _, name := range []string{confKdsfake, confKinesisMock, confKinesalite} {
					wg.Go(func() {
						t.Run(name, func(t *testing.T) {
							if why, ok := c.skip[name]; ok {
								t.Skip(why)
							}
							tg := targets[name]
							if tg == nil {
								// Fails with CI=true, else skips.
								testenv.KinesisEmulators(t)
								t.Skipf("%s is not running (scripts/emulators.sh starts it)", name)
							}
							tc := &confTarget{name: tg.name, kc: tg.kc, efo: tg.efo, skip: c.skip, seen: map[string]bool{}}
							c.run(t, tc)
							// A skip of a check that does not exist is a typo.
							for k := range c.skip {
								if strings.HasPrefix(k, name+"/") && !tc.seen[k] {
									t.Errorf("case %s skips %q, which is no check of the case", c.name, k)
								}
							}
						})
					})
				}
				wg.Wait()
			})
		})
	}
	wg.Wait()
}

// ---- helpers ----

var confNameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// confStream creates a stream of n shards named after the test, waits until
// it is ACTIVE and deletes it at the end of the test. kinesis-mock, like
// AWS, allows only 5 streams in CREATING at once and answers more with
// LimitExceededException: that is retried.
func confStream(t *testing.T, tg *confTarget, n int) (name, arn string) {
	t.Helper()
	ctx := context.Background()
	name = strings.TrimPrefix(confNameUnsafe.ReplaceAllString(t.Name(), "-"), "TestConformance-")
	name = fmt.Sprintf("%s-%d", name, time.Now().UnixNano()%1e9)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := tg.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(n))})
		if err == nil {
			break
		}
		if confCode(err) != "LimitExceededException" || time.Now().After(deadline) {
			t.Fatalf("CreateStream %s: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond) // the server's CREATING delay; nothing to wait on
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = tg.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true)})
	})
	testenv.WaitActive(t, tg.kc, name)
	sum, err := tg.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return name, aws.ToString(sum.StreamDescriptionSummary.StreamARN)
}

// confCode returns the AWS error code of err, or "".
func confCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// confWantCode fails the test unless err has the error type code.
func confWantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := confCode(err); got != code {
		t.Fatalf("error = %v, want %s", err, code)
	}
}

// confShards lists every shard of a stream (all pages).
func confShards(t *testing.T, tg *confTarget, stream string, filter *types.ShardFilter) []types.Shard {
	t.Helper()
	var out []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream), ShardFilter: filter}
	for {
		res, err := tg.kc.ListShards(context.Background(), in)
		if err != nil {
			t.Fatalf("ListShards: %v", err)
		}
		out = append(out, res.Shards...)
		if res.NextToken == nil {
			return out
		}
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
}

// confIDs returns the shard ids of shards.
func confIDs(shards []types.Shard) []string {
	ids := make([]string, len(shards))
	for i, sh := range shards {
		ids[i] = aws.ToString(sh.ShardId)
	}
	return ids
}

// confShardID is the id of shard i.
func confShardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// confIDList is confShardID of each i.
func confIDList(is ...int) []string {
	ids := make([]string, len(is))
	for j, i := range is {
		ids[j] = confShardID(i)
	}
	return ids
}

func confBig(t *testing.T, s *string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(aws.ToString(s), 10)
	if !ok {
		t.Fatalf("not a decimal number: %q", aws.ToString(s))
	}
	return v
}

// confMid returns the middle of a shard's hash key range.
func confMid(t *testing.T, sh types.Shard) *big.Int {
	t.Helper()
	lo, hi := confBig(t, sh.HashKeyRange.StartingHashKey), confBig(t, sh.HashKeyRange.EndingHashKey)
	return new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
}

// confOwner returns the shard among open whose hash key range holds key.
func confOwner(t *testing.T, open []types.Shard, key *big.Int) string {
	t.Helper()
	for _, sh := range open {
		if confBig(t, sh.HashKeyRange.StartingHashKey).Cmp(key) <= 0 && key.Cmp(confBig(t, sh.HashKeyRange.EndingHashKey)) <= 0 {
			return aws.ToString(sh.ShardId)
		}
	}
	t.Fatalf("no shard holds hash key %s", key)
	return ""
}

// confMD5 is Kinesis's hash key of a partition key.
func confMD5(pk string) *big.Int {
	sum := md5.Sum([]byte(pk))
	return new(big.Int).SetBytes(sum[:])
}

// confPut writes records "<prefix>-<i>" for i in [0, n) with PutRecords to the
// hash key (or, if key is nil, by partition key) and returns their sequence
// numbers.
func confPut(t *testing.T, tg *confTarget, stream, prefix string, n int, key *big.Int) []string {
	t.Helper()
	in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
	for i := range n {
		e := types.PutRecordsRequestEntry{Data: fmt.Appendf(nil, "%s-%d", prefix, i), PartitionKey: aws.String(fmt.Sprintf("pk-%d", i))}
		if key != nil {
			e.ExplicitHashKey = aws.String(key.String())
		}
		in.Records = append(in.Records, e)
	}
	out, err := tg.kc.PutRecords(context.Background(), in)
	if err != nil {
		t.Fatalf("PutRecords: %v", err)
	}
	if f := aws.ToInt32(out.FailedRecordCount); f != 0 {
		t.Fatalf("PutRecords: %d records failed", f)
	}
	seqs := make([]string, n)
	for i, r := range out.Records {
		seqs[i] = aws.ToString(r.SequenceNumber)
	}
	return seqs
}

// confIterator returns a shard iterator.
func confIterator(t *testing.T, tg *confTarget, stream, shard string, in kinesis.GetShardIteratorInput) *string {
	t.Helper()
	in.StreamName, in.ShardId = aws.String(stream), aws.String(shard)
	out, err := tg.kc.GetShardIterator(context.Background(), &in)
	if err != nil {
		t.Fatalf("GetShardIterator %s: %v", in.ShardIteratorType, err)
	}
	return out.ShardIterator
}

// confData returns the data of records as strings.
func confData(recs []types.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Data)
	}
	return out
}

// confNames returns "<prefix>-<i>" for i in [from, to).
func confNames(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

// confReadToEnd reads a closed shard from TRIM_HORIZON until GetRecords
// returns no NextShardIterator, and returns the records and the last
// response.
func confReadToEnd(t *testing.T, tg *confTarget, stream, shard string) ([]types.Record, *kinesis.GetRecordsOutput) {
	t.Helper()
	it := confIterator(t, tg, stream, shard, kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	var recs []types.Record
	for range 50 {
		out, err := tg.kc.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: it})
		if err != nil {
			t.Fatalf("GetRecords: %v", err)
		}
		recs = append(recs, out.Records...)
		if out.NextShardIterator == nil {
			return recs, out
		}
		it = out.NextShardIterator
	}
	t.Fatalf("closed shard %s: still a NextShardIterator after 50 GetRecords (%d records)", shard, len(recs))
	return nil, nil
}

// confEventually polls f every 25 ms for up to 10 s until it returns "",
// and fails with its last answer otherwise.
func confEventually(t *testing.T, f func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", msg)
		}
		time.Sleep(25 * time.Millisecond) // polling a server's state change
	}
}

// confAfterSecond sleeps until 100 ms into the next wall-clock second:
// kinesis-mock compares ShardFilter timestamps in whole seconds.
func confAfterSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(1100 * time.Millisecond).Sub(now))
}

var (
	confSeqPattern = regexp.MustCompile(`^[0-9]{56}$`)
	confMaxHash    = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
)

// ---- cases ----

// confStreamLifecycle: CreateStream, DescribeStreamSummary, DescribeStream,
// ListStreams and DeleteStream, and their errors.
func confStreamLifecycle(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	name := fmt.Sprintf("conf-lifecycle-%s-%d", tg.name, time.Now().UnixNano()%1e9)
	if _, err := tg.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	t.Cleanup(func() {
		_, _ = tg.kc.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	})
	sum, err := tg.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeStreamSummary: %v", err)
	}
	if s := sum.StreamDescriptionSummary.StreamStatus; s != types.StreamStatusCreating && s != types.StreamStatusActive {
		t.Errorf("status after CreateStream = %s, want CREATING or ACTIVE", s)
	}
	testenv.WaitActive(t, tg.kc, name)

	var arn string
	t.Run("DescribeStreamSummary", func(t *testing.T) {
		sum, err := tg.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		d := sum.StreamDescriptionSummary
		arn = aws.ToString(d.StreamARN)
		if !regexp.MustCompile(`^arn:aws:kinesis:us-east-1:[0-9]{12}:stream/` + regexp.QuoteMeta(name) + `$`).MatchString(arn) {
			t.Errorf("StreamARN = %q", arn)
		}
		if aws.ToString(d.StreamName) != name || d.StreamStatus != types.StreamStatusActive || aws.ToInt32(d.OpenShardCount) != 3 ||
			aws.ToInt32(d.RetentionPeriodHours) != 24 || d.StreamCreationTimestamp == nil {
			t.Errorf("summary = name %s status %s open shards %d retention %d created %v",
				aws.ToString(d.StreamName), d.StreamStatus, aws.ToInt32(d.OpenShardCount), aws.ToInt32(d.RetentionPeriodHours), d.StreamCreationTimestamp)
		}
	})
	tg.check(t, "StreamModeDetails", func(t *testing.T) {
		sum, err := tg.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if m := sum.StreamDescriptionSummary.StreamModeDetails; m == nil || m.StreamMode != types.StreamModeProvisioned {
			t.Errorf("StreamModeDetails = %+v, want PROVISIONED", m)
		}
	})
	t.Run("DescribeStream", func(t *testing.T) {
		out, err := tg.kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		d := out.StreamDescription
		if got := confIDs(d.Shards); !slices.Equal(got, confIDList(0, 1, 2)) || aws.ToBool(d.HasMoreShards) {
			t.Fatalf("shards = %v (more %v)", got, aws.ToBool(d.HasMoreShards))
		}
		// The hash key ranges cover the key space without gaps.
		next := big.NewInt(0)
		for _, sh := range d.Shards {
			if confBig(t, sh.HashKeyRange.StartingHashKey).Cmp(next) != 0 {
				t.Fatalf("shard %s starts at %s, want %s", aws.ToString(sh.ShardId), aws.ToString(sh.HashKeyRange.StartingHashKey), next)
			}
			next = new(big.Int).Add(confBig(t, sh.HashKeyRange.EndingHashKey), big.NewInt(1))
			if sh.SequenceNumberRange.EndingSequenceNumber != nil {
				t.Errorf("open shard %s has an EndingSequenceNumber", aws.ToString(sh.ShardId))
			}
		}
		if next.Cmp(new(big.Int).Add(confMaxHash, big.NewInt(1))) != 0 {
			t.Errorf("hash key ranges end at %s, want 2^128-1", next)
		}
	})
	listed := func() bool {
		t.Helper()
		in := &kinesis.ListStreamsInput{Limit: aws.Int32(100)}
		for {
			out, err := tg.kc.ListStreams(ctx, in)
			if err != nil {
				t.Fatalf("ListStreams: %v", err)
			}
			if slices.Contains(out.StreamNames, name) {
				return true
			}
			if !aws.ToBool(out.HasMoreStreams) || len(out.StreamNames) == 0 {
				return false
			}
			in.ExclusiveStartStreamName = aws.String(out.StreamNames[len(out.StreamNames)-1])
		}
	}
	t.Run("ListStreams", func(t *testing.T) {
		if !listed() {
			t.Errorf("ListStreams does not list %s", name)
		}
	})
	t.Run("CreateExisting", func(t *testing.T) {
		_, err := tg.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)})
		confWantCode(t, err, "ResourceInUseException")
	})
	t.Run("DeleteStream", func(t *testing.T) {
		if _, err := tg.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		status := func() string {
			out, err := tg.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
			switch {
			case confCode(err) == "ResourceNotFoundException":
				return "gone"
			case err != nil:
				t.Fatalf("DescribeStreamSummary after DeleteStream: %v", err)
			}
			return string(out.StreamDescriptionSummary.StreamStatus)
		}
		// DELETING at once, for a while, then gone.
		tg.check(t, "DeletingAtOnce", func(t *testing.T) {
			if s := status(); s != "gone" && s != string(types.StreamStatusDeleting) {
				t.Errorf("status just after DeleteStream = %s, want DELETING or gone", s)
			}
		})
		confEventually(t, func() string {
			if s := status(); s != "gone" {
				return "stream still " + s
			}
			return ""
		})
		if listed() {
			t.Errorf("ListStreams still lists %s", name)
		}
	})
	t.Run("DeleteMissing", func(t *testing.T) {
		_, err := tg.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name + "-missing")})
		confWantCode(t, err, "ResourceNotFoundException")
	})
}

// confListShardsPagination: MaxResults and NextToken, ExclusiveStartShardId,
// StreamARN.
func confListShardsPagination(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	stream, arn := confStream(t, tg, 5)
	tg.check(t, "MaxResults", func(t *testing.T) {
		var pages [][]string
		in := &kinesis.ListShardsInput{StreamName: aws.String(stream), MaxResults: aws.Int32(2)}
		for len(pages) < 10 {
			out, err := tg.kc.ListShards(ctx, in)
			if err != nil {
				t.Fatalf("page %d: %v", len(pages)+1, err)
			}
			pages = append(pages, confIDs(out.Shards))
			if out.NextToken == nil {
				break
			}
			in = &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: aws.Int32(2)}
		}
		want := [][]string{confIDList(0, 1), confIDList(2, 3), confIDList(4)}
		if fmt.Sprint(pages) != fmt.Sprint(want) {
			t.Errorf("pages = %v, want %v", pages, want)
		}
	})
	t.Run("NextTokenWithStreamName", func(t *testing.T) {
		out, err := tg.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream), MaxResults: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		token := out.NextToken
		if token == nil {
			token = aws.String("bogus") // kinesalite gives none; the check is the same
		}
		_, err = tg.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream), NextToken: token})
		confWantCode(t, err, "InvalidArgumentException")
	})
	t.Run("ExclusiveStartShardId", func(t *testing.T) {
		out, err := tg.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream), ExclusiveStartShardId: aws.String(confShardID(2))})
		if err != nil {
			t.Fatal(err)
		}
		if got := confIDs(out.Shards); !slices.Equal(got, confIDList(3, 4)) {
			t.Errorf("shards after %s = %v", confShardID(2), got)
		}
	})
	tg.check(t, "StreamARN", func(t *testing.T) {
		out, err := tg.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamARN: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		if got := confIDs(out.Shards); !slices.Equal(got, confIDList(0, 1, 2, 3, 4)) {
			t.Errorf("shards = %v", got)
		}
	})
	t.Run("MissingStream", func(t *testing.T) {
		_, err := tg.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream + "-missing")})
		confWantCode(t, err, "ResourceNotFoundException")
	})
}

// confShardFilter: every ShardFilter type on a stream of two shards whose
// shard 0 was split into 2 and 3, at a time before the split (t0) and after
// it (t1).
func confShardFilter(t *testing.T, tg *confTarget) {
	stream, _ := confStream(t, tg, 2)
	t0 := time.Now()
	confAfterSecond()
	shards := confShards(t, tg, stream, nil)
	testenv.SplitShard(t, tg.kc, stream, confShardID(0), confMid(t, shards[0]).String())
	confAfterSecond()
	t1 := time.Now()
	for _, f := range []struct {
		name   string
		filter types.ShardFilter
		want   []string
	}{
		{"AT_LATEST", types.ShardFilter{Type: types.ShardFilterTypeAtLatest}, confIDList(1, 2, 3)},
		{"AT_TRIM_HORIZON", types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}, confIDList(0, 1)},
		{"FROM_TRIM_HORIZON", types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}, confIDList(0, 1, 2, 3)},
		{"AFTER_SHARD_ID", types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String(confShardID(0))}, confIDList(1, 2, 3)},
		{"AT_TIMESTAMP_before_split", types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: &t0}, confIDList(0, 1)},
		{"AT_TIMESTAMP_after_split", types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: &t1}, confIDList(1, 2, 3)},
		{"FROM_TIMESTAMP_before_split", types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: &t0}, confIDList(0, 1, 2, 3)},
		{"FROM_TIMESTAMP_after_split", types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: &t1}, confIDList(1, 2, 3)},
	} {
		tg.check(t, f.name, func(t *testing.T) {
			if got := confIDs(confShards(t, tg, stream, &f.filter)); !slices.Equal(got, f.want) {
				t.Errorf("%s: shards %v, want %v", f.name, got, f.want)
			}
		})
	}
	t.Run("AFTER_SHARD_ID_without_ShardId", func(t *testing.T) {
		_, err := tg.kc.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(stream), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId}})
		confWantCode(t, err, "InvalidArgumentException")
	})
}

// confPutRouting: ExplicitHashKey sends a record to the shard whose range
// holds it, for PutRecord and PutRecords; a partition key goes by its MD5.
func confPutRouting(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	stream, _ := confStream(t, tg, 4)
	shards := confShards(t, tg, stream, nil)
	t.Run("PutRecordExplicitHashKey", func(t *testing.T) {
		for _, sh := range shards {
			for _, key := range []*string{sh.HashKeyRange.StartingHashKey, sh.HashKeyRange.EndingHashKey} {
				out, err := tg.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), Data: []byte("x"),
					PartitionKey: aws.String("same-key"), ExplicitHashKey: key})
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.ShardId) != aws.ToString(sh.ShardId) {
					t.Errorf("hash key %s went to %s, want %s", aws.ToString(key), aws.ToString(out.ShardId), aws.ToString(sh.ShardId))
				}
			}
		}
	})
	t.Run("PutRecordsExplicitHashKey", func(t *testing.T) {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		var want []string
		for i := range 12 {
			sh := shards[(i*7)%len(shards)]
			in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: []byte("x"), PartitionKey: aws.String("same-key"),
				ExplicitHashKey: aws.String(confMid(t, sh).String())})
			want = append(want, aws.ToString(sh.ShardId))
		}
		out, err := tg.kc.PutRecords(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range out.Records {
			got = append(got, aws.ToString(r.ShardId))
		}
		if !slices.Equal(got, want) || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Errorf("shards = %v (failed %d), want %v", got, aws.ToInt32(out.FailedRecordCount), want)
		}
	})
	t.Run("PartitionKeyMD5", func(t *testing.T) {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		var want []string
		for i := range 20 {
			pk := fmt.Sprintf("partition-%d", i)
			in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: []byte("x"), PartitionKey: aws.String(pk)})
			want = append(want, confOwner(t, shards, confMD5(pk)))
		}
		out, err := tg.kc.PutRecords(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range out.Records {
			got = append(got, aws.ToString(r.ShardId))
		}
		if !slices.Equal(got, want) {
			t.Errorf("shards = %v, want %v", got, want)
		}
	})
	t.Run("BadExplicitHashKey", func(t *testing.T) {
		tooBig := new(big.Int).Add(confMaxHash, big.NewInt(1)).String()
		_, err := tg.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), Data: []byte("x"),
			PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(tooBig)})
		confWantCode(t, err, "InvalidArgumentException")
	})
}

// confSequenceNumbers: sequence numbers are 56-digit numbers that increase
// per shard, across PutRecord and PutRecords calls and within one
// PutRecords, and are at least the shard's StartingSequenceNumber.
func confSequenceNumbers(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	stream, _ := confStream(t, tg, 2)
	shards := confShards(t, tg, stream, nil)
	last := map[string]*big.Int{}
	for _, sh := range shards {
		last[aws.ToString(sh.ShardId)] = confBig(t, sh.SequenceNumberRange.StartingSequenceNumber)
	}
	next := func(shard string, seq *string) {
		t.Helper()
		if !confSeqPattern.MatchString(aws.ToString(seq)) {
			t.Errorf("sequence number %q is not 56 digits", aws.ToString(seq))
		}
		v := confBig(t, seq)
		if v.Cmp(last[shard]) <= 0 {
			t.Errorf("shard %s: sequence number %s after %s", shard, v, last[shard])
		}
		last[shard] = v
	}
	for round := range 3 {
		for i := range 4 {
			out, err := tg.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), Data: []byte("x"),
				PartitionKey: aws.String(fmt.Sprintf("r%d-%d", round, i))})
			if err != nil {
				t.Fatal(err)
			}
			next(aws.ToString(out.ShardId), out.SequenceNumber)
		}
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		for i := range 10 {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: []byte("y"), PartitionKey: aws.String(fmt.Sprintf("b%d-%d", round, i))})
		}
		out, err := tg.kc.PutRecords(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Records {
			next(aws.ToString(r.ShardId), r.SequenceNumber)
		}
	}
}

// confPutValidation: Kinesis's limits of 500 records per PutRecords, 1 MiB
// of data per record and 256 characters per partition key.
func confPutValidation(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	stream, _ := confStream(t, tg, 1)
	const mib = 1 << 20
	tg.check(t, "501Records", func(t *testing.T) {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		for range 501 {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: []byte("x"), PartitionKey: aws.String("k")})
		}
		_, err := tg.kc.PutRecords(ctx, in)
		confWantCode(t, err, "ValidationException")
	})
	t.Run("DataTooLarge", func(t *testing.T) {
		_, err := tg.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), Data: make([]byte, mib+1), PartitionKey: aws.String("k")})
		confWantCode(t, err, tg.code("ValidationException", map[string]string{confKinesisMock: "InvalidArgumentException"}))
	})
	t.Run("DataAtLimit", func(t *testing.T) {
		// 1 MiB of data and partition key together.
		_, err := tg.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), Data: make([]byte, mib-1), PartitionKey: aws.String("k")})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("PartitionKeyTooLong", func(t *testing.T) {
		_, err := tg.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), Data: []byte("x"), PartitionKey: aws.String(strings.Repeat("k", 257))})
		confWantCode(t, err, tg.code("ValidationException", map[string]string{confKinesisMock: "InvalidArgumentException"}))
	})
	t.Run("PartitionKeyAtLimit", func(t *testing.T) {
		_, err := tg.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), Data: []byte("x"), PartitionKey: aws.String(strings.Repeat("k", 256))})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("PutRecordsKeyTooLong", func(t *testing.T) {
		_, err := tg.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: []types.PutRecordsRequestEntry{
			{Data: []byte("x"), PartitionKey: aws.String("ok")},
			{Data: []byte("x"), PartitionKey: aws.String(strings.Repeat("k", 257))},
		}})
		confWantCode(t, err, tg.code("ValidationException", map[string]string{confKinesisMock: "InvalidArgumentException"}))
	})
	t.Run("MissingStream", func(t *testing.T) {
		_, err := tg.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream + "-missing"), Data: []byte("x"), PartitionKey: aws.String("k")})
		confWantCode(t, err, "ResourceNotFoundException")
	})
}

// confIteratorTypes: the five iterator types each start where they should;
// AT_TIMESTAMP in the future is an error.
func confIteratorTypes(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	stream, _ := confStream(t, tg, 1)
	shard := confShardID(0)
	seqs := confPut(t, tg, stream, "r", 3, nil)
	time.Sleep(100 * time.Millisecond) // r-3 arrives at least 100 ms after r-2, for AT_TIMESTAMP
	seqs = append(seqs, confPut(t, tg, stream, "s", 2, nil)...)
	// all: r-0 r-1 r-2 s-0 s-1
	all := append(confNames("r", 0, 3), confNames("s", 0, 2)...)

	first := func(it *string) []string {
		t.Helper()
		out, err := tg.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
		if err != nil {
			t.Fatalf("GetRecords: %v", err)
		}
		return confData(out.Records)
	}
	trim := confIterator(t, tg, stream, shard, kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	out, err := tg.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: trim})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("TRIM_HORIZON", func(t *testing.T) {
		if got := confData(out.Records); !slices.Equal(got, all) {
			t.Errorf("records %v, want %v", got, all)
		}
	})
	t.Run("AT_SEQUENCE_NUMBER", func(t *testing.T) {
		it := confIterator(t, tg, stream, shard, kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(seqs[2])})
		if got := first(it); !slices.Equal(got, all[2:]) {
			t.Errorf("records %v, want %v", got, all[2:])
		}
	})
	t.Run("AFTER_SEQUENCE_NUMBER", func(t *testing.T) {
		it := confIterator(t, tg, stream, shard, kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: aws.String(seqs[2])})
		if got := first(it); !slices.Equal(got, all[3:]) {
			t.Errorf("records %v, want %v", got, all[3:])
		}
	})
	t.Run("AT_TIMESTAMP", func(t *testing.T) {
		if len(out.Records) != len(all) {
			t.Skip("no TRIM_HORIZON read")
		}
		ts := out.Records[3].ApproximateArrivalTimestamp
		if ts == nil || !ts.After(*out.Records[2].ApproximateArrivalTimestamp) {
			t.Fatalf("arrival timestamps %v and %v do not increase", out.Records[2].ApproximateArrivalTimestamp, ts)
		}
		it := confIterator(t, tg, stream, shard, kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: ts})
		if got := first(it); !slices.Equal(got, all[3:]) {
			t.Errorf("records %v, want %v", got, all[3:])
		}
	})
	t.Run("AT_TIMESTAMP_future", func(t *testing.T) {
		_, err := tg.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard),
			ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(time.Now().Add(time.Hour))})
		confWantCode(t, err, "InvalidArgumentException")
	})
	t.Run("LATEST", func(t *testing.T) {
		it := confIterator(t, tg, stream, shard, kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeLatest})
		out, err := tg.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Records) != 0 {
			t.Fatalf("LATEST read %v before any new record", confData(out.Records))
		}
		confPut(t, tg, stream, "latest", 1, nil)
		if got := first(out.NextShardIterator); !slices.Equal(got, []string{"latest-0"}) {
			t.Errorf("records %v, want [latest-0]", got)
		}
	})
	t.Run("BogusSequenceNumber", func(t *testing.T) {
		_, err := tg.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard),
			ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(strings.Repeat("9", 56))})
		confWantCode(t, err, tg.code("InvalidArgumentException", map[string]string{confKinesisMock: "ResourceNotFoundException"}))
	})
	t.Run("MissingShard", func(t *testing.T) {
		_, err := tg.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(confShardID(7)),
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		confWantCode(t, err, "ResourceNotFoundException")
	})
}

// confGetRecordsPaging: Limit caps a page, NextShardIterator continues, and
// at the tip a page is empty, still has a NextShardIterator and is 0 ms
// behind.
func confGetRecordsPaging(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	stream, _ := confStream(t, tg, 1)
	confPut(t, tg, stream, "r", 10, nil)
	it := confIterator(t, tg, stream, confShardID(0), kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	var got []string
	var sizes []int
	for range 20 {
		out, err := tg.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(3)})
		if err != nil {
			t.Fatal(err)
		}
		if out.NextShardIterator == nil {
			t.Fatal("an open shard's GetRecords has no NextShardIterator")
		}
		it = out.NextShardIterator
		if len(out.Records) == 0 {
			if ms := aws.ToInt64(out.MillisBehindLatest); ms != 0 {
				t.Errorf("MillisBehindLatest at the tip = %d, want 0", ms)
			}
			break
		}
		sizes = append(sizes, len(out.Records))
		got = append(got, confData(out.Records)...)
	}
	if want := confNames("r", 0, 10); !slices.Equal(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}
	if !slices.Equal(sizes, []int{3, 3, 3, 1}) {
		t.Errorf("page sizes with Limit 3 = %v, want [3 3 3 1]", sizes)
	}
	t.Run("LimitTooLarge", func(t *testing.T) {
		_, err := tg.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(10001)})
		confWantCode(t, err, tg.code("ValidationException", map[string]string{confKinesisMock: "InvalidArgumentException"}))
	})
	tg.check(t, "BadIterator", func(t *testing.T) {
		_, err := tg.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("AAAAAAAAAAAA")})
		confWantCode(t, err, "InvalidArgumentException")
	})
}

// confMillisBehind: a reader behind the tip sees MillisBehindLatest > 0,
// one at the tip sees 0.
func confMillisBehind(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	stream, _ := confStream(t, tg, 1)
	confPut(t, tg, stream, "a", 1, nil)
	time.Sleep(300 * time.Millisecond)
	confPut(t, tg, stream, "b", 2, nil)
	time.Sleep(300 * time.Millisecond)
	it := confIterator(t, tg, stream, confShardID(0), kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	out, err := tg.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if ms := aws.ToInt64(out.MillisBehindLatest); ms <= 0 || len(out.Records) != 1 {
		t.Errorf("behind the tip: MillisBehindLatest %d with %d records, want > 0 with 1", ms, len(out.Records))
	}
	out, err = tg.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if ms := aws.ToInt64(out.MillisBehindLatest); ms != 0 || len(out.Records) != 2 {
		t.Errorf("read to the tip: MillisBehindLatest %d with %d records, want 0 with 2", ms, len(out.Records))
	}
}

// confSplitMerge: SplitShard and MergeShards close their shards and record
// the lineage in ParentShardId and AdjacentParentShardId; writes go to the
// children.
func confSplitMerge(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	stream, _ := confStream(t, tg, 2)
	parent := confShards(t, tg, stream, nil)[0]
	mid := confMid(t, parent)
	testenv.SplitShard(t, tg.kc, stream, confShardID(0), mid.String())
	_, err := tg.kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream),
		ShardToMerge: aws.String(confShardID(2)), AdjacentShardToMerge: aws.String(confShardID(3))})
	if err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	testenv.WaitActive(t, tg.kc, stream)

	shards := confShards(t, tg, stream, nil)
	if got := confIDs(shards); !slices.Equal(got, confIDList(0, 1, 2, 3, 4)) {
		t.Fatalf("shards = %v", got)
	}
	type lineage struct{ parent, adjacent, start, end string }
	midMinus1 := new(big.Int).Sub(mid, big.NewInt(1)).String()
	p0, p1 := aws.ToString(parent.HashKeyRange.StartingHashKey), aws.ToString(parent.HashKeyRange.EndingHashKey)
	want := []lineage{
		{"", "", p0, p1},
		{"", "", new(big.Int).Add(confBig(t, aws.String(p1)), big.NewInt(1)).String(), confMaxHash.String()},
		{confShardID(0), "", p0, midMinus1},
		{confShardID(0), "", mid.String(), p1},
		{confShardID(2), confShardID(3), p0, p1},
	}
	closed := []bool{true, false, true, true, false}
	for i, sh := range shards {
		got := lineage{aws.ToString(sh.ParentShardId), aws.ToString(sh.AdjacentParentShardId),
			aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey)}
		if got != want[i] {
			t.Errorf("%s: parent %q adjacent %q range [%s, %s], want %+v", aws.ToString(sh.ShardId), got.parent, got.adjacent, got.start, got.end, want[i])
		}
		if isClosed := sh.SequenceNumberRange.EndingSequenceNumber != nil; isClosed != closed[i] {
			t.Errorf("%s: closed = %v, want %v", aws.ToString(sh.ShardId), isClosed, closed[i])
		}
	}
	sum, err := tg.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount); n != 2 {
		t.Errorf("OpenShardCount = %d, want 2", n)
	}
	out, err := tg.kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), Data: []byte("x"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(p0)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ShardId) != confShardID(4) {
		t.Errorf("a write to hash key %s went to %s, want %s", p0, aws.ToString(out.ShardId), confShardID(4))
	}
	tg.check(t, "SplitClosedShard", func(t *testing.T) {
		// AWS: InvalidArgumentException "Shard ... has already been merged
		// or split, and thus is not eligible for merging or splitting"
		// (quoted in mhart/kinesalite issue 109).
		_, err := tg.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(confShardID(0)), NewStartingHashKey: aws.String(mid.String())})
		confWantCode(t, err, tg.code("InvalidArgumentException", map[string]string{confKinesisMock: "ResourceInUseException"}))
	})
	t.Run("MergeWithItself", func(t *testing.T) {
		_, err := tg.kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream),
			ShardToMerge: aws.String(confShardID(4)), AdjacentShardToMerge: aws.String(confShardID(4))})
		confWantCode(t, err, "InvalidArgumentException")
	})
}

// confClosedShardEnd: a split parent is read to its end: GetRecords ends
// with no NextShardIterator and, in the last response, the ChildShards.
func confClosedShardEnd(t *testing.T, tg *confTarget) {
	stream, _ := confStream(t, tg, 1)
	confPut(t, tg, stream, "before", 5, nil)
	parent := confShards(t, tg, stream, nil)[0]
	mid := confMid(t, parent)
	testenv.SplitShard(t, tg.kc, stream, confShardID(0), mid.String())
	confPut(t, tg, stream, "after", 3, nil)

	recs, last := confReadToEnd(t, tg, stream, confShardID(0))
	if got, want := confData(recs), confNames("before", 0, 5); !slices.Equal(got, want) {
		t.Errorf("parent records = %v, want %v", got, want)
	}
	tg.check(t, "ChildShards", func(t *testing.T) {
		var got []string
		for _, c := range last.ChildShards {
			got = append(got, fmt.Sprintf("%s<%s [%s, %s]", aws.ToString(c.ShardId), strings.Join(c.ParentShards, ","),
				aws.ToString(c.HashKeyRange.StartingHashKey), aws.ToString(c.HashKeyRange.EndingHashKey)))
		}
		want := []string{
			fmt.Sprintf("%s<%s [%s, %s]", confShardID(1), confShardID(0), aws.ToString(parent.HashKeyRange.StartingHashKey), new(big.Int).Sub(mid, big.NewInt(1))),
			fmt.Sprintf("%s<%s [%s, %s]", confShardID(2), confShardID(0), mid, aws.ToString(parent.HashKeyRange.EndingHashKey)),
		}
		if !slices.Equal(got, want) {
			t.Errorf("ChildShards = %v, want %v", got, want)
		}
	})
	t.Run("ChildrenHoldLaterWrites", func(t *testing.T) {
		var got []string
		for _, id := range confIDList(1, 2) {
			got = append(got, confData(testenv.ReadShard(t, tg.kc, stream, id))...)
		}
		slices.Sort(got)
		if want := confNames("after", 0, 3); !slices.Equal(got, want) {
			t.Errorf("children hold %v, want %v", got, want)
		}
	})
}

// confUpdateShardCount: uniform scaling from 2 to 4 shards.
func confUpdateShardCount(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	stream, _ := confStream(t, tg, 2)
	out, err := tg.kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(stream), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil {
		t.Fatalf("UpdateShardCount: %v", err)
	}
	if aws.ToInt32(out.CurrentShardCount) != 2 || aws.ToInt32(out.TargetShardCount) != 4 {
		t.Errorf("UpdateShardCount = current %d target %d, want 2 and 4", aws.ToInt32(out.CurrentShardCount), aws.ToInt32(out.TargetShardCount))
	}
	testenv.WaitActive(t, tg.kc, stream)
	sum, err := tg.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount); n != 4 {
		t.Errorf("OpenShardCount = %d, want 4", n)
	}
	all := confShards(t, tg, stream, nil)
	ids := map[string]bool{}
	for _, sh := range all {
		ids[aws.ToString(sh.ShardId)] = true
	}
	var open []types.Shard
	for _, sh := range all {
		if sh.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, sh)
		}
	}
	if len(open) != 4 {
		t.Fatalf("open shards = %v, want 4", confIDs(open))
	}
	// The open shards split the key space into four ranges, each with
	// a parent among the other shards.
	next := big.NewInt(0)
	quarter := new(big.Int).Rsh(new(big.Int).Add(confMaxHash, big.NewInt(1)), 2)
	for i, sh := range open {
		lo, hi := confBig(t, sh.HashKeyRange.StartingHashKey), confBig(t, sh.HashKeyRange.EndingHashKey)
		if lo.Cmp(next) != 0 {
			t.Errorf("open shard %s starts at %s, want %s", aws.ToString(sh.ShardId), lo, next)
		}
		size := new(big.Int).Sub(hi, lo)
		if d := new(big.Int).Sub(size, quarter); d.CmpAbs(big.NewInt(4)) > 0 {
			t.Errorf("open shard %d [%s, %s] is not a quarter of the key space", i, lo, hi)
		}
		next = new(big.Int).Add(hi, big.NewInt(1))
		if p := aws.ToString(sh.ParentShardId); !ids[p] {
			t.Errorf("open shard %s has parent %q, not a shard of the stream", aws.ToString(sh.ShardId), p)
		}
	}
	if next.Cmp(new(big.Int).Add(confMaxHash, big.NewInt(1))) != 0 {
		t.Errorf("open shards end at %s, want 2^128-1", next)
	}
	t.Run("BeyondDouble", func(t *testing.T) {
		// LimitExceededException is a throttling error to the SDK: no retries.
		_, err := tg.kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(stream), TargetShardCount: aws.Int32(9), ScalingType: types.ScalingTypeUniformScaling},
			func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
		confWantCode(t, err, tg.code("LimitExceededException", map[string]string{confKinesisMock: "InvalidArgumentException"}))
	})
}

// confRetention: IncreaseStreamRetentionPeriod and
// DecreaseStreamRetentionPeriod, and their bounds.
func confRetention(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	stream, _ := confStream(t, tg, 1)
	retention := func() int32 {
		t.Helper()
		out, err := tg.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToInt32(out.StreamDescriptionSummary.RetentionPeriodHours)
	}
	increase := func(h int32) error {
		_, err := tg.kc.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String(stream), RetentionPeriodHours: aws.Int32(h)})
		return err
	}
	decrease := func(h int32) error {
		_, err := tg.kc.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String(stream), RetentionPeriodHours: aws.Int32(h)})
		return err
	}
	settle := func() {
		t.Helper()
		testenv.WaitActive(t, tg.kc, stream)
	}
	if err := increase(48); err != nil {
		t.Fatalf("increase to 48: %v", err)
	}
	settle()
	if h := retention(); h != 48 {
		t.Errorf("retention after increase = %d, want 48", h)
	}
	t.Run("IncreaseToShorter", func(t *testing.T) {
		confWantCode(t, increase(36), "InvalidArgumentException")
	})
	t.Run("DecreaseToLonger", func(t *testing.T) {
		confWantCode(t, decrease(72), "InvalidArgumentException")
	})
	if err := decrease(24); err != nil {
		t.Fatalf("decrease to 24: %v", err)
	}
	settle()
	if h := retention(); h != 24 {
		t.Errorf("retention after decrease = %d, want 24", h)
	}
	t.Run("DecreaseBelow24", func(t *testing.T) {
		confWantCode(t, decrease(12), "InvalidArgumentException")
	})
	tg.check(t, "Max8760", func(t *testing.T) {
		if err := increase(8760); err != nil {
			t.Fatalf("increase to 8760: %v", err)
		}
		settle()
		if h := retention(); h != 8760 {
			t.Errorf("retention = %d, want 8760", h)
		}
		confWantCode(t, increase(8761), "InvalidArgumentException")
	})
}

// confConsumers: RegisterStreamConsumer (CREATING, then ACTIVE),
// DescribeStreamConsumer by ARN and by name, ListStreamConsumers,
// DeregisterStreamConsumer (DELETING, then gone).
func confConsumers(t *testing.T, tg *confTarget) {
	ctx := context.Background()
	stream, streamARN := confStream(t, tg, 1)
	reg, err := tg.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String("app")})
	if err != nil {
		t.Fatalf("RegisterStreamConsumer: %v", err)
	}
	arn := aws.ToString(reg.Consumer.ConsumerARN)
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(streamARN) + `/consumer/app:[0-9]+$`).MatchString(arn) {
		t.Errorf("ConsumerARN = %q, want %s/consumer/app:<timestamp>", arn, streamARN)
	}
	if reg.Consumer.ConsumerStatus != types.ConsumerStatusCreating || aws.ToString(reg.Consumer.ConsumerName) != "app" || reg.Consumer.ConsumerCreationTimestamp == nil {
		t.Errorf("registered consumer = %s %s created %v, want app CREATING", aws.ToString(reg.Consumer.ConsumerName), reg.Consumer.ConsumerStatus, reg.Consumer.ConsumerCreationTimestamp)
	}
	confEventually(t, func() string {
		out, err := tg.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
		if err != nil {
			t.Fatalf("DescribeStreamConsumer: %v", err)
		}
		switch s := out.ConsumerDescription.ConsumerStatus; s {
		case types.ConsumerStatusActive:
			return ""
		case types.ConsumerStatusCreating:
			return "consumer still CREATING"
		default:
			t.Fatalf("consumer status %s, want CREATING then ACTIVE", s)
		}
		return ""
	})
	t.Run("DescribeByName", func(t *testing.T) {
		out, err := tg.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String("app")})
		if err != nil {
			t.Fatal(err)
		}
		d := out.ConsumerDescription
		if aws.ToString(d.ConsumerARN) != arn || aws.ToString(d.StreamARN) != streamARN || d.ConsumerStatus != types.ConsumerStatusActive {
			t.Errorf("description = %s %s %s", aws.ToString(d.ConsumerARN), aws.ToString(d.StreamARN), d.ConsumerStatus)
		}
	})
	t.Run("ListStreamConsumers", func(t *testing.T) {
		out, err := tg.kc.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(streamARN)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Consumers) != 1 || aws.ToString(out.Consumers[0].ConsumerARN) != arn || out.Consumers[0].ConsumerStatus != types.ConsumerStatusActive {
			t.Errorf("consumers = %+v", out.Consumers)
		}
	})
	t.Run("RegisterTwice", func(t *testing.T) {
		_, err := tg.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String("app")})
		confWantCode(t, err, "ResourceInUseException")
	})
	tg.check(t, "DeleteStreamWithConsumer", func(t *testing.T) {
		_, err := tg.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
		confWantCode(t, err, "ResourceInUseException")
	})
	if _, err := tg.kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(arn)}); err != nil {
		t.Fatalf("DeregisterStreamConsumer: %v", err)
	}
	confEventually(t, func() string {
		out, err := tg.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
		switch {
		case confCode(err) == "ResourceNotFoundException":
			return ""
		case err != nil:
			t.Fatalf("DescribeStreamConsumer: %v", err)
		case out.ConsumerDescription.ConsumerStatus != types.ConsumerStatusDeleting:
			t.Fatalf("status after deregistering = %s, want DELETING or gone", out.ConsumerDescription.ConsumerStatus)
		}
		return "consumer still DELETING"
	})
	out, err := tg.kc.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(streamARN)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Consumers) != 0 {
		t.Errorf("consumers after deregistering = %+v", out.Consumers)
	}
	t.Run("DescribeMissing", func(t *testing.T) {
		_, err := tg.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String("nobody")})
		confWantCode(t, err, "ResourceNotFoundException")
	})
}

// confSubscribe: SubscribeToShard with aws-sdk-go-v2 over TLS and HTTP/2:
// the backlog from TRIM_HORIZON, records written while subscribed, each
// event's ContinuationSequenceNumber, and the end of the shard after a
// split (ChildShards, no continuation, the stream ends).
func confSubscribe(t *testing.T, tg *confTarget) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, streamARN := confStream(t, tg, 1)
	reg, err := tg.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String("efo")})
	if err != nil {
		t.Fatal(err)
	}
	arn := reg.Consumer.ConsumerARN
	confEventually(t, func() string {
		out, err := tg.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: arn})
		if err != nil {
			t.Fatal(err)
		}
		if out.ConsumerDescription.ConsumerStatus != types.ConsumerStatusActive {
			return "consumer not ACTIVE"
		}
		return ""
	})
	backlog := confPut(t, tg, stream, "backlog", 5, nil)
	sub, err := tg.efo.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: arn, ShardId: aws.String(confShardID(0)),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}})
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	es := sub.GetStream()
	defer es.Close()

	want := append(confNames("backlog", 0, 5), confNames("live", 0, 5)...)
	seqs := backlog
	var got, gotSeqs []string
	var lastEvent types.SubscribeToShardEvent
	split := false
	for ev := range es.Events() {
		e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !ok {
			t.Fatalf("unexpected event %T", ev)
		}
		lastEvent = e.Value
		got = append(got, confData(e.Value.Records)...)
		for _, r := range e.Value.Records {
			gotSeqs = append(gotSeqs, aws.ToString(r.SequenceNumber))
		}
		if len(e.Value.ChildShards) > 0 {
			continue // the shard's end: the stream ends next
		}
		if e.Value.ContinuationSequenceNumber == nil {
			t.Fatalf("event before the shard's end has no ContinuationSequenceNumber")
		}
		if n := len(e.Value.Records); n > 0 && aws.ToString(e.Value.ContinuationSequenceNumber) != aws.ToString(e.Value.Records[n-1].SequenceNumber) {
			t.Errorf("ContinuationSequenceNumber %s, last record %s", aws.ToString(e.Value.ContinuationSequenceNumber), aws.ToString(e.Value.Records[n-1].SequenceNumber))
		}
		switch {
		case len(got) == 5 && len(seqs) == 5:
			// The backlog has arrived: write while subscribed.
			seqs = append(seqs, confPut(t, tg, stream, "live", 5, nil)...)
		case len(got) == len(want) && !split:
			split = true
			parent := confShards(t, tg, stream, nil)[0]
			if _, err := tg.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(confShardID(0)),
				NewStartingHashKey: aws.String(confMid(t, parent).String())}); err != nil {
				t.Fatalf("SplitShard: %v", err)
			}
		}
	}
	if err := es.Err(); err != nil {
		t.Fatalf("event stream: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	if !slices.Equal(gotSeqs, seqs) {
		t.Errorf("sequence numbers %v, want those PutRecords returned: %v", gotSeqs, seqs)
	}
	if !split {
		t.Fatal("the stream ended before the split")
	}
	wantChildren := []string{confShardID(1) + "<" + confShardID(0), confShardID(2) + "<" + confShardID(0)}
	if lastEvent.ContinuationSequenceNumber != nil || !slices.Equal(confChildIDs(lastEvent.ChildShards), wantChildren) {
		t.Errorf("last event: continuation %q, children %v; want none and %v", aws.ToString(lastEvent.ContinuationSequenceNumber), confChildIDs(lastEvent.ChildShards), wantChildren)
	}
}

func confChildIDs(cs []types.ChildShard) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, aws.ToString(c.ShardId)+"<"+strings.Join(c.ParentShards, ","))
	}
	return ids
}
