package shardflow_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardflow/shardflow"
	"github.com/shardflow/shardflow/internal/optdocs"
)

// baseOptions are valid values for the required options of each scope.
func baseOptions(scope shardflow.OptionScope) map[string]string {
	switch scope {
	case shardflow.ScopeSource, shardflow.ScopeSink:
		return map[string]string{"kinesis.streamName": "orders"}
	case shardflow.ScopeFileSink:
		return map[string]string{"path": "/tmp/out"}
	}
	return map[string]string{}
}

// optionErrors flattens a joined error into its *OptionError parts.
func optionErrors(err error) []*shardflow.OptionError {
	var out []*shardflow.OptionError
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if oe, ok := errors.AsType[*shardflow.OptionError](err); ok {
			out = append(out, oe)
		}
	}
	walk(err)
	return out
}

// TestEveryOptionRejectsItsBadValues iterates the registry: every option
// either lists invalid values, each rejected with an error that names the
// option and says what is accepted, or says why any value is fine.
func TestEveryOptionRejectsItsBadValues(t *testing.T) {
	for _, info := range shardflow.OptionsTable() {
		t.Run(info.Scope.String()+"/"+info.Name, func(t *testing.T) {
			if info.Status == shardflow.StatusIgnored {
				m := baseOptions(info.Scope)
				m[info.Name] = "whatever"
				_, warns, err := shardflow.ParseOptions(info.Scope, m)
				if err != nil {
					t.Fatalf("ignored option refused: %v", err)
				}
				if len(warns) != 1 || !strings.Contains(warns[0], info.Name) || !strings.Contains(warns[0], info.Reason) {
					t.Fatalf("warnings = %q, want one naming %s and why", warns, info.Name)
				}
				return
			}
			if (len(info.BadExamples) == 0) == (info.AnyValue == "") {
				t.Fatalf("option must list bad example values or say why any value is accepted (not both): bad=%q anyValue=%q", info.BadExamples, info.AnyValue)
			}
			if info.Allowed == "" || info.Description == "" {
				t.Fatalf("option needs accepted values and a description")
			}
			for _, bad := range info.BadExamples {
				m := baseOptions(info.Scope)
				m[info.Name] = bad
				_, _, err := shardflow.ParseOptions(info.Scope, m)
				if err == nil {
					t.Fatalf("%s=%q accepted, want an error", info.Name, bad)
				}
				var found *shardflow.OptionError
				for _, oe := range optionErrors(err) {
					if strings.EqualFold(oe.Key, info.Name) {
						found = oe
					}
				}
				if found == nil {
					t.Fatalf("%s=%q: no error names the option: %v", info.Name, bad, err)
				}
				msg := found.Error()
				if !strings.Contains(msg, info.Allowed) {
					t.Errorf("%s=%q: error %q does not say what is accepted (%q)", info.Name, bad, msg, info.Allowed)
				}
				if bad != "" && !info.Secret && !strings.Contains(msg, fmt.Sprintf("%q", bad)) {
					t.Errorf("%s=%q: error %q does not quote the value", info.Name, bad, msg)
				}
				if info.Secret && bad != "" && strings.Contains(msg, bad) {
					t.Errorf("%s: error %q shows a secret", info.Name, msg)
				}
				if info.Status == shardflow.StatusNotYet || info.Status == shardflow.StatusUnsupported {
					if !errors.Is(err, shardflow.ErrNotSupported) || !errors.Is(err, errors.ErrUnsupported) {
						t.Errorf("%s: error %v does not wrap ErrNotSupported and errors.ErrUnsupported", info.Name, err)
					}
				}
			}
		})
	}
}

func TestRegistryCoversSparkOptions(t *testing.T) {
	// Every option of the Spark connector's reference tables 2.1 and 2.2.
	source := []string{
		"kinesis.endpointUrl", "kinesis.region", "kinesis.kinesisRegion", "kinesis.streamName", "kinesis.consumerType",
		"kinesis.consumerName", "kinesis.failOnDataLoss", "kinesis.maxFetchRecordsPerShard", "kinesis.maxFetchTimePerShardSec",
		"kinesis.startingPosition", "kinesis.describeShardInterval", "kinesis.minBatchesToRetain", "kinesis.checkNewRecordThreads",
		"kinesis.metadataCommitterType", "kinesis.metadataPath", "kinesis.metadataNumRetries", "kinesis.metadataRetryIntervalsMs",
		"kinesis.metadataMaxRetryIntervalMs", "kinesis.clientNumRetries", "kinesis.clientRetryIntervalsMs",
		"kinesis.clientMaxRetryIntervalMs", "kinesis.dynamodb.tableName", "kinesis.subscribeToShard.timeoutSec",
		"kinesis.subscribeToShard.maxRetries", "kinesis.getRecords.numberOfRecordsPerFetch", "kinesis.getRecords.fetchIntervalMs",
		"kinesis.stsRoleArn", "kinesis.stsSessionName", "kinesis.stsEndpointUrl", "kinesis.awsAccessKeyId", "kinesis.awsSecretKey",
		"kinesis.sessionToken", "kinesis.credentialProviderClass", "kinesis.credentialProviderParam",
		"kinesis.internal.avoidEmptyBatches", "kinesis.internal.dataQueueCapacity", "kinesis.internal.maxDataQueueEmptyCount",
		"kinesis.internal.dataQueueWaitTimeoutSec", "kinesis.internal.maintenanceTaskIntervalSec",
		"shardflow.buffer.maxRecordsPerShard", "shardflow.buffer.maxBytesPerShard",
	}
	sink := []string{
		"kinesis.streamName", "kinesis.region", "kinesis.endpointUrl", "kinesis.sink.flushWaitTimeMs",
		"kinesis.sink.recordMaxBufferedTimeMs", "kinesis.sink.maxConnections", "kinesis.sink.aggregationEnabled",
		"kinesis.sink.recordTtl", "kinesis.sink.proxyAddress", "kinesis.sink.proxyPort", "kinesis.sink.proxyUsername",
		"kinesis.sink.proxyPassword", "kinesis.credentialProviderClass", "kinesis.credentialProviderParam",
		"kinesis.stsRoleArn", "kinesis.stsSessionName", "kinesis.stsEndpointUrl", "kinesis.awsAccessKeyId", "kinesis.awsSecretKey",
	}
	have := map[shardflow.OptionScope]map[string]bool{}
	for _, r := range shardflow.OptionsTable() {
		if have[r.Scope] == nil {
			have[r.Scope] = map[string]bool{}
		}
		have[r.Scope][r.Name] = true
	}
	for scope, names := range map[shardflow.OptionScope][]string{
		shardflow.ScopeSource:      source,
		shardflow.ScopeSink:        sink,
		shardflow.ScopeConsoleSink: {"numRows", "truncate"},
		shardflow.ScopeFileSink:    {"path", "format"},
		shardflow.ScopeQuery:       {"checkpointLocation"},
	} {
		for _, n := range names {
			if !have[scope][n] {
				t.Errorf("%s: option %s missing from the registry", scope, n)
			}
		}
	}
}

