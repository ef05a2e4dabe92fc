// Package ddbstore keeps checkpoints in a DynamoDB table
// (kinesis.metadataCommitterType=DYNAMODB).
//
// One table serves many checkpoints. Its key is a partition key "pk" and a
// sort key "sk", both strings. A checkpoint has an id (CheckpointID; the
// options layer derives it from checkpointLocation) and a generation, a
// random id chosen when the checkpoint is first used:
//
//	pk = <id>                 sk = "#lease"   the Lock lease (owner, version)
//	pk = <id>                 sk = "#gen"     the current generation (unless Config.Generation is set)
//	pk = <id>@<generation>    sk = <name>     one object: "data" (B), or for objects over 350 kB
//	                                          "cid" and "n" naming its chunks
//	pk = <id>@<generation>    sk = "#chunk/<cid>/<i>"  a chunk of a large object
//
// Two checkpoints with different ids never share an item, and a checkpoint
// that is deleted and started again gets a new generation, so it never reads
// an item its earlier life left behind. Reads are consistent; Create is a
// PutItem with attribute_not_exists(sk), so of 30 concurrent writers of one
// batch exactly one wins. A Put replaces an item in one write, and a large
// object's head item is written only after its chunks, so readers see a
// whole old or whole new object.
//
// DeleteMany (checkpoint.BatchDeleter), which the engine's purge uses,
// deletes with BatchWriteItem, 25 items per call and no reads. A
// BatchWriteItem cannot return what it deleted, so it is used only for
// objects whose chunks the store knows: those it created, put or listed and
// has not deleted since (up to 16384 names). Any other object is deleted as
// Delete does, with a DeleteItem that returns the chunks to delete after it.
// (If another process replaced such an object with a large one meanwhile,
// that object's chunks are left behind in the table, where no read sees
// them.) If the credentials may not call BatchWriteItem (AccessDenied),
// DeleteMany deletes one by one from then on, as before it existed.
//
// Lock keeps a lease item taken with attribute_not_exists and renewed with a
// condition on its version every LeaseTime/6; a process killed without
// releasing blocks the next Lock for at most the lease time (30 s by
// default), judged by the waiting process's own clock (see package lease).
//
// New creates the table (PAY_PER_REQUEST) if it is missing and waits until
// it is ACTIVE. Retries with backoff on throttling
// (ProvisionedThroughputExceededException, ThrottlingException) and 5xx are
// the SDK client's standard retryer; give the client one
// (checkpoint/ckptopen does). dynalite (a DynamoDB emulator) works: the store
// uses no transactions.
package ddbstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/shardflow/shardflow/checkpoint"
	"github.com/shardflow/shardflow/checkpoint/internal/lease"
	"github.com/shardflow/shardflow/internal/ddbtable"
)

// API is the part of *dynamodb.Client the store calls.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

// Config configures a Store.
type Config struct {
	// Client calls DynamoDB; *dynamodb.Client with a retryer in production.
	Client API
	// Table is the table name (kinesis.dynamodb.tableName).
	Table string
	// CheckpointID names the checkpoint in the table; required. Two
	// queries with different ids never share an item.
	CheckpointID string
	// Generation, when set, is the checkpoint's generation, kept by the
	// caller (ckptopen keeps it at checkpointLocation, so that deleting
	// that directory starts a new checkpoint). When empty the store keeps
	// it in the table (item "#gen").
	Generation string
	// Location is the checkpoint's location for messages; default
	// dynamodb://<Table>/<CheckpointID>.
	Location string
	// LeaseTime is how long a killed holder can block the next Lock; 0
	// means 30 s.
	LeaseTime time.Duration
	// TableWait bounds the wait for a new table to be ACTIVE; 0 means 10
	// minutes.
	TableWait time.Duration
}

// Item attribute names and reserved sort keys.
const (
	attrPK      = "pk"
	attrSK      = "sk"
	attrData    = "data"
	attrWriter  = "w"
	attrChunkID = "cid"
	attrChunks  = "n"
	attrGen     = "gen"
	attrRecord  = "rec"
	attrVersion = "ver"

	skLease = "#lease"
	skGen   = "#gen"

	// inlineMax is the largest object kept in one item (DynamoDB items
	// are at most 400 KB, names and attributes included).
	inlineMax = 350_000
)

