package shardflow

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// kind is an option's value type.
type kind int

const (
	kindString   kind = iota + 1
	kindInt           // int64
	kindBool          // bool
	kindEnum          // string, one of spec.values (canonical spelling)
	kindDuration      // time.Duration; a bare number is in spec.unit
	kindBytes         // int64 bytes; a bare number is bytes
	kindPosition      // StartingPosition
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindInt:
		return "int"
	case kindBool:
		return "bool"
	case kindEnum:
		return "enum"
	case kindDuration:
		return "duration"
	case kindBytes:
		return "size"
	case kindPosition:
		return "position"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// spec is one row of the registry: one option in one scope.
type spec struct {
	name     string // the Spark key (or shardflow extension), display case
	scope    OptionScope
	kind     kind
	def      string        // default as a user would write it; "" = none
	unit     time.Duration // kindDuration: the unit of a bare number
	lo, hi   *int64        // inclusive bounds: ints, bytes, durations (ns)
	values   []string      // kindEnum: canonical spellings
	accept   string        // overrides the generated "accepted" text
	required bool
	doc      string
	ext      bool // a shardflow extension, not a Spark connector key
	secret   bool // masked in messages and listings, left out of Options.Map
	status   OptionStatus
	// why is the short reason in warnings (ignored, reserved) and errors
	// (not supported).
	why string
	// check validates a parsed value beyond its type and bounds.
	check func(v any) error
	// warnIf limits a reserved option's warning to some values.
	warnIf func(v any) bool
	// bad lists example invalid values (tests try each); anyValue says why
	// an option has none.
	bad      []string
	anyValue string

	defValue any // def parsed at init
}

func bound(n int64) *int64 { return &n }

// parse reads one trimmed value. The value is returned with a non-nil error
// when only a bound or check failed, so rules spanning options still see it.
func (sp *spec) parse(val string, now time.Time) (any, error) {
	var v any
	var n int64 // for bounds
	switch sp.kind {
	case kindString:
		v = val
	case kindInt:
		i, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("not an integer")
		}
		v, n = i, i
	case kindBool:
		switch {
		case strings.EqualFold(val, "true"):
			v = true
		case strings.EqualFold(val, "false"):
			v = false
		default:
			return nil, fmt.Errorf("not a boolean")
		}
	case kindEnum:
		for _, c := range sp.values {
			if strings.EqualFold(val, c) {
				v = c
			}
		}
		if v == nil {
			return nil, fmt.Errorf("unknown value")
		}
	case kindDuration:
		d, err := parseSparkDuration(val, sp.unit)
		if err != nil {
			return nil, err
		}
		v, n = d, int64(d)
	case kindBytes:
		b, err := parseByteSize(val)
		if err != nil {
			return nil, err
		}
		v, n = b, b
	case kindPosition:
		p, err := ParseStartingPosition(val, now)
		if err != nil {
			return nil, err
		}
		v = p
	}
	if sp.lo != nil && n < *sp.lo {
		return v, fmt.Errorf("too small")
	}
	if sp.hi != nil && n > *sp.hi {
		return v, fmt.Errorf("too large")
	}
	if sp.check != nil {
		if err := sp.check(v); err != nil {
			return v, err
		}
	}
	return v, nil
}

// format is the canonical text of a parsed value, which parse reads back.
func (sp *spec) format(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case time.Duration:
		return formatDuration(v, sp.unit)
	case StartingPosition:
		return v.String()
	}
	panic(fmt.Sprintf("shardflow: option %q: unexpected value type %T", sp.name, v))
}

// accepts describes the accepted values, for errors and docs.
func (sp *spec) accepts() string {
	if sp.accept != "" {
		return sp.accept
	}
	switch sp.status {
	case StatusIgnored:
		return "anything (ignored)"
	case StatusNotYet, StatusUnsupported:
		return string(sp.status)
	}
	switch sp.kind {
	case kindInt:
		return "an integer" + sp.rangeText(func(n int64) string { return strconv.FormatInt(n, 10) })
	case kindBool:
		return "true or false"
	case kindEnum:
		return strings.Join(sp.values, " or ")
	case kindDuration:
		unit := "milliseconds"
		if sp.unit == time.Second {
			unit = "seconds"
		}
		return "a duration" + sp.rangeText(func(n int64) string { return time.Duration(n).String() }) +
			": a bare number of " + unit + ", or a number with a unit (us, ms, s, m, min, h, d), e.g. 500ms, 5s, 1m"
	case kindBytes:
		return "a size" + sp.rangeText(formatBytes) +
			": a bare number of bytes, or a number with a unit (k, m, g or KiB, MiB, GiB; 1024-based), e.g. 512k, 64MiB"
	case kindPosition:
		return startingPositionAccepts
	}
	return "any string"
}

func (sp *spec) rangeText(f func(int64) string) string {
	switch {
	case sp.lo != nil && sp.hi != nil:
		return " from " + f(*sp.lo) + " to " + f(*sp.hi)
	case sp.lo != nil:
		return " >= " + f(*sp.lo)
	case sp.hi != nil:
		return " <= " + f(*sp.hi)
	}
	return ""
}