// TestDefaults checks the value of every option that is not given.
func TestDefaults(t *testing.T) {
	want := map[shardflow.OptionScope]map[string]string{
		shardflow.ScopeSource: {
			"kinesis.streamName": "orders", "kinesis.region": "", "kinesis.kinesisRegion": "", "kinesis.endpointUrl": "",
			"kinesis.awsAccessKeyId": "", "kinesis.awsSecretKey": "", "kinesis.sessionToken": "",
			"kinesis.clientNumRetries": "5", "kinesis.clientRetryIntervalsMs": "1000", "kinesis.clientMaxRetryIntervalMs": "10000",
			"kinesis.consumerType": "GetRecords", "kinesis.consumerName": "", "kinesis.failOnDataLoss": "false",
			"kinesis.consumerARN": "", "kinesis.consumerRegistration": "auto",
			"kinesis.maxFetchRecordsPerShard": "100000", "kinesis.maxFetchTimePerShardSec": "",
			"kinesis.startingPosition": "LATEST", "kinesis.describeShardInterval": "1000", "kinesis.minBatchesToRetain": "100",
			"kinesis.metadataCommitterType": "HDFS", "kinesis.dynamodb.tableName": "shardflow-checkpoints",
			"kinesis.stsRoleArn": "", "kinesis.stsSessionName": "", "kinesis.stsEndpointUrl": "", "shardflow.sts.externalId": "",
			"shardflow.checkpoint.leaseTime": "30", "shardflow.dynamodb.checkpointId": "", "shardflow.dynamodb.endpointUrl": "",
			"shardflow.dynamodb.region": "", "shardflow.s3.endpointUrl": "", "shardflow.s3.pathStyle": "auto", "shardflow.s3.region": "",
			"kinesis.subscribeToShard.timeoutSec": "60", "kinesis.subscribeToShard.maxRetries": "10",
			"kinesis.getRecords.numberOfRecordsPerFetch": "10000", "kinesis.getRecords.fetchIntervalMs": "200",
			"shardflow.buffer.maxRecordsPerShard": "10000", "shardflow.buffer.maxBytesPerShard": "67108864",
			"shardflow.coordination": "NONE", "shardflow.workerId": "", "shardflow.lease.tableName": "",
			"shardflow.lease.time": "10", "shardflow.lease.renewInterval": "", "shardflow.lease.takeInterval": "",
			"shardflow.lease.maxStealsAtOneTime": "1", "shardflow.lease.importKclTable": "",
		},
		shardflow.ScopeSink: {
			"kinesis.streamName": "orders", "kinesis.region": "", "kinesis.endpointUrl": "",
			"kinesis.awsAccessKeyId": "", "kinesis.awsSecretKey": "", "kinesis.sessionToken": "",
			"kinesis.clientNumRetries": "5", "kinesis.clientRetryIntervalsMs": "1000", "kinesis.clientMaxRetryIntervalMs": "10000",
			"kinesis.sink.maxConnections": "1", "kinesis.sink.aggregationEnabled": "true", "kinesis.sink.recordTtl": "30000",
			"kinesis.sink.recordMaxBufferedTimeMs": "1000",
			"kinesis.stsRoleArn":                   "", "kinesis.stsSessionName": "", "kinesis.stsEndpointUrl": "", "shardflow.sts.externalId": "",
		},
		shardflow.ScopeConsoleSink: {"numRows": "20", "truncate": "true"},
		shardflow.ScopeFileSink:    {"path": "/tmp/out", "format": "json"},
		shardflow.ScopeQuery:       {"checkpointLocation": "", "shardflow.sql.init": "", "shardflow.sql.strict": "false"},
	}
	for _, scope := range shardflow.Scopes() {
		o, warns, err := shardflow.ParseOptions(scope, baseOptions(scope))
		if err != nil || len(warns) > 0 {
			t.Fatalf("%s: ParseOptions(required only) = %v, warnings %q", scope, err, warns)
		}
		got := map[string]string{}
		for _, r := range shardflow.OptionsTable() {
			if r.Scope == scope && (r.Status == shardflow.StatusSupported || r.Status == shardflow.StatusReserved) {
				got[r.Name] = o.String(r.Name)
				if r.Required != o.Has(r.Name) {
					t.Errorf("%s: Has(%s) = %v", scope, r.Name, o.Has(r.Name))
				}
			}
		}
		if diff := cmp.Diff(want[scope], got); diff != "" {
			t.Errorf("%s defaults (-want +got):\n%s", scope, diff)
		}
	}

	// Typed accessors on defaults.
	o, _, err := shardflow.ParseOptions(shardflow.ScopeSource, baseOptions(shardflow.ScopeSource))
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Duration("kinesis.describeShardInterval"); got != time.Second {
		t.Errorf("describeShardInterval = %v, want 1s", got)
	}
	if got := o.Duration("kinesis.maxFetchTimePerShardSec"); got != 0 {
		t.Errorf("maxFetchTimePerShardSec = %v, want 0 (unset)", got)
	}
	if got := o.Int("shardflow.buffer.maxBytesPerShard"); got != 64<<20 {
		t.Errorf("maxBytesPerShard = %d, want 64 MiB", got)
	}
	if got := o.Position("kinesis.startingPosition"); got.Type != shardflow.PositionLatest {
		t.Errorf("startingPosition = %+v, want LATEST", got)
	}
	if o.Bool("kinesis.failOnDataLoss") {
		t.Error("failOnDataLoss defaults to true, want false")
	}
}