// Store is a checkpoint in a DynamoDB table. It is safe for concurrent use.
type Store struct {
	c         API
	table     string
	id        string
	location  string
	leaseTime time.Duration
	held      atomic.Pointer[lease.Held]

	genMu sync.Mutex
	gen   string // current generation; "" until known

	mu      sync.Mutex
	known   map[string][]string // object name -> its chunks' sort keys (none when inline); see DeleteMany
	noBatch atomic.Bool         // BatchWriteItem was denied: DeleteMany deletes one by one
}

var (
	_ checkpoint.Store        = (*Store)(nil)
	_ checkpoint.BatchDeleter = (*Store)(nil)
)

// maxKnown bounds Store.known: the retained log entries of a query (two per
// batch, kinesis.minBatchesToRetain 100 by default) fit many times over.
// Objects not in it are deleted one by one.
const maxKnown = 1 << 14

// remember records that object name exists with the given chunks, because
// this store wrote it (replace: a newer write than any record) or listed it
// (a record of a concurrent write is newer than the listing: keep it).
func (s *Store) remember(name string, chunks []string, replace bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known == nil {
		s.known = make(map[string][]string)
	}
	if _, ok := s.known[name]; ok && !replace {
		return
	}
	if _, ok := s.known[name]; ok || len(s.known) < maxKnown {
		s.known[name] = chunks
	}
}

// recall returns the chunks of object name and forgets it; ok is false
// when the store does not know the object.
func (s *Store) recall(name string) (chunks []string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chunks, ok = s.known[name]
	delete(s.known, name)
	return chunks, ok
}

// New returns a store on cfg.Table, creating the table if missing.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("ddbstore: no DynamoDB client")
	}
	if cfg.Table == "" {
		return nil, errors.New("ddbstore: no table name (kinesis.dynamodb.tableName)")
	}
	if cfg.CheckpointID == "" || strings.ContainsAny(cfg.CheckpointID, "@#") {
		return nil, fmt.Errorf("ddbstore: checkpoint id %q: want a non-empty id without '@' or '#'", cfg.CheckpointID)
	}
	s := &Store{c: cfg.Client, table: cfg.Table, id: cfg.CheckpointID, location: cfg.Location, leaseTime: cfg.LeaseTime, gen: cfg.Generation}
	if s.location == "" {
		s.location = "dynamodb://" + cfg.Table + "/" + cfg.CheckpointID
	}
	if s.leaseTime <= 0 {
		s.leaseTime = lease.DefaultTime
	}
	wait := cfg.TableWait
	if wait <= 0 {
		wait = 10 * time.Minute
	}
	if err := ensureTable(ctx, cfg.Client, cfg.Table, wait); err != nil {
		return nil, err
	}
	return s, nil
}

// ensureTable creates the table PAY_PER_REQUEST if missing and waits for
// ACTIVE; an existing table must have the store's key schema.
func ensureTable(ctx context.Context, c API, table string, wait time.Duration) error {
	err := ddbtable.Ensure(ctx, c, table, ddbtable.Key{Hash: attrPK, Range: attrSK}, wait, "table",
		func(d *types.TableDescription) error { return checkSchema(table, d) })
	if err != nil {
		return fmt.Errorf("ddbstore: %w", err)
	}
	return nil
}

func checkSchema(table string, d *types.TableDescription) error {
	var hash, rng string
	for _, k := range d.KeySchema {
		switch k.KeyType {
		case types.KeyTypeHash:
			hash = aws.ToString(k.AttributeName)
		case types.KeyTypeRange:
			rng = aws.ToString(k.AttributeName)
		}
	}
	if hash != attrPK || rng != attrSK {
		return fmt.Errorf("table %s has key (%s, %s), not shardflow's (pk, sk): it was made by another program (the Spark connector's tables have metadataKey and metadataSortKey); use another kinesis.dynamodb.tableName", table, hash, rng)
	}
	return nil
}

// Location returns the checkpoint's location.
func (s *Store) Location() string { return s.location }