// errorf builds an OptionError for a value of sp, masking secrets.
func (sp *spec) errorf(key, val, format string, args ...any) error {
	if sp.secret && val != "" {
		val = secretMask
	}
	return &OptionError{Key: key, Value: val, Err: fmt.Errorf(format, args...)}
}

// wrapError turns a parse problem into an OptionError that says what is
// accepted.
func (sp *spec) wrapError(key, val string, err error) error {
	return sp.errorf(key, val, "%w; accepted: %s", err, sp.accepts())
}

// parseSparkDuration reads a Spark time string: a bare integer in unit, or
// an integer with a suffix (us, ms, s, m, min, h, d). Go durations ("1.5s",
// "1m30s") are accepted too.
func parseSparkDuration(s string, unit time.Duration) (time.Duration, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	num, suffix := splitNumber(s)
	mult := unit
	if suffix != "" {
		mult = map[string]time.Duration{
			"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute,
			"min": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
		}[suffix]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 {
		if d, gerr := time.ParseDuration(s); gerr == nil && s != "" {
			return d, nil
		}
		return 0, fmt.Errorf("not a duration")
	}
	if n > math.MaxInt64/int64(mult) || n < math.MinInt64/int64(mult) {
		return 0, fmt.Errorf("duration too large")
	}
	return time.Duration(n) * mult, nil
}

// formatDuration writes d so that parseSparkDuration(…, unit) reads it back.
func formatDuration(d, unit time.Duration) string {
	switch {
	case d%unit == 0:
		return strconv.FormatInt(int64(d/unit), 10)
	case d%time.Millisecond == 0:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d%time.Microsecond == 0:
		return strconv.FormatInt(d.Microseconds(), 10) + "us"
	}
	return d.String()
}

// parseByteSize reads a Spark byte string: a bare number of bytes, or a
// number with a 1024-based suffix (k, kb, kib, m, mb, mib, g, ...).
func parseByteSize(s string) (int64, error) {
	num, suffix := splitNumber(strings.ToLower(strings.TrimSpace(s)))
	shift, ok := map[string]uint{"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20,
		"g": 30, "gb": 30, "gib": 30, "t": 40, "tb": 40, "tib": 40}[suffix]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || !ok {
		return 0, fmt.Errorf("not a size")
	}
	if n > math.MaxInt64>>shift || n < math.MinInt64>>shift {
		return 0, fmt.Errorf("size too large")
	}
	return n << shift, nil
}

// formatBytes writes a size in the largest exact binary unit.
func formatBytes(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// splitNumber splits "-12ms" into "-12" and "ms" (spaces between allowed).
func splitNumber(s string) (num, suffix string) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// matchString returns a check that the value matches re, explaining what.
func matchString(re *regexp.Regexp, what string) func(any) error {
	return func(v any) error {
		if !re.MatchString(v.(string)) {
			return fmt.Errorf("not %s", what)
		}
		return nil
	}
}

var (
	streamNameRE   = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
	regionRE       = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	consumerNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
	consumerARNRE  = regexp.MustCompile(`^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:[0-9]{12}:stream/[a-zA-Z0-9_.-]{1,128}/consumer/[a-zA-Z0-9_.-]{1,128}:[0-9]+$`)
	ddbTableRE     = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)
	roleARNRE      = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
	sessionNameRE  = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	checkpointIDRE = regexp.MustCompile(`^[^@#\x00-\x1f\x7f]{1,512}$`)
	workerIDRE     = regexp.MustCompile(`^[a-zA-Z0-9_.:=-]{1,128}$`)
)

func checkStreamName(v any) error {
	if strings.HasPrefix(v.(string), "arn:") {
		return fmt.Errorf("a stream ARN; give the stream's name")
	}
	return matchString(streamNameRE, "a stream name")(v)
}

func checkEndpoint(v any) error {
	u, err := url.Parse(v.(string))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("not an http:// or https:// URL with a host")
	}
	return nil
}

// Texts shared by several rows.
const (
	streamNameAccepts = "a stream name: 1 to 128 letters, digits, '_', '.' or '-' (not an ARN)"
	regionAccepts     = "a region name in lower case, e.g. us-east-1"
	endpointAccepts   = "an http:// or https:// URL, e.g. http://127.0.0.1:4567"
	credsAnyValue     = "any string; kinesis.awsAccessKeyId and kinesis.awsSecretKey go together, kinesis.sessionToken needs both (checked together)"
	metadataWhy       = "retries of the Spark connector's metadata side store, which shardflow does not have: shard positions live in the checkpoint (checkpointLocation)"
	idleWhy           = "idle detection of the Spark connector's per-batch tasks; shardflow's readers live across batches and a batch is cut from what is buffered, so there is no idle wait"
	proxyWhy          = "KPL proxy setting; shardflow has no KPL and uses Go's standard proxy environment (HTTPS_PROXY, NO_PROXY) instead"
)

