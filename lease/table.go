package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardflow/shardflow/internal/ddbtable"
	"github.com/shardflow/shardflow/internal/engine"
)

// API is the part of *dynamodb.Client the lease table uses.
type API interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

// Attribute names. The first six are the Kinesis Client Library's, with
// the same meaning.
const (
	attrKey        = "leaseKey"
	attrOwner      = "leaseOwner"
	attrCounter    = "leaseCounter"
	attrCheckpoint = "checkpoint"
	attrSub        = "checkpointSubSequenceNumber"
	attrParents    = "parentShardIds"
	// shardflow's own.
	attrCkptType  = "checkpointType"      // AT_SEQUENCE_NUMBER when the checkpoint is a record to read, not one read
	attrCkptTime  = "checkpointTimestamp" // with checkpoint AT_TIMESTAMP, RFC 3339
	attrPending   = "pendingOwner"        // a worker that asked for the lease (graceful handoff)
	attrLag       = "millisBehindLatest"  // the owner's last lag, written with each renewal
	attrStream    = "stream"              // meta item
	attrShared    = "shared"              // meta item: engine.Shared as JSON
	attrFormat    = "format"              // meta item
	attrCreatedAt = "createdAt"           // meta item
	attrJob       = "checkpointLocation"  // meta item: the job's shared checkpoint

	// metaKey is the item holding what every worker shares; shard ids
	// never start with '#'.
	metaKey = "#shardflow"

	// Checkpoint sentinels, as in the KCL.
	ckptTrimHorizon = "TRIM_HORIZON"
	ckptAtTimestamp = "AT_TIMESTAMP"
	ckptShardEnd    = "SHARD_END"

	tableFormat = 1
)

// Item is one shard's lease as stored.
type Item struct {
	ShardID string
	// Owner is the worker holding the lease; empty when nobody does.
	Owner string
	// Counter changes with every write to the lease; an owner that stops
	// renewing leaves it unchanged.
	Counter int64
	// Checkpoint is where the next owner resumes.
	Checkpoint engine.Start
	// Finished: the shard is read to its end (checkpoint SHARD_END).
	Finished bool
	Parents  []string
	// Pending is a worker that asked the owner to hand the lease over.
	Pending string
	// MillisBehindLatest is the owner's lag at its last renewal (-1: none).
	MillisBehindLatest int64
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func getS(m map[string]types.AttributeValue, k string) string {
	if v, ok := m[k].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(m map[string]types.AttributeValue, k string, def int64) int64 {
	if v, ok := m[k].(*types.AttributeValueMemberN); ok {
		if n, err := strconv.ParseInt(v.Value, 10, 64); err == nil {
			return n
		}
	}
	return def
}

func keyOf(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: str(id)}
}

// decodeItem reads a lease item.
func decodeItem(m map[string]types.AttributeValue) Item {
	it := Item{
		ShardID:            getS(m, attrKey),
		Owner:              getS(m, attrOwner),
		Counter:            getN(m, attrCounter, 0),
		Pending:            getS(m, attrPending),
		MillisBehindLatest: getN(m, attrLag, -1),
	}
	if ss, ok := m[attrParents].(*types.AttributeValueMemberSS); ok {
		it.Parents = ss.Value
	}
	switch cp := getS(m, attrCheckpoint); cp {
	case ckptShardEnd:
		it.Finished = true
	case ckptTrimHorizon, "":
		it.Checkpoint = engine.Start{Type: engine.TrimHorizon}
	case ckptAtTimestamp:
		t, _ := time.Parse(time.RFC3339Nano, getS(m, attrCkptTime))
		it.Checkpoint = engine.Start{Type: engine.AtTimestamp, Timestamp: t}
	default:
		typ := engine.AfterSequenceNumber
		if getS(m, attrCkptType) == string(engine.AtSequenceNumber) {
			typ = engine.AtSequenceNumber
		}
		it.Checkpoint = engine.Start{Type: typ, Seq: cp, Sub: getN(m, attrSub, 0)}
	}
	return it
}

// checkpointValues encodes a position, or SHARD_END when finished, as the
// values of a SET clause: checkpoint, its sub-sequence number, its type and
// timestamp (written as "" when unused, so one expression fits every case).
func checkpointValues(s engine.Start, finished bool) map[string]types.AttributeValue {
	cp, typ, ts := ckptShardEnd, "", ""
	var sub int64
	if !finished {
		switch s.Type {
		case engine.AtTimestamp:
			cp, ts = ckptAtTimestamp, s.Timestamp.UTC().Format(time.RFC3339Nano)
		case engine.AfterSequenceNumber, engine.AtSequenceNumber:
			cp, sub = s.Seq, s.Sub
			if s.Type == engine.AtSequenceNumber {
				typ = string(engine.AtSequenceNumber)
			}
		default:
			cp = ckptTrimHorizon
		}
	}
	return map[string]types.AttributeValue{":cp": str(cp), ":sub": num(sub), ":ctype": str(typ), ":cts": str(ts)}
}

const setCheckpoint = attrCheckpoint + " = :cp, " + attrSub + " = :sub, " + attrCkptType + " = :ctype, " + attrCkptTime + " = :cts"

// ensureTable creates the lease table (PAY_PER_REQUEST, hash key leaseKey)
// if it is missing and waits until it is ACTIVE.
func ensureTable(ctx context.Context, c API, table string, wait time.Duration) error {
	return ddbtable.Ensure(ctx, c, table, ddbtable.Key{Hash: attrKey}, wait, "lease table", func(d *types.TableDescription) error {
		if ks := d.KeySchema; len(ks) != 1 || aws.ToString(ks[0].AttributeName) != attrKey {
			return fmt.Errorf("table %s is not a lease table: its key must be the string %q alone (is it a checkpoint table? name a separate table with shardflow.lease.tableName)", table, attrKey)
		}
		return nil
	})
}

// scanTable reads every item of a table with consistent reads. It returns
// the raw items and the number of pages read.
func scanTable(ctx context.Context, c API, table string) ([]map[string]types.AttributeValue, int, error) {
	var items []map[string]types.AttributeValue
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)}
	pages := 0
	for {
		out, err := c.Scan(ctx, in)
		pages++
		if err != nil {
			return nil, pages, fmt.Errorf("scan lease table %s: %w", table, err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items, pages, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Table is a lease table's content, for operators (shardflow status).
type Table struct {
	Stream string
	Shared engine.Shared
	Leases []Item
}

// ReadTable reads a lease table.
func ReadTable(ctx context.Context, c API, table string) (Table, error) {
	raw, _, err := scanTable(ctx, c, table)
	if err != nil {
		return Table{}, err
	}
	var t Table
	for _, m := range raw {
		if getS(m, attrKey) == metaKey {
			t.Stream = getS(m, attrStream)
			if err := json.Unmarshal([]byte(getS(m, attrShared)), &t.Shared); err != nil {
				return Table{}, fmt.Errorf("lease table %s: unreadable %s item: %w", table, metaKey, err)
			}
			continue
		}
		t.Leases = append(t.Leases, decodeItem(m))
	}
	return t, nil
}

func isCCF(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}