// Generation returns the checkpoint's generation, creating it if needed.
func (s *Store) Generation(ctx context.Context) (string, error) {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	if s.gen != "" {
		return s.gen, nil
	}
	key := map[string]types.AttributeValue{attrPK: str(s.id), attrSK: str(skGen)}
	for {
		out, err := s.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return "", fmt.Errorf("ddbstore: read the generation of %s: %w", s.location, err)
		}
		if g, ok := out.Item[attrGen].(*types.AttributeValueMemberS); ok && g.Value != "" {
			s.gen = g.Value
			return s.gen, nil
		}
		gen := newToken()
		_, err = s.c.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:           aws.String(s.table),
			Item:                map[string]types.AttributeValue{attrPK: str(s.id), attrSK: str(skGen), attrGen: str(gen)},
			ConditionExpression: aws.String("attribute_not_exists(sk)"),
		})
		if err == nil {
			s.gen = gen
			return gen, nil
		}
		if !isCCF(err) {
			return "", fmt.Errorf("ddbstore: create the generation of %s: %w", s.location, err)
		}
	}
}

func (s *Store) dataPK(ctx context.Context) (types.AttributeValue, error) {
	g, err := s.Generation(ctx)
	if err != nil {
		return nil, err
	}
	return str(s.id + "@" + g), nil
}

func (s *Store) check(ctx context.Context, op, name string, write bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ddbstore: %s %s: %w", op, name, err)
	}
	if err := checkpoint.CheckName(name); err != nil {
		return fmt.Errorf("ddbstore: %s: %w", op, err)
	}
	if h := s.held.Load(); write && h != nil && h.Lost() {
		return fmt.Errorf("ddbstore: %s %s: %w: the lease on %s was lost (another process took it over, or it could not be renewed in time)",
			op, name, checkpoint.ErrLocked, s.location)
	}
	return nil
}

func (s *Store) opErr(op, name string, err error) error {
	return fmt.Errorf("ddbstore: %s %s/%s: %w", op, s.location, name, err)
}

// Create writes the object if absent (attribute_not_exists(sk)).
func (s *Store) Create(ctx context.Context, name string, data []byte) error {
	if err := s.check(ctx, "create", name, true); err != nil {
		return err
	}
	pk, err := s.dataPK(ctx)
	if err != nil {
		return err
	}
	token := newToken()
	item, chunks, err := s.writeChunks(ctx, pk, name, data)
	if err != nil {
		return s.opErr("create", name, err)
	}
	item[attrWriter] = str(token)
	_, err = s.c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(s.table),
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(sk)"),
	})
	if err == nil {
		s.remember(name, chunks, true)
		return nil
	}
	if isCCF(err) {
		// A retried request whose first attempt succeeded also lands
		// here: the item is then ours.
		out, gerr := s.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(pk, name), ConsistentRead: aws.Bool(true)})
		if gerr == nil {
			if w, ok := out.Item[attrWriter].(*types.AttributeValueMemberS); ok && w.Value == token {
				s.remember(name, chunks, true)
				return nil
			}
		}
		s.deleteChunks(ctx, pk, chunks)
		return fmt.Errorf("ddbstore: create %s/%s: %w", s.location, name, checkpoint.ErrExist)
	}
	s.deleteChunks(ctx, pk, chunks)
	return s.opErr("create", name, err)
}

// Put writes the object, replacing any.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := s.check(ctx, "put", name, true); err != nil {
		return err
	}
	pk, err := s.dataPK(ctx)
	if err != nil {
		return err
	}
	item, chunks, err := s.writeChunks(ctx, pk, name, data)
	if err != nil {
		return s.opErr("put", name, err)
	}
	out, err := s.c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:    aws.String(s.table),
		Item:         item,
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		s.recall(name) // it may have been replaced: chunks unknown
		s.deleteChunks(ctx, pk, chunks)
		return s.opErr("put", name, err)
	}
	s.remember(name, chunks, true)
	s.deleteChunks(ctx, pk, chunkKeys(out.Attributes))
	return nil
}

