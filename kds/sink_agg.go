package kds

import (
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/kds/kpl"
)

// shardMapTTL is how long the sink's shard map (open shards' hash key
// ranges) is used before it is listed again. A put that lands in another
// shard than the map predicts refreshes it at once.
const shardMapTTL = 30 * time.Second

// sinkShard is one open shard of the sink's map.
type sinkShard struct {
	id string
	r  kpl.HashRange
}

// aggregated is one Kinesis record built by the sink from user records
// es[rows...]; shard is the shard the map predicted.
type aggregated struct {
	shard string
	rows  []int // indexes of the user records in the batch's entries; nil for a plain record
}

// shardMap returns the open shards sorted by hash key, listing them when
// the cached map is older than shardMapTTL or was invalidated.
func (s *Sink) shardMap(ctx context.Context) ([]sinkShard, error) {
	s.amu.Lock()
	defer s.amu.Unlock()
	if s.shards != nil && time.Since(s.shardsAt) < shardMapTTL {
		return s.shards, nil
	}
	var (
		shards []sinkShard
		token  *string
	)
	for {
		in := &kinesis.ListShardsInput{NextToken: token}
		if token == nil {
			in.StreamName = aws.String(s.cfg.StreamName)
			in.ShardFilter = &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}
		}
		var out *kinesis.ListShardsOutput
		err := s.retry.do(ctx, "ListShards", s.cfg.StreamName, "", func(ctx context.Context) error {
			var err error
			out, err = s.api.ListShards(ctx, in)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, sh := range out.Shards {
			if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
				continue // closed: takes no writes (servers may ignore the filter)
			}
			if sh.HashKeyRange == nil {
				continue
			}
			r, ok := kpl.ParseHashRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
			if ok {
				shards = append(shards, sinkShard{aws.ToString(sh.ShardId), r})
			}
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		token = out.NextToken
	}
	slices.SortFunc(shards, func(a, b sinkShard) int { return a.r.Start.Cmp(b.r.Start) })
	s.shards, s.shardsAt = shards, time.Now()
	return shards, nil
}

// invalidateShardMap makes the next shardMap call list the shards.
func (s *Sink) invalidateShardMap() {
	s.amu.Lock()
	s.shards = nil
	s.amu.Unlock()
}

// shardFor returns the index of the shard holding k, or -1.
func shardFor(shards []sinkShard, k kpl.HashKey) int {
	i, _ := slices.BinarySearchFunc(shards, k, func(sh sinkShard, k kpl.HashKey) int {
		switch {
		case sh.r.End.Cmp(k) < 0:
			return -1
		case sh.r.Start.Cmp(k) > 0:
			return 1
		}
		return 0
	})
	if i < len(shards) && shards[i].r.Contains(k) {
		return i
	}
	return -1
}

// aggregate packs the user records es[rows] into KPL aggregates per target
// shard (by explicit hash key, else the MD5 of the partition key, against
// the shard map), each at most maxRecordBytes with its partition key and
// put with the explicit hash key of its first user record, which is inside
// the shard's range. An aggregate is closed when full, when it has waited
// RecordMaxBufferedTime since its first record, and at the end. An
// aggregate of one record is sent as that plain record. User records of a
// shard keep their order.
func (s *Sink) aggregate(shards []sinkShard, es []types.PutRecordsRequestEntry, rows []int) ([]types.PutRecordsRequestEntry, []aggregated) {
	type open struct {
		a     kpl.Aggregator
		rows  []int
		since time.Time
	}
	var (
		out   []types.PutRecordsRequestEntry
		meta  []aggregated
		byIdx = make([]*open, len(shards))
		now   = time.Now()
	)
	flush := func(i int) {
		o := byIdx[i]
		if o == nil || o.a.Len() == 0 {
			return
		}
		first := es[o.rows[0]]
		if o.a.Len() == 1 {
			out = append(out, first)
			meta = append(meta, aggregated{shard: shards[i].id})
		} else {
			k := kpl.EffectiveHashKey(aws.ToString(first.PartitionKey), aws.ToString(first.ExplicitHashKey))
			out = append(out, types.PutRecordsRequestEntry{
				Data:            o.a.Build(nil),
				PartitionKey:    first.PartitionKey,
				ExplicitHashKey: aws.String(k.String()),
			})
			meta = append(meta, aggregated{shard: shards[i].id, rows: o.rows})
		}
		byIdx[i] = nil
	}
	for n, row := range rows {
		e := &es[row]
		pk, ehk := aws.ToString(e.PartitionKey), aws.ToString(e.ExplicitHashKey)
		i := shardFor(shards, kpl.EffectiveHashKey(pk, ehk))
		if i < 0 {
			// No open shard known for the key (a map being refreshed):
			// send it plain; Kinesis routes it.
			out = append(out, *e)
			meta = append(meta, aggregated{})
			continue
		}
		if n%256 == 0 {
			now = time.Now()
		}
		o := byIdx[i]
		if o != nil && (o.a.SizeWith(pk, ehk, len(e.Data))+len(aws.ToString(es[o.rows[0]].PartitionKey)) > maxRecordBytes ||
			(s.cfg.RecordMaxBufferedTime > 0 && now.Sub(o.since) >= s.cfg.RecordMaxBufferedTime)) {
			flush(i)
			o = nil
		}
		if o == nil {
			o = &open{since: now}
			byIdx[i] = o
		}
		o.a.Add(pk, ehk, e.Data)
		o.rows = append(o.rows, row)
	}
	for i := range byIdx {
		flush(i)
	}
	return out, meta
}
