package shardflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PositionType names where reading starts: the Kinesis iterator types, plus
// PositionShards for the JSON form of kinesis.startingPosition.
type PositionType string

// Position types. EARLIEST is accepted as a synonym of TRIM_HORIZON and
// parsed into PositionTrimHorizon.
const (
	PositionLatest              PositionType = "LATEST"
	PositionTrimHorizon         PositionType = "TRIM_HORIZON"
	PositionAtTimestamp         PositionType = "AT_TIMESTAMP"
	PositionAtSequenceNumber    PositionType = "AT_SEQUENCE_NUMBER"
	PositionAfterSequenceNumber PositionType = "AFTER_SEQUENCE_NUMBER"
	PositionShards              PositionType = "SHARDS"
)

// MaxTimestampSkew is how far in the future an AT_TIMESTAMP may lie. A
// timestamp further ahead is almost certainly a mistake (a wrong offset or
// year) and would silently skip every record written until then.
const MaxTimestampSkew = time.Minute

// StartingPosition is a parsed kinesis.startingPosition. It applies only to
// shards that have no position in the checkpoint yet.
//
// LATEST is kept as LATEST here; the query resolves it to a timestamp once,
// at its first start, and keeps that in the checkpoint.
type StartingPosition struct {
	// Type is PositionLatest, PositionTrimHorizon, PositionAtTimestamp or
	// PositionShards.
	Type PositionType
	// Timestamp is the AT_TIMESTAMP time (UTC). For PositionShards it is the
	// timestamp of Default when Default is PositionAtTimestamp.
	Timestamp time.Time
	// Default is where shards not listed in Shards start (PositionShards
	// only): PositionLatest, PositionTrimHorizon or PositionAtTimestamp.
	Default PositionType
	// Shards maps shard ids to their positions (PositionShards only).
	Shards map[string]ShardPosition
}

// ShardPosition is one shard's entry in the JSON form of
// kinesis.startingPosition.
type ShardPosition struct {
	// Type is any PositionType except PositionShards.
	Type PositionType
	// SequenceNumber is set for AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER.
	SequenceNumber string
	// SubSequenceNumber names one user record inside a KPL aggregate:
	// AT_SEQUENCE_NUMBER starts at that sub-record, AFTER_SEQUENCE_NUMBER
	// right after it (the aggregate's later sub-records are read). A plain
	// record is sub-record 0, the default.
	SubSequenceNumber int64
	// Timestamp is set (UTC) for AT_TIMESTAMP.
	Timestamp time.Time
}

var (
	// seqNumberRE is the SequenceNumber pattern of the Kinesis API reference.
	seqNumberRE = regexp.MustCompile(`^(0|[1-9][0-9]{0,128})$`)
	// shardIDRE is the ShardId pattern of the Kinesis API reference.
	shardIDRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
)

// startingPositionAccepts describes every accepted form, for error messages.
const startingPositionAccepts = "LATEST, TRIM_HORIZON, EARLIEST, AT_TIMESTAMP <RFC 3339 time>, " +
	"or a JSON object of per-shard positions (see docs/options.md)"

// ParseStartingPosition parses a kinesis.startingPosition value. Keywords are
// case-insensitive. The accepted forms are:
//
//	LATEST
//	TRIM_HORIZON (or EARLIEST)
//	AT_TIMESTAMP 2026-11-25T10:00:00.123+05:30   (RFC 3339: Z or an offset, optional fraction)
//	{"shardId-000000000000": {"type": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "4960..."},
//	 "shardId-000000000001": "TRIM_HORIZON",
//	 "default": "LATEST"}
//
// In the JSON form each shard maps to a string ("TRIM_HORIZON", "LATEST",
// "AT_TIMESTAMP <time>", "AT_SEQUENCE_NUMBER <seq>", "AFTER_SEQUENCE_NUMBER
// <seq>") or to an object with "type" and, as the type needs,
// "sequenceNumber", "subSequenceNumber" (a non-negative integer naming a
// sub-record of a KPL aggregate, default 0) or "timestamp". Shards not listed start at
// "default" (LATEST when absent). The Spark connector's offset JSON
// (KinesisV2SourceOffset: a "metadata" object and per-shard "iteratorType",
// "iteratorPosition", "subSequenceNumber", "isLast") is accepted too, so a
// Spark query's offsets/N can seed a shardflow query.
//
// A timestamp more than [MaxTimestampSkew] after now is rejected.
func ParseStartingPosition(s string, now time.Time) (StartingPosition, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		return parsePositionJSON(s, now)
	}
	p, err := parsePositionKeyword(s, now, false)
	if err != nil {
		return StartingPosition{}, err
	}
	return StartingPosition{Type: p.Type, Timestamp: p.Timestamp}, nil
}