// awsSpecs are the options the source and the Kinesis sink share: stream,
// region, endpoint, credentials and the retry layer.
func awsSpecs(scope OptionScope) []spec {
	sink := scope == ScopeSink
	regionDoc := "AWS region of the Kinesis client when kinesis.kinesisRegion is not set. Optional: when absent it comes from the SDK configuration (AWS_REGION, the shared profile), then from an AWS Kinesis host name in kinesis.endpointUrl."
	endpointDoc := "Kinesis endpoint override, e.g. an emulator's http://127.0.0.1:4567. Optional (the Spark connector requires it): when absent the SDK's endpoint for the region is used."
	streamDoc := "Name of the stream to read (the name, not the ARN)."
	tokenDoc := "Static credentials: the session token of temporary credentials; needs kinesis.awsAccessKeyId and kinesis.awsSecretKey. Not in the Spark connector's README, but read by its source."
	if sink {
		streamDoc = "Name of the stream to write to (the name, not the ARN)."
		tokenDoc = "Static credentials: the session token of temporary credentials; needs kinesis.awsAccessKeyId and kinesis.awsSecretKey. The Spark connector's sink ignores it; shardflow's sink honours it."
		regionDoc = "AWS region of the Kinesis client. Optional (the Spark connector's sink requires it): when absent it comes from the SDK configuration (AWS_REGION, the shared profile), then from an AWS Kinesis host name in kinesis.endpointUrl."
		endpointDoc += " Unlike the Spark connector's sink, shardflow's sink honours it."
	}
	retryExt := sink // the Spark sink retries inside the KPL; these are source keys
	retryNote := ""
	if sink {
		retryNote = " Same key as the source option (the Spark connector's sink retries inside the KPL and has no such option)."
	}
	return []spec{
		{name: "kinesis.streamName", kind: kindString, required: true, check: checkStreamName, accept: streamNameAccepts,
			doc: streamDoc,
			bad: []string{"", "arn:aws:kinesis:us-east-1:123456789012:stream/orders", "my stream"}},
		{name: "kinesis.region", kind: kindString, check: matchString(regionRE, "a region name"), accept: regionAccepts,
			doc: regionDoc, bad: []string{"US_EAST_1", "us east 1"}},
		{name: "kinesis.endpointUrl", kind: kindString, check: checkEndpoint, accept: endpointAccepts,
			doc: endpointDoc, bad: []string{"kinesis.us-east-1.amazonaws.com", "ftp://example.com/"}},
		{name: "kinesis.awsAccessKeyId", kind: kindString, secret: true, anyValue: credsAnyValue, accept: "any string, with kinesis.awsSecretKey",
			doc: "Static credentials: the access key id. Goes with kinesis.awsSecretKey. When neither is set, the SDK's default chain is used (environment, shared profile, web identity, container or instance role)."},
		{name: "kinesis.awsSecretKey", kind: kindString, secret: true, anyValue: credsAnyValue, accept: "any string, with kinesis.awsAccessKeyId",
			doc: "Static credentials: the secret access key. Goes with kinesis.awsAccessKeyId."},
		{name: "kinesis.sessionToken", kind: kindString, secret: true, anyValue: credsAnyValue, accept: "any string, with both static keys",
			doc: tokenDoc},
		{name: "kinesis.stsRoleArn", kind: kindString, check: matchString(roleARNRE, "an IAM role ARN"), accept: "an IAM role ARN, e.g. arn:aws:iam::123456789012:role/reader, with kinesis.stsSessionName",
			doc: "Role to assume with STS AssumeRole, e.g. to read another account's stream; needs kinesis.stsSessionName. The base credentials are the static keys when set, else the SDK's default chain. The assumed credentials are cached and refreshed before they expire; the same credentials serve the checkpoint stores (S3, DynamoDB).",
			bad: []string{"reader", "arn:aws:iam::123:role/x"}},
		{name: "kinesis.stsSessionName", kind: kindString, check: matchString(sessionNameRE, "a role session name"), accept: "2 to 64 letters, digits or =,.@-_, with kinesis.stsRoleArn",
			doc: "Session name for the assumed role; goes with kinesis.stsRoleArn.", bad: []string{"a", "has space"}},
		{name: "kinesis.stsEndpointUrl", kind: kindString, check: checkEndpoint, accept: endpointAccepts,
			doc: "STS endpoint for assuming kinesis.stsRoleArn. Optional: AWS_ENDPOINT_URL_STS, or the SDK's regional endpoint.", bad: []string{"sts.us-east-1.amazonaws.com"}},
		{name: "shardflow.sts.externalId", kind: kindString, ext: true, secret: true, anyValue: "any string, with kinesis.stsRoleArn",
			doc: "External ID passed to STS AssumeRole with kinesis.stsRoleArn, when the role's trust policy asks for one. Masked in messages like a secret."},
		{name: "kinesis.credentialProviderClass", kind: kindString, status: StatusUnsupported,
			why: "it names a Java class implementing ConnectorAwsCredentialsProvider, which cannot run in Go; use kinesis.awsAccessKeyId and kinesis.awsSecretKey, kinesis.stsRoleArn, the SDK's default chain (environment, profile, web identity, container or instance role), or from Go the kds.AWSConfig.CredentialsProvider hook",
			doc: "A Java credentials provider class.", bad: []string{"com.example.MyCredentialsProvider"}},
		{name: "kinesis.credentialProviderParam", kind: kindString, status: StatusUnsupported, secret: true,
			why: "it is the argument of kinesis.credentialProviderClass, a Java class",
			doc: "The argument passed to kinesis.credentialProviderClass.", bad: []string{"some-parameter"}},
		{name: "kinesis.clientNumRetries", kind: kindInt, def: "5", lo: bound(1), ext: retryExt,
			doc: "Attempts per Kinesis API call, the first one included. Throttling, 5xx and network errors are retried with full-jitter exponential backoff; the SDK's own retryer is off so the two never stack. 0 is rejected: it would fail every call." + retryNote,
			bad: []string{"0", "-3", "five"}},
		{name: "kinesis.clientRetryIntervalsMs", kind: kindDuration, unit: time.Millisecond, def: "1000", lo: bound(0), ext: retryExt,
			doc: "First backoff between two attempts of a Kinesis API call; it doubles up to kinesis.clientMaxRetryIntervalMs." + retryNote,
			bad: []string{"-1", "soon"}},
		{name: "kinesis.clientMaxRetryIntervalMs", kind: kindDuration, unit: time.Millisecond, def: "10000", lo: bound(0), ext: retryExt,
			doc: "Longest backoff between two attempts of a Kinesis API call." + retryNote,
			bad: []string{"-5", "10 parsecs"}},
	}
}

