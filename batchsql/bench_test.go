package batchsql_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/batchsql"
)

// benchRows is a batch of n blog events of about 100 bytes.
func benchRows(n int) []shardflow.Row {
	countries := []string{"Spain", "France", "Germany", "Italy", "Japan", "Brazil", "India", "Zürich"}
	rows := make([]shardflow.Row, n)
	for i := range rows {
		data := fmt.Appendf(nil, `{"id": %d, "data": %q, "date": "2026-11-25 10:%02d:%02d", "note": "x"}`, 1000000+i, countries[i%len(countries)], i/60%60, i%60)
		rows[i] = rec("shardId-00000000000"+strconv.Itoa(i%4), i, data)
	}
	return rows
}

// blogGo is the blog's transform written by hand with encoding/json: parse
// each event, then write partitionKey = id and data = the event as JSON.
func blogGo(in []shardflow.Row) ([]shardflow.Row, error) {
	type event struct {
		ID   *int64     `json:"id"`
		Data *string    `json:"data"`
		Date *time.Time `json:"-"`
	}
	out := make([]shardflow.Row, len(in))
	cells := make([]any, 2*len(in))
	for i, r := range in {
		var raw struct {
			ID   *int64  `json:"id"`
			Data *string `json:"data"`
			Date *string `json:"date"`
		}
		var e event
		if json.Unmarshal(r[0].([]byte), &raw) == nil {
			e.ID, e.Data = raw.ID, raw.Data
			if raw.Date != nil {
				if ts, err := time.Parse(time.DateTime, *raw.Date); err == nil {
					e.Date = &ts
				}
			}
		}
		var date any
		if e.Date != nil {
			date = e.Date.Format(time.DateTime)
		}
		b, err := json.Marshal(map[string]any{"id": e.ID, "data": e.Data, "date": date})
		if err != nil {
			return nil, err
		}
		var pk any
		if e.ID != nil {
			pk = strconv.FormatInt(*e.ID, 10)
		}
		row := cells[2*i : 2*i+2 : 2*i+2]
		row[0], row[1] = pk, string(b)
		out[i] = row
	}
	return out, nil
}

// BenchmarkBlogQuery runs the blog's parse-and-project query on batches of
// 100,000 events, through DuckDB and through hand-written encoding/json Go,
// and reports rows/s for each.
func BenchmarkBlogQuery(b *testing.B) {
	const n = 100_000
	rows := benchRows(n)
	b.Run("sql", func(b *testing.B) {
		xf, err := batchsql.New(batchsql.Config{SQL: blogSQL})
		if err != nil {
			b.Fatal(err)
		}
		defer xf.Close()
		if _, err := xf.Prepare(context.Background(), shardflow.SourceSchema()); err != nil {
			b.Fatal(err)
		}
		batch := &shardflow.Batch{Schema: shardflow.SourceSchema(), Rows: rows}
		b.ReportAllocs()
		for b.Loop() {
			out, err := xf.Apply(context.Background(), batch)
			if err != nil || len(out.Rows) != n {
				b.Fatal(err, len(out.Rows))
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("go-encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, err := blogGo(rows)
			if err != nil || len(out) != n {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