// parsePositionKeyword parses "LATEST", "TRIM_HORIZON", "EARLIEST",
// "AT_TIMESTAMP <time>" and, when withSeq is set, "AT_SEQUENCE_NUMBER <seq>"
// and "AFTER_SEQUENCE_NUMBER <seq>".
func parsePositionKeyword(s string, now time.Time, withSeq bool) (ShardPosition, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return ShardPosition{}, fmt.Errorf("empty position")
	}
	typ := PositionType(strings.ToUpper(fields[0]))
	if typ == "EARLIEST" {
		typ = PositionTrimHorizon
	}
	p := ShardPosition{Type: typ}
	switch typ {
	case PositionLatest, PositionTrimHorizon:
		if len(fields) != 1 {
			return ShardPosition{}, fmt.Errorf("%s takes no argument", typ)
		}
		return p, nil
	case PositionAtTimestamp:
		if len(fields) != 2 {
			return ShardPosition{}, fmt.Errorf("AT_TIMESTAMP needs exactly one RFC 3339 time, e.g. AT_TIMESTAMP 2026-11-25T10:00:00Z")
		}
		t, err := parsePositionTime(fields[1], now)
		if err != nil {
			return ShardPosition{}, err
		}
		p.Timestamp = t
		return p, nil
	case PositionAtSequenceNumber, PositionAfterSequenceNumber:
		if !withSeq {
			break
		}
		if len(fields) != 2 {
			return ShardPosition{}, fmt.Errorf("%s needs exactly one sequence number", typ)
		}
		if err := checkSeq(fields[1]); err != nil {
			return ShardPosition{}, err
		}
		p.SequenceNumber = fields[1]
		return p, nil
	}
	if withSeq {
		return ShardPosition{}, fmt.Errorf("unknown position %q: use TRIM_HORIZON, LATEST, AT_TIMESTAMP <time>, AT_SEQUENCE_NUMBER <seq> or AFTER_SEQUENCE_NUMBER <seq>", fields[0])
	}
	return ShardPosition{}, fmt.Errorf("unknown position %q", fields[0])
}

// parsePositionTime parses an RFC 3339 time (letters case-insensitive) and
// rejects times more than MaxTimestampSkew after now.
func parsePositionTime(s string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339 (e.g. 2026-11-25T10:00:00Z or 2026-11-25T10:00:00.123+05:30)", s)
	}
	return checkPositionTime(t, now)
}

func checkPositionTime(t, now time.Time) (time.Time, error) {
	if t.After(now.Add(MaxTimestampSkew)) {
		return time.Time{}, fmt.Errorf("time %s is in the future (this machine's clock says %s; at most %s ahead is accepted): every record written until then would be skipped",
			t.Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339), MaxTimestampSkew)
	}
	return t.UTC(), nil
}

func checkSeq(seq string) error {
	if !seqNumberRE.MatchString(seq) {
		return fmt.Errorf("sequence number %q is not a Kinesis sequence number (0, or 1 to 129 decimal digits without a leading zero)", seq)
	}
	return nil
}