// writeChunks returns the head item for data, first writing its chunks
// when it is too large for one item.
func (s *Store) writeChunks(ctx context.Context, pk types.AttributeValue, name string, data []byte) (map[string]types.AttributeValue, []string, error) {
	item := map[string]types.AttributeValue{attrPK: pk, attrSK: str(name)}
	if len(data) <= inlineMax {
		item[attrData] = &types.AttributeValueMemberB{Value: slices.Clone(data)}
		return item, nil, nil
	}
	cid := newToken()
	var sks []string
	for i := 0; i*inlineMax < len(data); i++ {
		part := data[i*inlineMax : min((i+1)*inlineMax, len(data))]
		sk := chunkSK(cid, i)
		sks = append(sks, sk)
		_, err := s.c.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(s.table),
			Item:      map[string]types.AttributeValue{attrPK: pk, attrSK: str(sk), attrData: &types.AttributeValueMemberB{Value: slices.Clone(part)}},
		})
		if err != nil {
			s.deleteChunks(ctx, pk, sks)
			return nil, nil, err
		}
	}
	item[attrChunkID] = str(cid)
	item[attrChunks] = &types.AttributeValueMemberN{Value: strconv.Itoa(len(sks))}
	return item, sks, nil
}

func chunkSK(cid string, i int) string { return fmt.Sprintf("#chunk/%s/%06d", cid, i) }

// chunkKeys lists the chunk sort keys a head item refers to.
func chunkKeys(item map[string]types.AttributeValue) []string {
	cid, ok := item[attrChunkID].(*types.AttributeValueMemberS)
	if !ok {
		return nil
	}
	n, _ := item[attrChunks].(*types.AttributeValueMemberN)
	count := 0
	if n != nil {
		count, _ = strconv.Atoi(n.Value)
	}
	sks := make([]string, count)
	for i := range sks {
		sks[i] = chunkSK(cid.Value, i)
	}
	return sks
}

// deleteChunks removes chunks no head refers to; failures leave garbage
// that no read sees.
func (s *Store) deleteChunks(ctx context.Context, pk types.AttributeValue, sks []string) {
	ctx = context.WithoutCancel(ctx)
	for _, sk := range sks {
		_, _ = s.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: map[string]types.AttributeValue{attrPK: pk, attrSK: str(sk)}})
	}
}

// Read returns the object's bytes, with consistent reads.
func (s *Store) Read(ctx context.Context, name string) ([]byte, error) {
	if err := s.check(ctx, "read", name, false); err != nil {
		return nil, err
	}
	pk, err := s.dataPK(ctx)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		out, err := s.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(pk, name), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, s.opErr("read", name, err)
		}
		if out.Item == nil {
			return nil, fmt.Errorf("ddbstore: read %s/%s: %w", s.location, name, checkpoint.ErrNotExist)
		}
		if d, ok := out.Item[attrData].(*types.AttributeValueMemberB); ok {
			return slices.Clone(d.Value), nil
		}
		data, complete, err := s.readChunks(ctx, pk, chunkKeys(out.Item))
		if err != nil {
			return nil, s.opErr("read", name, err)
		}
		if complete {
			return data, nil
		}
		if attempt == 10 {
			return nil, s.opErr("read", name, errors.New("its chunks keep changing under concurrent Puts"))
		}
		// A concurrent Put replaced the object and removed the chunks
		// we were reading: read the new head.
	}
}

func (s *Store) readChunks(ctx context.Context, pk types.AttributeValue, sks []string) ([]byte, bool, error) {
	var data []byte
	for _, sk := range sks {
		out, err := s.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: map[string]types.AttributeValue{attrPK: pk, attrSK: str(sk)}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, false, err
		}
		d, ok := out.Item[attrData].(*types.AttributeValueMemberB)
		if !ok {
			return nil, false, nil
		}
		data = append(data, d.Value...)
	}
	if len(sks) == 0 {
		return nil, false, errors.New("corrupt item: no data and no chunks")
	}
	return data, true, nil
}