func sourceSpecs() []spec {
	return []spec{
		{name: "kinesis.kinesisRegion", kind: kindString, check: matchString(regionRE, "a region name"), accept: regionAccepts,
			doc: "AWS region of the Kinesis client; wins over kinesis.region (cross-region reads).", bad: []string{"EU-WEST-1"}},
		{name: "kinesis.consumerType", kind: kindEnum, def: "GetRecords", values: []string{"GetRecords", "SubscribeToShard"},
			doc: "How shards are read: GetRecords polls (throughput shared with the stream's other polling consumers); SubscribeToShard is enhanced fan-out (a registered consumer with its own 2 MB/s per shard, events pushed over HTTP/2; one long-lived subscription per shard, renewed from the continuation sequence number). Case-insensitive. SubscribeToShard needs kinesis.consumerName or kinesis.consumerARN and never calls GetRecords.",
			bad: []string{"Kafka", "EFO"}},
		{name: "kinesis.consumerName", kind: kindString,
			check: matchString(consumerNameRE, "a consumer name"), accept: "a consumer name: 1 to 128 letters, digits, '_', '.' or '-'",
			doc: "Enhanced fan-out consumer name, required when kinesis.consumerType is SubscribeToShard (unless kinesis.consumerARN is given). It is registered if missing (see kinesis.consumerRegistration); use one name per query: Kinesis allows one subscription per consumer and shard.", bad: []string{"my consumer"}},
		{name: "kinesis.consumerARN", kind: kindString, ext: true,
			check: matchString(consumerARNRE, "a stream consumer ARN"), accept: "a stream consumer ARN: arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<name>:<timestamp>",
			doc: "Enhanced fan-out: an existing consumer to read with. shardflow never registers or deregisters it. Wins over kinesis.consumerName.",
			bad: []string{"orders-etl", "arn:aws:kinesis:us-east-1:123456789012:stream/orders"}},
		{name: "kinesis.consumerRegistration", kind: kindEnum, def: "auto", values: []string{"auto", "register-only"}, ext: true,
			doc: "Enhanced fan-out consumer lifecycle. auto: register kinesis.consumerName if missing and deregister it on a graceful stop, only if this query registered it (recorded in the checkpoint, sources/0). register-only: register if missing, never deregister. Not used with kinesis.consumerARN.",
			bad: []string{"always", "none"}},
		{name: "kinesis.failOnDataLoss", kind: kindBool, def: "false",
			doc: "true: fail the query, naming the shard, when a shard that was not read to its end vanishes (trimmed by retention) or cannot be read any more. false: log it, count it and go on.",
			bad: []string{"yes", "1"}},
		{name: "kinesis.maxFetchRecordsPerShard", kind: kindInt, def: "100000", lo: bound(1),
			doc: "Most records one batch takes from one shard.", bad: []string{"0", "-1", "lots"}},
		{name: "kinesis.maxFetchTimePerShardSec", kind: kindDuration, unit: time.Second, lo: bound(int64(10 * time.Second)),
			doc: "Longest time a Once or AvailableNow batch waits for a shard to catch up before it is cut anyway; ProcessingTime batches never wait (they are cut from what is buffered). Unset: no limit. At least 10 seconds, as in the Spark connector.",
			bad: []string{"5", "-1", "9s", "ten"}},
		{name: "kinesis.startingPosition", kind: kindPosition, def: "LATEST",
			doc: "Where shards with no position in the checkpoint start: LATEST (resolved once, at the query's first start, to a timestamp kept in the checkpoint, so a restart skips nothing), TRIM_HORIZON or EARLIEST (the oldest record kept), AT_TIMESTAMP <RFC 3339 time> (at most 1 minute in the future), or a JSON object of per-shard positions (see above). Validated when options are parsed.",
			bad: []string{"NEWEST", "AT_TIMESTAMP 2026-13-01T00:00:00Z", "AT_TIMESTAMP 2026-11-25 10:00:00", "AT_TIMESTAMP 2999-01-01T00:00:00Z",
				`{"shardId-000000000000": {"type": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "0123"}}`, `{"shardId-000000000000": 7}`}},
		{name: "kinesis.describeShardInterval", kind: kindDuration, unit: time.Millisecond, def: "1s", lo: bound(0),
			doc: "Least time between two ListShards calls, which discover new shards after resharding. A Spark time string; a bare number is milliseconds.",
			bad: []string{"-1s", "often"}},
		{name: "kinesis.minBatchesToRetain", kind: kindInt, def: "100", lo: bound(1),
			doc: "Batches whose offset and commit log entries are kept; older entries are purged after a commit.", bad: []string{"0"}},
		{name: "kinesis.checkNewRecordThreads", kind: kindInt, def: "8", status: StatusIgnored,
			why: "the Spark driver probes shards for new data with this thread pool; shardflow's long-lived readers report what they buffered, so nothing probes",
			doc: "Spark: driver threads probing shards for new data."},
		{name: "kinesis.metadataCommitterType", kind: kindEnum, def: "HDFS", values: []string{"HDFS", "DYNAMODB"},
			doc: "Where the checkpoint lives. HDFS: at checkpointLocation (a local directory, file:// URL or s3://bucket/prefix; hdfs:// is not supported). DYNAMODB: in the DynamoDB table kinesis.dynamodb.tableName, keyed by checkpointLocation (or shardflow.dynamodb.checkpointId), with a generation id kept at checkpointLocation so that deleting that location starts a new checkpoint. See docs/checkpoint-format.md.",
			bad: []string{"S3", "HDFS2"}},
		{name: "kinesis.metadataPath", kind: kindString, status: StatusIgnored,
			why: "the Spark connector's side store of per-shard end positions; shardflow keeps positions in the checkpoint's offsets log under checkpointLocation",
			doc: "Spark: root of the HDFS metadata committer."},
		{name: "kinesis.metadataNumRetries", kind: kindInt, def: "5", status: StatusIgnored, why: metadataWhy,
			doc: "Spark: attempts of metadata committer operations."},
		{name: "kinesis.metadataRetryIntervalsMs", kind: kindDuration, unit: time.Millisecond, def: "1000", status: StatusIgnored, why: metadataWhy,
			doc: "Spark: first backoff of metadata committer retries."},
		{name: "kinesis.metadataMaxRetryIntervalMs", kind: kindDuration, unit: time.Millisecond, def: "10000", status: StatusIgnored, why: metadataWhy,
			doc: "Spark: longest backoff of metadata committer retries."},
		{name: "kinesis.dynamodb.tableName", kind: kindString, def: "shardflow-checkpoints",
			check: matchString(ddbTableRE, "a DynamoDB table name"), accept: "a DynamoDB table name: 3 to 255 letters, digits, '_', '.' or '-'",
			doc: "DynamoDB table of the checkpoint with kinesis.metadataCommitterType=DYNAMODB. Created (PAY_PER_REQUEST) if missing. One table safely serves many queries: items are keyed by each query's checkpoint (unlike the Spark connector's per-stream table).",
			bad: []string{"ab", "my table"}},
		{name: "shardflow.dynamodb.checkpointId", kind: kindString, ext: true, check: matchString(checkpointIDRE, "a checkpoint id"),
			accept: "1 to 512 characters, none of them '@', '#' or a control character",
			doc:    "With kinesis.metadataCommitterType=DYNAMODB: the checkpoint's key in the table. Default: checkpointLocation made absolute (a local path becomes file:///abs/path). Two queries with different ids never share an item.",
			bad:    []string{"a@b", "x#y"}},
		{name: "shardflow.dynamodb.endpointUrl", kind: kindString, ext: true, check: checkEndpoint, accept: endpointAccepts,
			doc: "DynamoDB endpoint of the checkpoint store, e.g. dynalite's http://127.0.0.1:4567. Optional: AWS_ENDPOINT_URL_DYNAMODB, or the SDK's endpoint for the region.", bad: []string{"dynamodb", "ftp://x/"}},
		{name: "shardflow.dynamodb.region", kind: kindString, ext: true, check: matchString(regionRE, "a region name"), accept: regionAccepts,
			doc: "Region of the DynamoDB checkpoint table. Optional: kinesis.region, then the SDK's configuration.", bad: []string{"US_EAST_1"}},
		{name: "shardflow.coordination", kind: kindEnum, ext: true, def: "NONE", values: []string{"NONE", "DYNAMODB"},
			doc: "Worker mode. NONE: this process reads every shard. DYNAMODB: several processes running the same job share the stream's shards through a lease table in DynamoDB (shardflow.lease.tableName), as the Kinesis Client Library does; each runs its own micro-batches under checkpointLocation/workers/<worker id>, which every worker must be able to read (an S3 prefix or a DynamoDB checkpoint across machines). See docs/workers.md.",
			bad: []string{"ZOOKEEPER", "yes"}},
		{name: "shardflow.workerId", kind: kindString, ext: true, check: matchString(workerIDRE, "a worker id"),
			accept: "1 to 128 letters, digits, '_', '.', ':', '=' or '-'",
			doc:    "Worker mode: this worker's id (also shardflow run --worker-id). Default: host name, process id and a random suffix. A worker restarted with the same id resumes its own leases at once.",
			bad:    []string{"has space", "a/b"}},
		{name: "shardflow.lease.tableName", kind: kindString, ext: true, check: matchString(ddbTableRE, "a DynamoDB table name"),
			accept: "a DynamoDB table name: 3 to 255 letters, digits, '_', '.' or '-'",
			doc:    "Worker mode: the lease table (hash key leaseKey; created PAY_PER_REQUEST if missing). Default: kinesis.dynamodb.tableName with \"-leases\" appended, when that is set. One table per job: it records the stream and checkpointLocation it serves and refuses others.",
			bad:    []string{"ab", "my table"}},
		{name: "shardflow.lease.time", kind: kindDuration, ext: true, unit: time.Second, def: "10s", lo: bound(int64(300 * time.Millisecond)), hi: bound(int64(time.Hour)),
			doc: "Worker mode: a worker that stops renewing (killed, paused, cut off) loses its leases after this long, judged by each other worker's own clock; its shards are then taken over. A worker stops handing a shard's records to the sink once its last renewal is older than four fifths of this. A bare number is seconds.",
			bad: []string{"0", "100ms", "2h"}},
		{name: "shardflow.lease.renewInterval", kind: kindDuration, ext: true, unit: time.Second, lo: bound(int64(50 * time.Millisecond)),
			doc: "Worker mode: how often a worker renews its leases, writing each one's committed position with the renewal (one write per lease per interval). Default: a third of shardflow.lease.time; at most half of it.",
			bad: []string{"0", "-1s"}},
		{name: "shardflow.lease.takeInterval", kind: kindDuration, ext: true, unit: time.Second, lo: bound(int64(50 * time.Millisecond)),
			doc: "Worker mode: how often a worker scans the lease table to create leases for new shards, take unowned and expired ones, and balance. Default: half of shardflow.lease.renewInterval, so that a dead worker's shards are taken over within shardflow.lease.time plus one renewal interval.",
			bad: []string{"0", "-1s"}},
		{name: "shardflow.lease.maxStealsAtOneTime", kind: kindInt, ext: true, def: "1", lo: bound(1),
			doc: "Worker mode: the most leases a worker below an even share asks of the busiest worker per take interval. The owner hands each one over after committing its running batch.",
			bad: []string{"0", "-1"}},
		{name: "shardflow.lease.importKclTable", kind: kindString, ext: true, check: matchString(ddbTableRE, "a DynamoDB table name"),
			accept: "a DynamoDB table name",
			doc:    "Worker mode: when the lease table is new, start it from the checkpoints of this Kinesis Client Library application's lease table (read once with Scan, never written), so a KCL consumer migrates without reprocessing or skipping. Stop the KCL application first.",
			bad:    []string{"a b"}},
		{name: "shardflow.s3.endpointUrl", kind: kindString, ext: true, check: checkEndpoint, accept: endpointAccepts,
			doc: "S3 endpoint of an s3:// checkpointLocation, for S3-compatible stores (MinIO, gofakes3). Optional: AWS_ENDPOINT_URL_S3, or the SDK's endpoint for the region.", bad: []string{"s3.amazonaws.com", "ftp://x/"}},
		{name: "shardflow.s3.region", kind: kindString, ext: true, check: matchString(regionRE, "a region name"), accept: regionAccepts,
			doc: "Region of the checkpoint bucket. Optional: kinesis.region, then the SDK's configuration.", bad: []string{"Eu-West-1"}},
		{name: "shardflow.s3.pathStyle", kind: kindEnum, ext: true, def: "auto", values: []string{"auto", "true", "false"},
			doc: "S3 path-style addressing (http://host/bucket/key) for the checkpoint bucket. auto: on when the S3 endpoint is an IP address or localhost, else virtual-hosted style.", bad: []string{"yes"}},
		{name: "shardflow.checkpoint.leaseTime", kind: kindDuration, ext: true, unit: time.Second, def: "30s", lo: bound(int64(600 * time.Millisecond)), hi: bound(int64(time.Hour)),
			doc: "S3 and DynamoDB checkpoints: the lease a running query holds on its checkpoint, renewed every sixth of it. A second query on the same checkpoint is refused within a sixth of it; after a crash (SIGKILL, lost machine) the next start waits at most this long. A graceful stop releases the lease at once. A bare number is seconds.",
			bad: []string{"0", "100ms", "2h"}},
		{name: "kinesis.subscribeToShard.timeoutSec", kind: kindDuration, unit: time.Second, def: "60", lo: bound(int64(time.Millisecond)),
			doc: "Enhanced fan-out: longest wait for a SubscribeToShard call to be accepted (its initial response); a subscription not accepted in time is cancelled and retried. A Spark time string or Go duration; a bare number is seconds.", bad: []string{"-1", "0"}},
		{name: "kinesis.subscribeToShard.maxRetries", kind: kindInt, def: "10", lo: bound(1),
			doc: "Enhanced fan-out: failed subscription attempts in a row (throttling, 5xx, network errors, read timeouts, each after a full-jitter backoff) before the query fails naming the shard and the cause. The count resets after a subscription that delivered events.", bad: []string{"0", "-1", "many"}},
		{name: "kinesis.getRecords.numberOfRecordsPerFetch", kind: kindInt, def: "10000", lo: bound(1), hi: bound(10000),
			doc: "Most records per GetRecords call (its Limit; the API allows at most 10000).", bad: []string{"0", "10001"}},
		{name: "kinesis.getRecords.fetchIntervalMs", kind: kindDuration, unit: time.Millisecond, def: "200", lo: bound(0),
			doc: "Least time between two GetRecords calls on one shard. Kinesis allows 5 calls per second per shard, shared by all the stream's polling consumers.",
			bad: []string{"-200"}},
		{name: "kinesis.internal.avoidEmptyBatches", kind: kindBool, def: "true", status: StatusIgnored,
			why: "a switch of the Spark connector's planner with no equivalent in shardflow's planner",
			doc: "Spark: plan a batch only when a shard may have new data."},
		{name: "kinesis.internal.dataQueueCapacity", kind: kindInt, def: "1000", status: StatusIgnored,
			why: "the Spark connector's per-task record queue; shardflow bounds each shard's buffer with shardflow.buffer.maxRecordsPerShard and shardflow.buffer.maxBytesPerShard",
			doc: "Spark: per-task record queue capacity."},
		{name: "kinesis.internal.maxDataQueueEmptyCount", kind: kindInt, def: "2", status: StatusIgnored, why: idleWhy,
			doc: "Spark: consecutive empty polls before a task stops."},
		{name: "kinesis.internal.dataQueueWaitTimeoutSec", kind: kindDuration, unit: time.Second, def: "5", status: StatusIgnored, why: idleWhy,
			doc: "Spark: queue poll timeout of a task."},
		{name: "kinesis.internal.maintenanceTaskIntervalSec", kind: kindDuration, unit: time.Second, def: "100", status: StatusIgnored,
			why: "the Spark connector's metadata purge timer; shardflow purges old log entries after commits (kinesis.minBatchesToRetain)",
			doc: "Spark: period of the metadata purge."},
		{name: "shardflow.buffer.maxRecordsPerShard", kind: kindInt, def: "10000", lo: bound(1), ext: true,
			doc: "Most records buffered for one shard between batches (bounded memory); a shard's reader stops fetching while its buffer is full.",
			bad: []string{"0", "-10"}},
		{name: "shardflow.buffer.maxBytesPerShard", kind: kindBytes, def: "64MiB", lo: bound(1 << 20), ext: true,
			doc: "Most bytes buffered for one shard between batches (bounded memory). At least 1 MiB, the largest Kinesis record. With enhanced fan-out the HTTP/2 transport may hold a quarter of it more per shard (its stream window: 256 KiB to 4 MiB) while the buffer is full.",
			bad: []string{"1k", "-1", "lots", "64 parsecs"}},
	}
}