// parsePositionJSON parses the JSON form. Every problem is reported, shards
// in sorted order.
func parsePositionJSON(s string, now time.Time) (StartingPosition, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &top); err != nil {
		return StartingPosition{}, fmt.Errorf("not a JSON object: %v", err)
	}
	pos := StartingPosition{Type: PositionShards, Default: PositionLatest, Shards: map[string]ShardPosition{}}
	var problems []string
	for _, key := range slices.Sorted(maps.Keys(top)) {
		raw := top[key]
		switch key {
		case "metadata":
			// The Spark offset's {"batchId": ..., "streamName": ...}: only
			// its shape is checked; the stream is the query's own.
			var md map[string]any
			if err := json.Unmarshal(raw, &md); err != nil {
				problems = append(problems, `"metadata" must be an object`)
			}
			continue
		case "default":
			var d string
			if err := json.Unmarshal(raw, &d); err != nil {
				problems = append(problems, `"default" must be a string: LATEST, TRIM_HORIZON, EARLIEST or AT_TIMESTAMP <time>`)
				continue
			}
			p, err := parsePositionKeyword(d, now, false)
			if err != nil {
				problems = append(problems, fmt.Sprintf(`"default": %v`, err))
				continue
			}
			pos.Default, pos.Timestamp = p.Type, p.Timestamp
			continue
		}
		if !shardIDRE.MatchString(key) {
			problems = append(problems, fmt.Sprintf(`key %q is neither "default", "metadata" nor a shard id (letters, digits, "_", ".", "-"; at most 128)`, key))
			continue
		}
		sp, err := parseShardPosition(raw, now)
		if err != nil {
			problems = append(problems, fmt.Sprintf("shard %q: %v", key, err))
			continue
		}
		pos.Shards[key] = sp
	}
	if len(problems) > 0 {
		return StartingPosition{}, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	if len(pos.Shards) == 0 {
		// {} or a Spark initial offset: just the default.
		return StartingPosition{Type: pos.Default, Timestamp: pos.Timestamp}, nil
	}
	return pos, nil
}

// shardPositionFields are the fields of a shard object in shardflow's form;
// sparkPositionFields those of the Spark connector's KinesisV2SourceOffset.
var (
	shardPositionFields = []string{"type", "sequenceNumber", "subSequenceNumber", "timestamp"}
	sparkPositionFields = []string{"iteratorType", "iteratorPosition", "subSequenceNumber", "isLast"}
)

func parseShardPosition(raw json.RawMessage, now time.Time) (ShardPosition, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return ShardPosition{}, err
		}
		return parsePositionKeyword(s, now, true)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return ShardPosition{}, fmt.Errorf("must be a string or an object")
	}
	fields := shardPositionFields
	typeKey, posKey := "type", ""
	if _, spark := obj["iteratorType"]; spark {
		fields, typeKey, posKey = sparkPositionFields, "iteratorType", "iteratorPosition"
	}
	str := make(map[string]string, len(obj))
	for k, v := range obj {
		if !slices.Contains(fields, k) {
			return ShardPosition{}, fmt.Errorf("unknown field %q (fields: %s)", k, strings.Join(fields, ", "))
		}
		s, err := jsonScalar(v)
		if err != nil {
			return ShardPosition{}, fmt.Errorf("field %q: %v", k, err)
		}
		str[k] = s
	}
	typ := PositionType(strings.ToUpper(str[typeKey]))
	if typ == "EARLIEST" {
		typ = PositionTrimHorizon
	}
	p := ShardPosition{Type: typ}
	if s, ok := str["subSequenceNumber"]; ok {
		n, err := strconv.ParseInt(s, 10, 64)
		// The Spark connector writes -1 for a record that is not a KPL
		// aggregate: sub-record 0 here.
		if err != nil || n < 0 && !(posKey != "" && n == -1) {
			return ShardPosition{}, fmt.Errorf("subSequenceNumber %q must be an integer >= 0", s)
		}
		p.SubSequenceNumber = max(n, 0)
	}
	if posKey != "" {
		return sparkShardPosition(p, str, now)
	}
	switch typ {
	case PositionLatest, PositionTrimHorizon:
		if len(str) > 1 {
			return ShardPosition{}, fmt.Errorf("%s takes no other field", typ)
		}
	case PositionAtTimestamp:
		ts, ok := str["timestamp"]
		if !ok || len(str) > 2 {
			return ShardPosition{}, fmt.Errorf(`AT_TIMESTAMP needs "timestamp" (RFC 3339) and no other field`)
		}
		t, err := parsePositionTime(ts, now)
		if err != nil {
			return ShardPosition{}, err
		}
		p.Timestamp = t
	case PositionAtSequenceNumber, PositionAfterSequenceNumber:
		seq, ok := str["sequenceNumber"]
		if !ok {
			return ShardPosition{}, fmt.Errorf(`%s needs "sequenceNumber"`, typ)
		}
		if _, ok := str["timestamp"]; ok {
			return ShardPosition{}, fmt.Errorf(`%s takes no "timestamp"`, typ)
		}
		if err := checkSeq(seq); err != nil {
			return ShardPosition{}, err
		}
		p.SequenceNumber = seq
	default:
		return ShardPosition{}, fmt.Errorf(`"type" %q must be TRIM_HORIZON, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER`, str[typeKey])
	}
	return p, nil
}