// List lists the objects directly under dir with a paginated, consistent
// Query (begins_with on the sort key).
func (s *Store) List(ctx context.Context, dir string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ddbstore: list %s: %w", dir, err)
	}
	if err := checkpoint.CheckDir(dir); err != nil {
		return nil, fmt.Errorf("ddbstore: list: %w", err)
	}
	pk, err := s.dataPK(ctx)
	if err != nil {
		return nil, err
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": pk},
		ProjectionExpression:      aws.String("#sk, #cid, #n"),
		ExpressionAttributeNames:  map[string]string{"#sk": attrSK, "#cid": attrChunkID, "#n": attrChunks},
	}
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
		in.KeyConditionExpression = aws.String("pk = :pk AND begins_with(sk, :p)")
		in.ExpressionAttributeValues[":p"] = str(prefix)
	}
	var names []string
	p := dynamodb.NewQueryPaginator(s.c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ddbstore: list %s/%s: %w", s.location, dir, err)
		}
		for _, it := range page.Items {
			sk, _ := it[attrSK].(*types.AttributeValueMemberS)
			if sk == nil {
				continue
			}
			n := strings.TrimPrefix(sk.Value, prefix)
			if n == "" || strings.Contains(n, "/") || checkpoint.CheckName(n) != nil {
				continue // deeper objects, chunks
			}
			names = append(names, n)
			s.remember(sk.Value, chunkKeys(it), false)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Delete removes the object (attribute_exists(sk)), then its chunks.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.check(ctx, "delete", name, true); err != nil {
		return err
	}
	pk, err := s.dataPK(ctx)
	if err != nil {
		return err
	}
	out, err := s.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:           aws.String(s.table),
		Key:                 key(pk, name),
		ConditionExpression: aws.String("attribute_exists(sk)"),
		ReturnValues:        types.ReturnValueAllOld,
	})
	s.recall(name)
	if isCCF(err) {
		return fmt.Errorf("ddbstore: delete %s/%s: %w", s.location, name, checkpoint.ErrNotExist)
	}
	if err != nil {
		return s.opErr("delete", name, err)
	}
	s.deleteChunks(ctx, pk, chunkKeys(out.Attributes))
	return nil
}

// DeleteMany removes the named objects; missing ones are skipped. It
// checks every name first. Objects whose chunks the store knows (see the
// package documentation) go in BatchWriteItem calls of 25 deletes, their
// chunks in more calls once the heads are gone; any other object is
// deleted as Delete does.
func (s *Store) DeleteMany(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := s.check(ctx, "delete", name, true); err != nil {
			return err
		}
	}
	if len(names) == 0 {
		return nil
	}
	pk, err := s.dataPK(ctx)
	if err != nil {
		return err
	}
	names = slices.Compact(slices.Sorted(slices.Values(names))) // a key twice in one call is an error
	var heads, chunks []string
	var errs []error
	one := func(name string) {
		if err := s.Delete(ctx, name); err != nil && !errors.Is(err, checkpoint.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, name := range names {
		c, ok := s.recall(name)
		if !ok || s.noBatch.Load() {
			one(name)
			continue
		}
		heads = append(heads, name)
		chunks = append(chunks, c...)
	}
	if err := s.batchDelete(ctx, pk, heads); err != nil {
		if !accessDenied(err) {
			// The heads not deleted are forgotten, so a later delete
			// reads their chunks; theirs must stay.
			return errors.Join(append(errs, fmt.Errorf("ddbstore: delete %d objects of %s: %w", len(heads), s.location, err))...)
		}
		// An IAM policy written before DeleteMany existed: no
		// dynamodb:BatchWriteItem. A head deleted by an earlier call
		// is now missing, which Delete tells and one ignores.
		s.noBatch.Store(true)
		for _, name := range heads {
			one(name)
		}
		return errors.Join(errs...)
	}
	// Like deleteChunks: a failure leaves garbage that no read sees.
	_ = s.batchDelete(context.WithoutCancel(ctx), pk, chunks)
	return errors.Join(errs...)
}

const (
	// maxBatchWrite is the most requests one BatchWriteItem takes.
	maxBatchWrite = 25
	// batchAttempts bounds the BatchWriteItem calls for one group of
	// items that DynamoDB keeps returning unprocessed (throttled).
	batchAttempts = 10
	// batchBackoff is the first wait before calling again with the
	// unprocessed items; it doubles up to batchBackoffMax.
	batchBackoff    = 50 * time.Millisecond
	batchBackoffMax = 5 * time.Second
)

// batchDelete deletes the items with sort keys sks under pk with
// BatchWriteItem, retrying unprocessed items with exponential backoff and
// jitter (throttling of a whole call is the SDK retryer's). It checks the
// lease before each call.
func (s *Store) batchDelete(ctx context.Context, pk types.AttributeValue, sks []string) error {
	for group := range slices.Chunk(sks, maxBatchWrite) {
		reqs := make([]types.WriteRequest, len(group))
		for i, sk := range group {
			reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(pk, sk)}}
		}
		for attempt := 0; len(reqs) > 0; attempt++ {
			if attempt == batchAttempts {
				return fmt.Errorf("%d items still unprocessed after %d BatchWriteItem calls", len(reqs), attempt)
			}
			if attempt > 0 {
				d := min(batchBackoff<<(attempt-1), batchBackoffMax)
				t := time.NewTimer(d/2 + mrand.N(d/2+1))
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
			if h := s.held.Load(); h != nil && h.Lost() {
				return fmt.Errorf("%w: the lease on %s was lost (another process took it over, or it could not be renewed in time)", checkpoint.ErrLocked, s.location)
			}
			out, err := s.c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{s.table: reqs}})
			if err != nil {
				return err
			}
			reqs = out.UnprocessedItems[s.table]
		}
	}
	return nil
}

