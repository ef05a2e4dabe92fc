package lease

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardflow/shardflow/internal/engine"
)

// importKCL starts a new lease table from a KCL application's lease table,
// which it only reads: every shard the KCL checkpointed at a sequence
// number resumes right after it, SHARD_END stays finished, and shards the
// KCL had not started (TRIM_HORIZON, LATEST, AT_TIMESTAMP) are left to the
// shared start position like any new shard. Owners are not copied: stop
// the KCL application first, or both read the stream.
func (c *Coordinator) importKCL(ctx context.Context, sh engine.Shared) error {
	raw, pages, err := scanTable(ctx, c.cfg.Client, c.cfg.ImportKCLTable)
	c.reads.Add(int64(pages))
	if err != nil {
		return fmt.Errorf("import the KCL lease table: %w", err)
	}
	n := 0
	for _, m := range raw {
		id := kclShardID(getS(m, attrKey))
		cp := getS(m, attrCheckpoint)
		if id == "" || cp == "" || cp == ckptTrimHorizon || cp == "LATEST" || cp == ckptAtTimestamp {
			continue
		}
		item := map[string]types.AttributeValue{
			attrKey: str(id), attrCounter: num(0), attrCheckpoint: str(cp),
			attrSub: num(getN(m, attrSub, 0)), attrCkptType: str(""), attrCkptTime: str(""),
		}
		if ss, ok := m[attrParents].(*types.AttributeValueMemberSS); ok && len(ss.Value) > 0 {
			item[attrParents] = &types.AttributeValueMemberSS{Value: ss.Value}
		}
		if err := c.putIfAbsent(ctx, item); err != nil && !isCCF(err) {
			return fmt.Errorf("import the KCL lease of shard %s: %w", id, err)
		}
		n++
	}
	c.log.Info("imported the KCL application's checkpoints", "kclTable", c.cfg.ImportKCLTable, "shards", n, "items", len(raw))
	return nil
}

// kclShardID is the shard id in a KCL lease key: the key itself, or its
// last part in a multi-stream application ("account:stream:epoch:shardId").
func kclShardID(key string) string {
	if i := strings.LastIndexByte(key, ':'); i >= 0 {
		key = key[i+1:]
	}
	if !strings.HasPrefix(key, "shardId-") {
		return ""
	}
	return key
}
