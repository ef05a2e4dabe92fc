// Package batchsql runs a SQL statement on every micro-batch with an
// embedded, in-memory DuckDB: a [shardflow.Transform] for
// [shardflow.QueryConfig].
//
// The statement reads the view "source", whose columns are the source
// schema (data BLOB, streamName, partitionKey, sequenceNumber VARCHAR,
// approximateArrivalTimestamp TIMESTAMP, shardId VARCHAR,
// subSequenceNumber BIGINT). The Spark SQL forms of the AWS blog work as in
// Spark: CAST(data AS STRING), from_json(text, 'id BIGINT, ...'), to_json,
// date_format and current_timestamp (docs/sql.md lists them next to their
// DuckDB equivalents).
//
// This is the only package of the module that imports duckdb-go, which
// needs cgo; the rest of the library builds with CGO_ENABLED=0.
//
// Each batch is processed on its own: GROUP BY, ORDER BY, window functions
// and joins with static tables (Config.Init) apply within one batch.
// Aggregation across batches (event-time windows, watermarks) is not
// supported yet.
package batchsql