func sinkSpecs() []spec {
	return []spec{
		{name: "kinesis.sink.maxConnections", kind: kindInt, def: "1", lo: bound(1), hi: bound(256),
			doc: "PutRecords calls in flight at once (the KPL's MaxConnections).", bad: []string{"0", "257"}},
		{name: "kinesis.sink.aggregationEnabled", kind: kindBool, def: "true",
			doc: "KPL aggregation: rows are packed into aggregated Kinesis records (the KPL format, read by the KCL, the Spark connector and shardflow's source), one aggregate per target shard by the stream's hash key ranges, each up to 1 MiB and put with an explicit hash key inside its shard's range. false sends one Kinesis record per row.",
			bad: []string{"maybe"}},
		{name: "kinesis.sink.recordTtl", kind: kindDuration, unit: time.Millisecond, def: "30000", lo: bound(int64(100 * time.Millisecond)),
			doc: "Longest time a row may take to be written, retries included; past it the batch fails and is retried from the checkpoint (the KPL's RecordTtl, at least 100 ms).",
			bad: []string{"50", "-1"}},
		{name: "kinesis.sink.flushWaitTimeMs", kind: kindDuration, unit: time.Millisecond, def: "100", status: StatusIgnored,
			why: "KPL flush polling; shardflow's sink has no KPL: a batch completes when all its PutRecords calls succeeded",
			doc: "Spark: sleep between KPL flushes at task end."},
		{name: "kinesis.sink.recordMaxBufferedTimeMs", kind: kindDuration, unit: time.Millisecond, def: "1000", lo: bound(0),
			doc: "With aggregation, the longest a row waits in an aggregate being filled before it is sent (the KPL's RecordMaxBufferedTime); 0 sends aggregates only when full or at the end of the batch. A batch is always written in full before it commits.",
			bad: []string{"-1"}},
		{name: "kinesis.sink.proxyAddress", kind: kindString, status: StatusIgnored, why: proxyWhy, doc: "Spark: KPL proxy host."},
		{name: "kinesis.sink.proxyPort", kind: kindInt, status: StatusIgnored, why: proxyWhy, doc: "Spark: KPL proxy port."},
		{name: "kinesis.sink.proxyUsername", kind: kindString, status: StatusIgnored, why: proxyWhy, doc: "Spark: KPL proxy user."},
		{name: "kinesis.sink.proxyPassword", kind: kindString, status: StatusIgnored, why: proxyWhy, secret: true, doc: "Spark: KPL proxy password."},
	}
}