func TestParseOptionsValues(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	tests := []struct {
		scope shardflow.OptionScope
		key   string
		value string
		want  any // string, int, bool, time.Duration
	}{
		{shardflow.ScopeSource, "kinesis.describeShardInterval", "500ms", 500 * time.Millisecond},
		{shardflow.ScopeSource, "kinesis.describeShardInterval", "5s", 5 * time.Second},
		{shardflow.ScopeSource, "kinesis.describeShardInterval", "1m", time.Minute},
		{shardflow.ScopeSource, "kinesis.describeShardInterval", "2min", 2 * time.Minute},
		{shardflow.ScopeSource, "kinesis.describeShardInterval", "250", 250 * time.Millisecond},
		{shardflow.ScopeSource, "kinesis.describeShardInterval", "0", time.Duration(0)},
		{shardflow.ScopeSource, "kinesis.describeShardInterval", "1.5s", 1500 * time.Millisecond},
		{shardflow.ScopeSource, "kinesis.describeShardInterval", "1m30s", 90 * time.Second},
		{shardflow.ScopeSource, "kinesis.describeShardInterval", " 10 S ", 10 * time.Second},
		{shardflow.ScopeSource, "kinesis.describeShardInterval", "100us", 100 * time.Microsecond},
		{shardflow.ScopeSource, "kinesis.describeShardInterval", "1d", 24 * time.Hour},
		{shardflow.ScopeSource, "kinesis.maxFetchTimePerShardSec", "10", 10 * time.Second},
		{shardflow.ScopeSource, "kinesis.maxFetchTimePerShardSec", "2m", 2 * time.Minute},
		{shardflow.ScopeSource, "kinesis.getRecords.fetchIntervalMs", "1000", time.Second},
		{shardflow.ScopeSource, "kinesis.clientRetryIntervalsMs", "2s", 2 * time.Second},
		{shardflow.ScopeSource, "kinesis.clientNumRetries", "1", 1},
		{shardflow.ScopeSource, "kinesis.clientNumRetries", "+7", 7},
		{shardflow.ScopeSource, "kinesis.failOnDataLoss", "TRUE", true},
		{shardflow.ScopeSource, "kinesis.consumerType", "getrecords", "GetRecords"},
		{shardflow.ScopeSource, "kinesis.metadataCommitterType", "hdfs", "HDFS"},
		{shardflow.ScopeSource, "kinesis.startingPosition", "trim_horizon", "TRIM_HORIZON"},
		{shardflow.ScopeSource, "kinesis.startingPosition", "earliest", "TRIM_HORIZON"},
		{shardflow.ScopeSource, "kinesis.startingPosition", "at_timestamp " + now.Format(time.RFC3339), "AT_TIMESTAMP " + now.Format(time.RFC3339Nano)},
		{shardflow.ScopeSource, "kinesis.region", " eu-west-1 ", "eu-west-1"},
		{shardflow.ScopeSource, "kinesis.endpointUrl", "http://127.0.0.1:4567", "http://127.0.0.1:4567"},
		{shardflow.ScopeSource, "shardflow.buffer.maxBytesPerShard", "1048576", 1 << 20},
		{shardflow.ScopeSource, "shardflow.buffer.maxBytesPerShard", "512m", 512 << 20},
		{shardflow.ScopeSource, "shardflow.buffer.maxBytesPerShard", "2GiB", 2 << 30},
		{shardflow.ScopeSource, "shardflow.buffer.maxBytesPerShard", "4 mb", 4 << 20},
		{shardflow.ScopeSource, "kinesis.getRecords.numberOfRecordsPerFetch", "10000", 10000},
		{shardflow.ScopeSink, "kinesis.sink.recordTtl", "100", 100 * time.Millisecond},
		{shardflow.ScopeSink, "kinesis.sink.maxConnections", "256", 256},
		{shardflow.ScopeSink, "kinesis.sink.aggregationEnabled", "False", false},
		{shardflow.ScopeConsoleSink, "numRows", "5", 5},
		{shardflow.ScopeConsoleSink, "truncate", "false", false},
		{shardflow.ScopeFileSink, "format", "CSV", "csv"},
		{shardflow.ScopeQuery, "checkpointLocation", " /var/lib/q ", "/var/lib/q"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			m := baseOptions(tt.scope)
			m[tt.key] = tt.value
			o, _, err := shardflow.ParseOptions(tt.scope, m)
			if err != nil {
				t.Fatal(err)
			}
			var got any
			switch tt.want.(type) {
			case string:
				got = o.String(tt.key)
			case int:
				got = o.Int(tt.key)
			case bool:
				got = o.Bool(tt.key)
			case time.Duration:
				got = o.Duration(tt.key)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if !o.Has(tt.key) {
				t.Errorf("Has(%s) = false", tt.key)
			}
		})
	}
}