// Lock takes the checkpoint's lease (see the package documentation). The
// lease spans generations: it is keyed by the checkpoint id alone.
func (s *Store) Lock(ctx context.Context, owner string) (func() error, error) {
	h, err := lease.Lock(ctx, leaseBackend{s}, s.location, owner, s.leaseTime)
	if err != nil {
		return nil, fmt.Errorf("ddbstore: %w", err)
	}
	s.held.Store(h)
	return func() error {
		s.held.CompareAndSwap(h, nil)
		return h.Release()
	}, nil
}

type leaseBackend struct{ s *Store }

func (b leaseBackend) key() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(b.s.id), attrSK: str(skLease)}
}

func (b leaseBackend) item(r lease.Record, ver int64) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: str(b.s.id), attrSK: str(skLease),
		attrRecord:  str(string(r.Marshal())),
		attrVersion: &types.AttributeValueMemberN{Value: strconv.FormatInt(ver, 10)},
	}
}

func (b leaseBackend) Create(ctx context.Context, r lease.Record) (string, error) {
	_, err := b.s.c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(b.s.table),
		Item:                b.item(r, 1),
		ConditionExpression: aws.String("attribute_not_exists(sk)"),
	})
	if isCCF(err) {
		return "", checkpoint.ErrExist
	}
	if err != nil {
		return "", err
	}
	return "1", nil
}

func (b leaseBackend) Read(ctx context.Context) (lease.Record, string, error) {
	out, err := b.s.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(b.s.table), Key: b.key(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return lease.Record{}, "", err
	}
	if out.Item == nil {
		return lease.Record{}, "", checkpoint.ErrNotExist
	}
	rec, _ := out.Item[attrRecord].(*types.AttributeValueMemberS)
	ver, _ := out.Item[attrVersion].(*types.AttributeValueMemberN)
	var r lease.Record
	if rec != nil {
		r = lease.Unmarshal([]byte(rec.Value))
	} else {
		r = lease.Unmarshal(nil)
	}
	v := ""
	if ver != nil {
		v = ver.Value
	}
	return r, v, nil
}

func (b leaseBackend) Replace(ctx context.Context, version string, r lease.Record) (string, error) {
	old, err := strconv.ParseInt(version, 10, 64)
	if err != nil {
		old = 0
	}
	_, err = b.s.c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(b.s.table),
		Item:                      b.item(r, old+1),
		ConditionExpression:       aws.String("ver = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: version}},
	})
	if isCCF(err) {
		return "", lease.ErrConflict
	}
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(old+1, 10), nil
}

func (b leaseBackend) Delete(ctx context.Context, version string) error {
	_, err := b.s.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(b.s.table),
		Key:                       b.key(),
		ConditionExpression:       aws.String("ver = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: version}},
	})
	if isCCF(err) {
		return lease.ErrConflict
	}
	return err
}

func key(pk types.AttributeValue, name string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: pk, attrSK: str(name)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func accessDenied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException"
}

func isCCF(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
