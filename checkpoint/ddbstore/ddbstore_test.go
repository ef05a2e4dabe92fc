package ddbstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/checkpointtest"
	"github.com/shardflow/shardflow/checkpoint/ddbstore"
	"github.com/shardflow/shardflow/internal/testenv"
)

func newStore(t *testing.T, cfg ddbstore.Config) *ddbstore.Store {
	t.Helper()
	s, err := ddbstore.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	c := testenv.DynamoDBClient(t, testenv.Dynalite(t))
	table := testenv.UniqueName("ckpt-")
	checkpointtest.Run(t, func(t *testing.T) checkpoint.Store {
		return newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: testenv.UniqueName("q-"), LeaseTime: 600 * time.Millisecond})
	})
}

// TestSharedTable: two checkpoints in one table never see each other's
// items, and each can be locked while the other is.
func TestSharedTable(t *testing.T) {
	ctx := t.Context()
	c := testenv.DynamoDBClient(t, testenv.Dynalite(t))
	table := testenv.UniqueName("ckpt-")
	a := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "s3://b/queries/a"})
	ab := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "s3://b/queries/ab"})
	for s, v := range map[*ddbstore.Store]string{a: "a", ab: "ab"} {
		if err := s.Create(ctx, "offsets/0", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	for s, v := range map[*ddbstore.Store]string{a: "a", ab: "ab"} {
		got, err := s.Read(ctx, "offsets/0")
		if err != nil || string(got) != v {
			t.Fatalf("%s: Read = %q, %v; want %q", s.Location(), got, err, v)
		}
		names, err := s.List(ctx, "")
		if err != nil || len(names) != 0 {
			t.Fatalf("%s: List(\"\") = %q, %v", s.Location(), names, err)
		}
	}
	ra, err := a.Lock(ctx, "query a")
	if err != nil {
		t.Fatal(err)
	}
	defer ra()
	rab, err := ab.Lock(ctx, "query ab")
	if err != nil {
		t.Fatalf("the lock of one checkpoint blocked another in the same table: %v", err)
	}
	rab()
}

// TestNewGeneration: a checkpoint started again under a new generation
// (its location deleted and recreated) never sees the old items, while the
// lease still spans generations.
func TestNewGeneration(t *testing.T) {
	ctx := t.Context()
	c := testenv.DynamoDBClient(t, testenv.Dynalite(t))
	table := testenv.UniqueName("ckpt-")
	old := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "q", Generation: "g1"})
	if err := old.Create(ctx, "offsets/5", []byte("stale")); err != nil {
		t.Fatal(err)
	}
	release, err := old.Lock(ctx, "old run")
	if err != nil {
		t.Fatal(err)
	}
	fresh := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "q", Generation: "g2", LeaseTime: 300 * time.Millisecond})
	if _, err := fresh.Lock(ctx, "new run"); !errors.Is(err, checkpoint.ErrLocked) {
		t.Fatalf("Lock of a new generation while the old one is held = %v, want ErrLocked", err)
	}
	release()
	if _, err := fresh.Read(ctx, "offsets/5"); !errors.Is(err, checkpoint.ErrNotExist) {
		t.Fatalf("new generation reads the old offsets/5: %v", err)
	}
	if err := fresh.Create(ctx, "offsets/5", []byte("new")); err != nil {
		t.Fatal(err)
	}
	// Without Config.Generation the store keeps one in the table: two
	// stores on one id agree on it.
	x := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "kept"})
	y := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "kept"})
	gx, err := x.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gy, err := y.Generation(ctx)
	if err != nil || gx != gy {
		t.Fatalf("generations %q and %q (%v), want equal", gx, gy, err)
	}
}

var _ = context.Background

// countingAPI counts a store's DynamoDB calls by operation, and can return
// part of a BatchWriteItem's requests unprocessed, as DynamoDB does when
// it throttles.
type countingAPI struct {
	*dynamodb.Client
	mu          sync.Mutex
	calls       map[string]int
	unprocessed int  // BatchWriteItem calls left that process only half their requests
	denied      bool // BatchWriteItem fails with AccessDeniedException
}

func (c *countingAPI) count(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
}

func (c *countingAPI) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.calls
	c.calls = map[string]int{}
	return n
}

func (c *countingAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.count("GetItem")
	return c.Client.GetItem(ctx, in, optFns...)
}

func (c *countingAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.count("PutItem")
	return c.Client.PutItem(ctx, in, optFns...)
}

func (c *countingAPI) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.count("DeleteItem")
	return c.Client.DeleteItem(ctx, in, optFns...)
}

func (c *countingAPI) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.count("Query")
	return c.Client.Query(ctx, in, optFns...)
}

func (c *countingAPI) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	c.count("BatchWriteItem")
	c.mu.Lock()
	if c.denied {
		c.mu.Unlock()
		return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: dynamodb:BatchWriteItem"}
	}
	partial := c.unprocessed > 0
	if partial {
		c.unprocessed--
	}
	c.mu.Unlock()
	if !partial {
		return c.Client.BatchWriteItem(ctx, in, optFns...)
	}
	done := map[string][]types.WriteRequest{}
	left := map[string][]types.WriteRequest{}
	for table, reqs := range in.RequestItems {
		done[table], left[table] = reqs[:len(reqs)/2], reqs[len(reqs)/2:]
	}
	if _, err := c.Client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: done}, optFns...); err != nil {
		return nil, err
	}
	return &dynamodb.BatchWriteItemOutput{UnprocessedItems: left}, nil
}