func TestCaseInsensitiveKeys(t *testing.T) {
	o, _, err := shardflow.ParseOptions(shardflow.ScopeSource, map[string]string{
		"KINESIS.STREAMNAME":            "orders",
		" kinesis.startingposition ":    " Trim_Horizon ",
		"Kinesis.ConsumerType":          "GETRECORDS",
		"kinesis.clientnumretries":      "3",
		"KINESIS.DESCRIBESHARDINTERVAL": "2S",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := o.Map()
	want := map[string]string{
		"kinesis.streamName":            "orders",
		"kinesis.startingPosition":      "TRIM_HORIZON",
		"kinesis.consumerType":          "GetRecords",
		"kinesis.clientNumRetries":      "3",
		"kinesis.describeShardInterval": "2000",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Map (-want +got):\n%s", diff)
	}
	// An empty value is the same as leaving the option out.
	o2, _, err := shardflow.ParseOptions(shardflow.ScopeSource, map[string]string{
		"kinesis.streamName": "orders", "kinesis.clientNumRetries": " ", "kinesis.startingPosition": "",
	})
	if err != nil {
		t.Fatal(err)
	}
	if o2.Has("kinesis.clientNumRetries") || o2.Int("kinesis.clientNumRetries") != 5 || o2.String("kinesis.startingPosition") != "LATEST" {
		t.Errorf("empty values: Map = %v", o2.Map())
	}
	// The accessors match names case-insensitively too.
	if o.Int("KINESIS.clientNumRetries") != 3 {
		t.Error("accessor is case-sensitive")
	}

	_, _, err = shardflow.ParseOptions(shardflow.ScopeSource, map[string]string{
		"kinesis.streamName": "a", "KINESIS.STREAMNAME": "b",
	})
	if err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("same key in two cases: err = %v, want \"given twice\"", err)
	}
}

func TestUnknownOption(t *testing.T) {
	tests := []struct {
		scope   shardflow.OptionScope
		key     string
		wantMsg string
	}{
		{shardflow.ScopeSource, "kinesis.client.numRetries", `unknown option "kinesis.client.numRetries"; did you mean "kinesis.clientNumRetries"?`},
		{shardflow.ScopeSource, "kinesis.startPosition", `unknown option "kinesis.startPosition"; did you mean "kinesis.startingPosition"?`},
		{shardflow.ScopeSource, "Kinesis.StreamNmae", `unknown option "Kinesis.StreamNmae"; did you mean "kinesis.streamName"?`},
		{shardflow.ScopeSource, "streamName", `unknown option "streamName"; did you mean "kinesis.streamName"?`},
		{shardflow.ScopeSource, "kinesis.sink.maxConnections", `unknown option "kinesis.sink.maxConnections" for the aws-kinesis source; it is an option of the aws-kinesis sink`},
		{shardflow.ScopeSource, "checkpointLocation", `unknown option "checkpointLocation" for the aws-kinesis source; it is an option of the query`},
		{shardflow.ScopeConsoleSink, "numrow", `unknown option "numrow"; did you mean "numRows"?`},
		{shardflow.ScopeSource, "spark.sql.shuffle.partitions", `unknown option "spark.sql.shuffle.partitions" for the aws-kinesis source (run ` + "`shardflow options`" + ` for the list)`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			m := baseOptions(tt.scope)
			m[tt.key] = "1"
			_, _, err := shardflow.ParseOptions(tt.scope, m)
			ue, ok := errors.AsType[*shardflow.UnknownOptionError](err)
			if !ok {
				t.Fatalf("err = %v, want *UnknownOptionError", err)
			}
			if ue.Error() != tt.wantMsg {
				t.Errorf("got  %s\nwant %s", ue.Error(), tt.wantMsg)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		scope shardflow.OptionScope
		opts  map[string]string
		want  []string // substrings, one per warning, in order
	}{
		{shardflow.ScopeSource, map[string]string{"kinesis.checkNewRecordThreads": "8"}, []string{`ignored Spark option "kinesis.checkNewRecordThreads"`}},
		{shardflow.ScopeSource, map[string]string{"kinesis.internal.somethingNew": "x"}, []string{`ignored Spark option "kinesis.internal.somethingNew"`}},
		{shardflow.ScopeSource, map[string]string{"kinesis.metadataCommitterType": "DYNAMODB", "kinesis.dynamodb.tableName": "ckpt"}, nil},
		{shardflow.ScopeSink, map[string]string{"kinesis.sink.aggregationEnabled": "true"}, nil},
		{shardflow.ScopeSink, map[string]string{"kinesis.sink.aggregationEnabled": "false"}, nil},
		{shardflow.ScopeSink, map[string]string{"kinesis.sink.proxyPassword": "hunter2"}, []string{"HTTPS_PROXY"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.opts), func(t *testing.T) {
			m := baseOptions(tt.scope)
			for k, v := range tt.opts {
				m[k] = v
			}
			_, warns, err := shardflow.ParseOptions(tt.scope, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) != len(tt.want) {
				t.Fatalf("warnings = %q, want %d", warns, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(warns[i], w) {
					t.Errorf("warning %q does not contain %q", warns[i], w)
				}
				if strings.Contains(warns[i], "hunter2") {
					t.Errorf("warning %q shows a secret", warns[i])
				}
			}
		})
	}
}

func TestCrossFieldRules(t *testing.T) {
	tests := []struct {
		name    string
		opts    map[string]string
		wantKey string // the option the error names; "" = valid
		wantMsg string
	}{
		{"keys together", map[string]string{"kinesis.awsAccessKeyId": "AKID", "kinesis.awsSecretKey": "s3cr3t"}, "", ""},
		{"keys and token", map[string]string{"kinesis.awsAccessKeyId": "AKID", "kinesis.awsSecretKey": "s3cr3t", "kinesis.sessionToken": "tok"}, "", ""},
		{"key id alone", map[string]string{"kinesis.awsAccessKeyId": "AKID"}, "kinesis.awsSecretKey", `required when "kinesis.awsAccessKeyId" is set`},
		{"secret alone", map[string]string{"kinesis.awsSecretKey": "s3cr3t"}, "kinesis.awsAccessKeyId", `required when "kinesis.awsSecretKey" is set`},
		{"token alone", map[string]string{"kinesis.sessionToken": "tok"}, "kinesis.sessionToken", "needs the static credentials"},
		{"EFO without consumer", map[string]string{"kinesis.consumerType": "SubscribeToShard"}, "kinesis.consumerName", "required when"},
		{"EFO, case-insensitive", map[string]string{"kinesis.consumerType": "subscribetoshard", "kinesis.consumerName": "c"}, "", ""},
		{"EFO with a consumer ARN", map[string]string{"kinesis.consumerType": "SubscribeToShard", "kinesis.consumerARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/etl:1700000000"}, "", ""},
		{"consumer ARN of another stream", map[string]string{"kinesis.consumerType": "SubscribeToShard", "kinesis.consumerARN": "arn:aws:kinesis:us-east-1:123456789012:stream/other/consumer/etl:1700000000"}, "kinesis.consumerARN", "a consumer of stream"},
		{"consumer ARN with polling", map[string]string{"kinesis.consumerARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/etl:1700000000"}, "kinesis.consumerARN", "only used with"},
		{"empty stream name", map[string]string{"kinesis.streamName": "  "}, "kinesis.streamName", "required"},
		{"unknown committer", map[string]string{"kinesis.metadataCommitterType": "zookeeper"}, "kinesis.metadataCommitterType", "HDFS"},
		{"future timestamp", map[string]string{"kinesis.startingPosition": "AT_TIMESTAMP 2999-01-01T00:00:00Z"}, "kinesis.startingPosition", "in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseOptions(shardflow.ScopeSource)
			for k, v := range tt.opts {
				m[k] = v
			}
			_, _, err := shardflow.ParseOptions(shardflow.ScopeSource, m)
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			for _, oe := range optionErrors(err) {
				if oe.Key == tt.wantKey && strings.Contains(oe.Error(), tt.wantMsg) {
					for _, secret := range []string{"s3cr3t", "tok"} {
						if strings.Contains(err.Error(), `"`+secret+`"`) {
							t.Errorf("error shows a secret: %v", err)
						}
					}
					return
				}
			}
			t.Fatalf("err = %v, want an error on %s containing %q", err, tt.wantKey, tt.wantMsg)
		})
	}
}

func TestAllProblemsReportedTogether(t *testing.T) {
	_, _, err := shardflow.ParseOptions(shardflow.ScopeSource, map[string]string{
		"kinesis.clientNumRetries":         "0",
		"kinesis.maxFetchTimePerShardSec":  "5",
		"kinesis.describeShardInterval":    "-1s",
		"kinesis.startingPosition":         "AT_TIMESTAMP yesterday",
		"kinesis.client.numRetries":        "3",
		"kinesis.maxFetchRecordsPerShard":  "0",
		"kinesis.getRecords.fetchInterval": "100",
	})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`option "kinesis.clientNumRetries"="0"`,
		`option "kinesis.maxFetchTimePerShardSec"="5": too small; accepted: a duration >= 10s`,
		`option "kinesis.describeShardInterval"="-1s"`,
		`option "kinesis.startingPosition"="AT_TIMESTAMP yesterday"`,
		`did you mean "kinesis.clientNumRetries"?`,
		`option "kinesis.maxFetchRecordsPerShard"="0"`,
		`did you mean "kinesis.getRecords.fetchIntervalMs"?`,
		`option "kinesis.streamName": required`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
	if n := len(strings.Split(msg, "\n")); n != 8 {
		t.Errorf("%d problems reported, want 8:\n%s", n, msg)
	}
}

func TestMapRoundTripAndSecrets(t *testing.T) {
	in := map[string]string{
		"kinesis.streamName":                  "orders",
		"kinesis.region":                      "eu-west-1",
		"kinesis.endpointUrl":                 "http://127.0.0.1:4567",
		"kinesis.awsAccessKeyId":              "AKIDEXAMPLE",
		"kinesis.awsSecretKey":                "wJalrXUtnFEMI",
		"kinesis.sessionToken":                "FQoGZXIvYXdz",
		"kinesis.startingPosition":            `{"shardId-000000000001": {"type": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "49590338271490256608559692538361571095921575989136588898", "subSequenceNumber": 2}, "default": "TRIM_HORIZON"}`,
		"kinesis.describeShardInterval":       "1500us",
		"kinesis.maxFetchTimePerShardSec":     "90000ms",
		"kinesis.failOnDataLoss":              "true",
		"shardflow.buffer.maxBytesPerShard":   "8m",
		"kinesis.getRecords.fetchIntervalMs":  "1s",
		"kinesis.clientMaxRetryIntervalMs":    "1m30s",
		"kinesis.checkNewRecordThreads":       "4", // ignored: not in Map
		"kinesis.subscribeToShard.maxRetries": "3",
	}
	o, _, err := shardflow.ParseOptions(shardflow.ScopeSource, in)
	if err != nil {
		t.Fatal(err)
	}
	m := o.Map()
	for _, secret := range []string{"kinesis.awsAccessKeyId", "kinesis.awsSecretKey", "kinesis.sessionToken"} {
		if _, ok := m[secret]; ok {
			t.Errorf("Map holds secret %s", secret)
		}
		if got := o.Redacted()[secret]; got != "****" {
			t.Errorf("Redacted()[%s] = %q, want ****", secret, got)
		}
	}
	if _, ok := m["kinesis.checkNewRecordThreads"]; ok {
		t.Error("Map holds an ignored option")
	}
	o2, _, err := shardflow.ParseOptions(shardflow.ScopeSource, m)
	if err != nil {
		t.Fatalf("Map does not parse back: %v\n%v", err, m)
	}
	if diff := cmp.Diff(m, o2.Map()); diff != "" {
		t.Errorf("round trip (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(o.Position("kinesis.startingPosition"), o2.Position("kinesis.startingPosition")); diff != "" {
		t.Errorf("startingPosition round trip (-first +second):\n%s", diff)
	}
	if got := o2.Duration("kinesis.describeShardInterval"); got != 1500*time.Microsecond {
		t.Errorf("describeShardInterval after round trip = %v", got)
	}

	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("options", "source", o)
	if logged := buf.String(); strings.Contains(logged, "wJalrXUtnFEMI") || strings.Contains(logged, "AKIDEXAMPLE") || !strings.Contains(logged, "source.kinesis.streamName=orders") {
		t.Errorf("LogValue: %s", logged)
	}
}

func TestAccessorPanicsOnProgrammingErrors(t *testing.T) {
	o, _, err := shardflow.ParseOptions(shardflow.ScopeSource, baseOptions(shardflow.ScopeSource))
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"unknown name":     func() { o.String("kinesis.nope") },
		"wrong type":       func() { o.Int("kinesis.streamName") },
		"ignored option":   func() { o.Int("kinesis.checkNewRecordThreads") },
		"other scope":      func() { o.Int("numRows") },
		"zero Options":     func() { (shardflow.Options{}).Has("kinesis.streamName") },
		"duration as bool": func() { o.Bool("kinesis.describeShardInterval") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

func TestParseStartingPosition(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ts := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	const seq = "49590338271490256608559692538361571095921575989136588898"
	tests := []struct {
		in      string
		want    shardflow.StartingPosition
		wantErr string
	}{
		{in: "LATEST", want: shardflow.StartingPosition{Type: shardflow.PositionLatest}},
		{in: " latest ", want: shardflow.StartingPosition{Type: shardflow.PositionLatest}},
		{in: "TRIM_HORIZON", want: shardflow.StartingPosition{Type: shardflow.PositionTrimHorizon}},
		{in: "Earliest", want: shardflow.StartingPosition{Type: shardflow.PositionTrimHorizon}},
		{in: "AT_TIMESTAMP 2026-11-25T10:00:00Z", want: shardflow.StartingPosition{Type: shardflow.PositionAtTimestamp, Timestamp: ts("2026-11-25T10:00:00Z")}},
		{in: "at_timestamp   2026-11-25t10:00:00.123+05:30", want: shardflow.StartingPosition{Type: shardflow.PositionAtTimestamp, Timestamp: ts("2026-11-25T04:30:00.123Z")}},
		{in: "AT_TIMESTAMP 2026-11-25T12:00:59Z", want: shardflow.StartingPosition{Type: shardflow.PositionAtTimestamp, Timestamp: ts("2026-11-25T12:00:59Z")}},
		{in: "AT_TIMESTAMP 1999-12-31T23:59:59.999999999-08:00", want: shardflow.StartingPosition{Type: shardflow.PositionAtTimestamp, Timestamp: ts("2000-01-01T07:59:59.999999999Z")}},
		{in: `{}`, want: shardflow.StartingPosition{Type: shardflow.PositionLatest}},
		{in: `{"default": "trim_horizon"}`, want: shardflow.StartingPosition{Type: shardflow.PositionTrimHorizon}},
		{in: `{"metadata":{"batchId":"-1","streamName":"s"}}`, want: shardflow.StartingPosition{Type: shardflow.PositionLatest}},
		{
			in: `{"shardId-000000000000": {"type": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "` + seq + `"},
			      "shardId-000000000001": {"type": "at_sequence_number", "sequenceNumber": "0", "subSequenceNumber": 3},
			      "shardId-000000000002": "TRIM_HORIZON",
			      "shardId-000000000003": "AT_TIMESTAMP 2026-11-25T10:00:00Z",
			      "shardId-000000000004": "AFTER_SEQUENCE_NUMBER 12",
			      "shardId-000000000005": {"type": "AT_TIMESTAMP", "timestamp": "2026-11-25T10:00:00+01:00"},
			      "shardId-000000000006": "latest",
			      "default": "AT_TIMESTAMP 2026-11-24T00:00:00Z"}`,
			want: shardflow.StartingPosition{
				Type: shardflow.PositionShards, Default: shardflow.PositionAtTimestamp, Timestamp: ts("2026-11-24T00:00:00Z"),
				Shards: map[string]shardflow.ShardPosition{
					"shardId-000000000000": {Type: shardflow.PositionAfterSequenceNumber, SequenceNumber: seq},
					"shardId-000000000001": {Type: shardflow.PositionAtSequenceNumber, SequenceNumber: "0", SubSequenceNumber: 3},
					"shardId-000000000002": {Type: shardflow.PositionTrimHorizon},
					"shardId-000000000003": {Type: shardflow.PositionAtTimestamp, Timestamp: ts("2026-11-25T10:00:00Z")},
					"shardId-000000000004": {Type: shardflow.PositionAfterSequenceNumber, SequenceNumber: "12"},
					"shardId-000000000005": {Type: shardflow.PositionAtTimestamp, Timestamp: ts("2026-11-25T09:00:00Z")},
					"shardId-000000000006": {Type: shardflow.PositionLatest},
				},
			},
		},
		{
			// The Spark connector's KinesisV2SourceOffset.
			in: `{"metadata":{"batchId":"7","streamName":"s"},
			      "shardId-000000000000":{"iteratorType":"AFTER_SEQUENCE_NUMBER","iteratorPosition":"` + seq + `","subSequenceNumber":"-1","isLast":"true"},
			      "shardId-000000000001":{"iteratorType":"AT_TIMESTAMP","iteratorPosition":"1693422005000","subSequenceNumber":"-1","isLast":"true"},
			      "shardId-000000000002":{"iteratorType":"AFTER_SEQUENCE_NUMBER","iteratorPosition":"42","subSequenceNumber":"4","isLast":"false"},
			      "shardId-000000000003":{"iteratorType":"TRIM_HORIZON","iteratorPosition":"","subSequenceNumber":"-1","isLast":"true"}}`,
			want: shardflow.StartingPosition{
				Type: shardflow.PositionShards, Default: shardflow.PositionLatest,
				Shards: map[string]shardflow.ShardPosition{
					"shardId-000000000000": {Type: shardflow.PositionAfterSequenceNumber, SequenceNumber: seq},
					"shardId-000000000001": {Type: shardflow.PositionAtTimestamp, Timestamp: time.UnixMilli(1693422005000).UTC()},
					"shardId-000000000002": {Type: shardflow.PositionAfterSequenceNumber, SequenceNumber: "42", SubSequenceNumber: 4},
					"shardId-000000000003": {Type: shardflow.PositionTrimHorizon},
				},
			},
		},
		{in: "", wantErr: "empty position"},
		{in: "NEWEST", wantErr: `unknown position "NEWEST"`},
		{in: "LATEST now", wantErr: "takes no argument"},
		{in: "AT_TIMESTAMP", wantErr: "needs exactly one RFC 3339 time"},
		{in: "AT_TIMESTAMP 2026-11-25T10:00:00", wantErr: "not RFC 3339"},
		{in: "AT_TIMESTAMP 2026-11-25 10:00:00Z", wantErr: "needs exactly one"},
		{in: "AT_TIMESTAMP 2026-02-30T10:00:00Z", wantErr: "not RFC 3339"},
		{in: "AT_TIMESTAMP 1693422005000", wantErr: "not RFC 3339"},
		{in: "AT_TIMESTAMP 2026-11-25T12:01:01Z", wantErr: "time 2026-11-25T12:01:01Z is in the future (this machine's clock says 2026-11-25T12:00:00Z; at most 1m0s ahead is accepted)"},
		{in: "AT_SEQUENCE_NUMBER 12", wantErr: `unknown position "AT_SEQUENCE_NUMBER"`},
		{in: `{"shardId-0": 7}`, wantErr: `shard "shardId-0": must be a string or an object`},
		{in: `{"shardId-0": {"type": "AFTER_SEQUENCE_NUMBER"}}`, wantErr: `needs "sequenceNumber"`},
		{in: `{"shardId-0": {"type": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "007"}}`, wantErr: `sequence number "007" is not a Kinesis sequence number`},
		{in: `{"shardId-0": {"type": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "1` + strings.Repeat("0", 129) + `"}}`, wantErr: "is not a Kinesis sequence number"},
		{in: `{"shardId-0": {"type": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "1", "subSequenceNumber": -1}}`, wantErr: "subSequenceNumber"},
		{in: `{"shardId-0": {"type": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "1", "sub": 1}}`, wantErr: `unknown field "sub"`},
		{in: `{"shardId-0": {"type": "TRIM_HORIZON", "sequenceNumber": "1"}}`, wantErr: "takes no other field"},
		{in: `{"shardId-0": {"type": "AT_TIMESTAMP"}}`, wantErr: `needs "timestamp"`},
		{in: `{"shardId-0": {"type": "SHARD_END"}}`, wantErr: `"type" "SHARD_END"`},
		{in: `{"shardId-0": {"iteratorType": "SHARD_END", "iteratorPosition": ""}}`, wantErr: "SHARD_END is not a starting position"},
		{in: `{"shardId-0": {"iteratorType": "AT_TIMESTAMP", "iteratorPosition": "soon"}}`, wantErr: "epoch milliseconds"},
		{in: `{"shardId-0": {"iteratorType": "AFTER_SEQUENCE_NUMBER", "iteratorPosition": "1", "isLast": "maybe"}}`, wantErr: "isLast"},
		{in: `{"shardId-0": "AFTER_SEQUENCE_NUMBER"}`, wantErr: "needs exactly one sequence number"},
		{in: `{"default": "AFTER_SEQUENCE_NUMBER 1"}`, wantErr: `"default": unknown position`},
		{in: `{"default": 1}`, wantErr: `"default" must be a string`},
		{in: `{"bad key!": "LATEST"}`, wantErr: `key "bad key!" is neither`},
		{in: `{"shardId-0": "LATEST"`, wantErr: "not a JSON object"},
		{in: `{"shardId-0": "LATEST"} x`, wantErr: "not a JSON object"},
		{in: `{"a": "NOPE", "b": "NOPE"}`, wantErr: `shard "a": unknown position "NOPE": use TRIM_HORIZON, LATEST, AT_TIMESTAMP <time>, AT_SEQUENCE_NUMBER <seq> or AFTER_SEQUENCE_NUMBER <seq>; shard "b": unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := shardflow.ParseStartingPosition(tt.in, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			again, err := shardflow.ParseStartingPosition(got.String(), now)
			if err != nil {
				t.Fatalf("String() %q does not parse: %v", got.String(), err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("String() round trip %q (-first +second):\n%s", got.String(), diff)
			}
		})
	}
}

// TestDocsExamplesParse parses the JSON examples of docs/options.md.
func TestDocsExamplesParse(t *testing.T) {
	doc, err := os.ReadFile("docs/options.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```json\n")[1:]
	if len(blocks) != 2 {
		t.Fatalf("found %d JSON examples, want 2", len(blocks))
	}
	for _, b := range blocks {
		js, _, _ := strings.Cut(b, "```")
		p, err := shardflow.ParseStartingPosition(js, time.Now())
		if err != nil {
			t.Errorf("example does not parse: %v\n%s", err, js)
		} else if p.Type != shardflow.PositionShards || len(p.Shards) < 2 {
			t.Errorf("example parses to %+v", p)
		}
	}
}

func TestDocsUpToDate(t *testing.T) {
	want := optdocs.Markdown(shardflow.OptionsTable())
	got, err := os.ReadFile("docs/options.md")
	if err != nil {
		t.Fatalf("%v; generate it with: go generate ./...", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/options.md is stale: the option registry changed. Regenerate it with:\n\tgo generate ./...\n(or: go run ./internal/optdocs/cmd -o docs/options.md)")
	}
}

func FuzzParseStartingPosition(f *testing.F) {
	for _, s := range []string{
		"LATEST", "TRIM_HORIZON", "EARLIEST", "AT_TIMESTAMP 2026-11-25T10:00:00.123+05:30", "AT_TIMESTAMP 2026-11-25T10:00:00Z",
		`{"shardId-000000000000": {"type": "AFTER_SEQUENCE_NUMBER", "sequenceNumber": "4960", "subSequenceNumber": 2}, "default": "TRIM_HORIZON"}`,
		`{"shardId-0": "AT_TIMESTAMP 2026-11-25T10:00:00Z", "shardId-1": "AT_SEQUENCE_NUMBER 0"}`,
		`{"metadata":{"batchId":"7","streamName":"s"},"shardId-0":{"iteratorType":"AT_TIMESTAMP","iteratorPosition":"1693422005000","subSequenceNumber":"-1","isLast":"true"}}`,
		`{"shardId-0": {"type": "AT_TIMESTAMP", "timestamp": "2026-11-25T10:00:00Z"}}`,
		`{"default": "AT_TIMESTAMP 2026-01-01T00:00:00Z", "s": "LATEST"}`,
		"{", "", "AT_TIMESTAMP", `{"a": null}`, `{"a": {}}`, `{"a": []}`,
	} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := shardflow.ParseStartingPosition(s, now)
		if err != nil {
			return
		}
		switch p.Type {
		case shardflow.PositionLatest, shardflow.PositionTrimHorizon, shardflow.PositionAtTimestamp, shardflow.PositionShards:
		default:
			t.Fatalf("%q parsed to type %q", s, p.Type)
		}
		if p.Type == shardflow.PositionAtTimestamp && p.Timestamp.After(now.Add(shardflow.MaxTimestampSkew)) {
			t.Fatalf("%q: timestamp %v too far in the future", s, p.Timestamp)
		}
		again, err := shardflow.ParseStartingPosition(p.String(), now)
		if err != nil {
			t.Fatalf("%q parsed, but its String() %q does not: %v", s, p.String(), err)
		}
		if diff := cmp.Diff(p, again); diff != "" {
			t.Fatalf("%q: round trip through %q (-first +second):\n%s", s, p.String(), diff)
		}
	})
}