// sparkShardPosition maps a KinesisV2SourceOffset shard entry.
func sparkShardPosition(p ShardPosition, str map[string]string, now time.Time) (ShardPosition, error) {
	arg := str["iteratorPosition"]
	switch p.Type {
	case PositionLatest, PositionTrimHorizon:
	case PositionAtTimestamp:
		ms, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || ms < 0 {
			return ShardPosition{}, fmt.Errorf("AT_TIMESTAMP iteratorPosition %q must be epoch milliseconds", arg)
		}
		t, err := checkPositionTime(time.UnixMilli(ms), now)
		if err != nil {
			return ShardPosition{}, err
		}
		p.Timestamp = t
	case PositionAtSequenceNumber, PositionAfterSequenceNumber:
		if err := checkSeq(arg); err != nil {
			return ShardPosition{}, err
		}
		p.SequenceNumber = arg
		// isLast (the sub-record is the aggregate's last) adds nothing:
		// after the last sub-record is after the whole record.
		if last, ok := str["isLast"]; ok {
			if _, err := strconv.ParseBool(last); err != nil {
				return ShardPosition{}, fmt.Errorf("isLast %q must be true or false", last)
			}
		}
	case "SHARD_END":
		return ShardPosition{}, fmt.Errorf("SHARD_END is not a starting position: leave the shard out (it is read to its end) or give the last sequence number with AFTER_SEQUENCE_NUMBER")
	default:
		return ShardPosition{}, fmt.Errorf(`"iteratorType" %q must be TRIM_HORIZON, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER`, str["iteratorType"])
	}
	return p, nil
}

// jsonScalar returns a JSON string, number or boolean as text.
func jsonScalar(raw json.RawMessage) (string, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v), nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", fmt.Errorf("must be a string, a number or a boolean")
}

// String returns p in the form ParseStartingPosition reads: a keyword, or
// compact JSON with sorted keys for PositionShards.
func (p StartingPosition) String() string {
	if p.Type != PositionShards {
		return positionKeyword(p.Type, p.Timestamp)
	}
	m := make(map[string]any, len(p.Shards)+1)
	m["default"] = positionKeyword(p.Default, p.Timestamp)
	for id, sp := range p.Shards {
		m[id] = sp.jsonValue()
	}
	b, err := json.Marshal(m)
	if err != nil {
		// Only strings, ints and maps of them: Marshal cannot fail.
		panic(err)
	}
	return string(b)
}

func positionKeyword(t PositionType, ts time.Time) string {
	if t == PositionAtTimestamp {
		return string(t) + " " + ts.UTC().Format(time.RFC3339Nano)
	}
	return string(t)
}

// jsonValue is the shard's entry in String's JSON.
func (sp ShardPosition) jsonValue() any {
	switch sp.Type {
	case PositionAtSequenceNumber, PositionAfterSequenceNumber:
		o := map[string]any{"type": sp.Type, "sequenceNumber": sp.SequenceNumber}
		if sp.SubSequenceNumber > 0 {
			o["subSequenceNumber"] = sp.SubSequenceNumber
		}
		return o
	}
	return positionKeyword(sp.Type, sp.Timestamp)
}