// items lists the sort keys of a checkpoint's items (chunks included),
// read straight from the table.
func items(t *testing.T, c *dynamodb.Client, table string, s *ddbstore.Store) []string {
	t.Helper()
	gen, err := s.Generation(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var sks []string
	p := dynamodb.NewQueryPaginator(c, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "q@" + gen}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			sks = append(sks, it["sk"].(*types.AttributeValueMemberS).Value)
		}
	}
	return sks
}

// TestDeleteManyCalls: DeleteMany of objects the store wrote or listed is
// BatchWriteItem calls of 25 and no reads, chunks of large objects
// included; objects it does not know are deleted one by one, with their
// chunks; unprocessed items are sent again.
func TestDeleteManyCalls(t *testing.T) {
	ctx := t.Context()
	client := testenv.DynamoDBClient(t, testenv.Dynalite(t))
	table := testenv.UniqueName("ckpt-")
	c := &countingAPI{Client: client, calls: map[string]int{}}
	s := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "q", Generation: "g"})
	big := bytes.Repeat([]byte("x"), 1<<20) // 3 chunks
	write := func(from, to int) []string {
		t.Helper()
		var names []string
		for i := from; i < to; i++ {
			name := fmt.Sprintf("offsets/%d", i)
			if err := s.Create(ctx, name, []byte("o")); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
		}
		name := fmt.Sprintf("offsets/%d", to)
		if err := s.Create(ctx, name, big); err != nil {
			t.Fatal(err)
		}
		c.take()
		return append(names, name)
	}
	wantGone := func(what string) {
		t.Helper()
		if sks := items(t, client, table, s); len(sks) != 0 {
			t.Fatalf("%s: items left: %q", what, sks)
		}
	}

	names := write(0, 60)
	if err := s.DeleteMany(ctx, names); err != nil {
		t.Fatal(err)
	}
	if got, want := c.take(), map[string]int{"BatchWriteItem": 3 + 1}; !maps.Equal(got, want) {
		t.Errorf("DeleteMany of 61 objects the store wrote (one of 3 chunks): calls %v, want %v", got, want)
	}
	wantGone("the store's own objects")

	// Another store (another process, or this one restarted) does not
	// know the objects: one DeleteItem each, which returns the chunks.
	other := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "q", Generation: "g"})
	names = write(100, 110)
	if err := other.DeleteMany(ctx, names); err != nil {
		t.Fatal(err)
	}
	if got := c.take(); got["DeleteItem"] != 11+3 || got["BatchWriteItem"] != 0 || got["GetItem"] != 0 {
		t.Errorf("DeleteMany of 11 objects another store wrote: calls %v, want 14 DeleteItem", got)
	}
	wantGone("another store's objects")

	// Once listed, they are known.
	other = newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "q", Generation: "g"})
	names = write(200, 230)
	if _, err := other.List(ctx, "offsets"); err != nil {
		t.Fatal(err)
	}
	c.take()
	if err := other.DeleteMany(ctx, names); err != nil {
		t.Fatal(err)
	}
	if got, want := c.take(), map[string]int{"BatchWriteItem": 2 + 1}; !maps.Equal(got, want) {
		t.Errorf("DeleteMany of 31 listed objects: calls %v, want %v", got, want)
	}
	wantGone("listed objects")

	// Throttled: half of each of the first 3 calls comes back unprocessed.
	names = write(300, 320)
	c.mu.Lock()
	c.unprocessed = 3
	c.mu.Unlock()
	if err := s.DeleteMany(ctx, names); err != nil {
		t.Fatal(err)
	}
	if got := c.take(); got["BatchWriteItem"] < 5 {
		t.Errorf("DeleteMany with unprocessed items: calls %v, want the unprocessed ones sent again", got)
	}
	wantGone("throttled deletes")

	// Credentials without dynamodb:BatchWriteItem: one by one, chunks
	// included, and no BatchWriteItem tried again.
	c.mu.Lock()
	c.denied = true
	c.mu.Unlock()
	for range 2 {
		names = write(400, 405)
		if err := s.DeleteMany(ctx, names); err != nil {
			t.Fatal(err)
		}
		wantGone("denied BatchWriteItem")
	}
	if got := c.take(); got["BatchWriteItem"] != 0 || got["DeleteItem"] != 6+3 {
		t.Errorf("DeleteMany after BatchWriteItem was denied: calls %v, want 9 DeleteItem", got)
	}
}

// TestLostLeaseFencesWrites: a holder whose lease was taken over refuses
// to write, DeleteMany included.
func TestLostLeaseFencesWrites(t *testing.T) {
	ctx := t.Context()
	c := testenv.DynamoDBClient(t, testenv.Dynalite(t))
	table := testenv.UniqueName("ckpt-")
	s := newStore(t, ddbstore.Config{Client: c, Table: table, CheckpointID: "q", Generation: "g", LeaseTime: 300 * time.Millisecond})
	if err := s.Create(ctx, "offsets/1", []byte("o")); err != nil {
		t.Fatal(err)
	}
	release, err := s.Lock(ctx, "old run")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// Another process takes the lease over.
	_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "q"}, "sk": &types.AttributeValueMemberS{Value: "#lease"},
		"rec": &types.AttributeValueMemberS{Value: `{"owner":"new run","token":"y","beat":0,"leaseMs":300}`},
		"ver": &types.AttributeValueMemberN{Value: "1000"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	checkpointtest.DeleteManyFenced(t, s, func(name string) error { _, err := s.Read(ctx, name); return err })
}