func consoleSpecs() []spec {
	return []spec{
		{name: "numRows", kind: kindInt, def: "20", lo: bound(1),
			doc: "Rows printed per batch.", bad: []string{"0", "twenty"}},
		{name: "truncate", kind: kindBool, def: "true",
			doc: "true: cut values longer than 20 characters in the printed table, as Spark's console sink does.", bad: []string{"yes"}},
	}
}

func fileSpecs() []spec {
	return []spec{
		{name: "path", kind: kindString, required: true, accept: "a directory path",
			doc: "Directory the sink writes its files to.", bad: []string{""}},
		{name: "format", kind: kindEnum, def: "json", values: []string{"json", "csv"}, ext: true,
			doc: "File format: json (JSON lines) or csv.", bad: []string{"parquet"}},
	}
}

func querySpecs() []spec {
	return []spec{
		{name: "checkpointLocation", kind: kindString, accept: "a local directory (a path or a file:// URL) or s3://bucket/prefix",
			anyValue: "any path or URL; the checkpoint store checks it when the query starts",
			doc:      "Where the query keeps its checkpoint (metadata, offsets and commits logs): a local directory, a file:// URL, or an S3 prefix s3://bucket/prefix (the Spark connector's HDFS committer type maps to these by scheme; hdfs:// is not supported). With kinesis.metadataCommitterType=DYNAMODB the logs live in DynamoDB and this location names the checkpoint. A checkpoint belongs to one query."},
		{name: "shardflow.sql.strict", kind: kindBool, def: "false", ext: true, bad: []string{"maybe"},
			doc: "SQL stage (--sql, the job file's sql): a record that does not parse (malformed JSON in from_json, bytes that are not UTF-8 in CAST(data AS STRING)) fails the batch, naming its shardId and sequenceNumber, instead of giving NULL (Spark's FAILFAST mode instead of PERMISSIVE). See docs/sql.md."},
		{name: "shardflow.sql.init", kind: kindString, ext: true, anyValue: "any SQL; DuckDB checks it when the query starts",
			doc: "SQL stage: statements run once when the query starts, separated by ';', e.g. CREATE TABLE countries AS SELECT * FROM 'countries.csv' (static tables for joins). The job file's sqlInit list is the same. See docs/sql.md."},
	}
}

// registryTables indexes the rows, built once at init and never modified.
type registryTables struct {
	byScope map[OptionScope]map[string]*spec // by lower-case name
	ordered map[OptionScope][]*spec          // documentation order
}

var registry = buildRegistry()

func buildRegistry() registryTables {
	r := registryTables{byScope: map[OptionScope]map[string]*spec{}, ordered: map[OptionScope][]*spec{}}
	rows := map[OptionScope][]spec{
		ScopeSource:      append(awsSpecs(ScopeSource), sourceSpecs()...),
		ScopeSink:        append(awsSpecs(ScopeSink), sinkSpecs()...),
		ScopeConsoleSink: consoleSpecs(),
		ScopeFileSink:    fileSpecs(),
		ScopeQuery:       querySpecs(),
	}
	for _, scope := range Scopes() {
		r.byScope[scope] = map[string]*spec{}
		for i := range rows[scope] {
			sp := &rows[scope][i]
			sp.scope = scope
			if sp.status == "" {
				sp.status = StatusSupported
			}
			lower := strings.ToLower(sp.name)
			if _, dup := r.byScope[scope][lower]; dup {
				panic("shardflow: option registered twice: " + sp.name)
			}
			if sp.def != "" && sp.status != StatusIgnored {
				v, err := sp.parse(sp.def, time.Now())
				if err != nil {
					panic(fmt.Sprintf("shardflow: option %q: bad default %q: %v", sp.name, sp.def, err))
				}
				sp.defValue = v
			}
			r.byScope[scope][lower] = sp
			r.ordered[scope] = append(r.ordered[scope], sp)
		}
	}
	return r
}
