package shardflow

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shardflow/shardflow/internal/editdist"
)

// OptionScope says where an option is given: to the Kinesis source, to one
// of the sinks, or to the query. The same key (kinesis.streamName, the
// credentials, ...) can exist in several scopes, with its own default in each.
type OptionScope int

// Option scopes.
const (
	// ScopeSource holds the options of readStream.format("aws-kinesis").
	ScopeSource OptionScope = iota + 1
	// ScopeSink holds the options of writeStream.format("aws-kinesis").
	ScopeSink
	// ScopeConsoleSink holds the options of writeStream.format("console").
	ScopeConsoleSink
	// ScopeFileSink holds the options of the file sink (JSON lines or CSV).
	ScopeFileSink
	// ScopeQuery holds the options of the query itself (DataStreamWriter's
	// checkpointLocation).
	ScopeQuery
)

// Scopes lists every scope, in documentation order.
func Scopes() []OptionScope {
	return []OptionScope{ScopeSource, ScopeSink, ScopeConsoleSink, ScopeFileSink, ScopeQuery}
}

// String returns the scope's name as used in messages.
func (s OptionScope) String() string {
	switch s {
	case ScopeSource:
		return "aws-kinesis source"
	case ScopeSink:
		return "aws-kinesis sink"
	case ScopeConsoleSink:
		return "console sink"
	case ScopeFileSink:
		return "file sink"
	case ScopeQuery:
		return "query"
	}
	return "OptionScope(" + strconv.Itoa(int(s)) + ")"
}

// OptionStatus says what shardflow does with an option.
type OptionStatus string

// Option statuses.
const (
	// StatusSupported options are parsed, validated and used.
	StatusSupported OptionStatus = "supported"
	// StatusReserved options are parsed and validated but have no effect
	// yet (they belong to a feature that comes later); setting one logs a
	// warning.
	StatusReserved OptionStatus = "reserved"
	// StatusIgnored options are Spark connector keys with no meaning here:
	// any value is accepted with a warning saying why.
	StatusIgnored OptionStatus = "ignored"
	// StatusNotYet options are refused with an error wrapping
	// [ErrNotSupported] until their feature is implemented.
	StatusNotYet OptionStatus = "not supported yet"
	// StatusUnsupported options are refused with an error wrapping
	// [ErrNotSupported]: they cannot work in Go (e.g. a Java class name).
	StatusUnsupported OptionStatus = "not supported"
)

// ErrNotSupported is wrapped by the errors for options and values that are
// valid for the Spark connector but not supported by shardflow (yet).
// errors.Is(err, errors.ErrUnsupported) holds for them too.
var ErrNotSupported = errors.New("shardflow: not supported")

// notSupportedError carries a readable message and matches ErrNotSupported
// and errors.ErrUnsupported.
type notSupportedError struct{ msg string }

func (e *notSupportedError) Error() string { return e.msg }

func (e *notSupportedError) Is(target error) bool {
	return target == ErrNotSupported || target == errors.ErrUnsupported
}

// OptionError reports one invalid option. Its message names the option, the
// value (masked for secrets) and what the option accepts.
type OptionError struct {
	// Key is the key as the user wrote it, or the option's name when a
	// required option is missing.
	Key string
	// Value is the value as given after trimming; "****" for secrets; empty
	// when the option is missing.
	Value string
	Err   error
}

func (e *OptionError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("option %q: %v", e.Key, e.Err)
	}
	return fmt.Sprintf("option %q=%q: %v", e.Key, e.Value, e.Err)
}

func (e *OptionError) Unwrap() error { return e.Err }

// UnknownOptionError reports a key that is no option of the scope.
type UnknownOptionError struct {
	Key   string      // as the user wrote it
	Scope OptionScope // the scope being parsed
	// Suggestion is the closest known key of Scope, or "".
	Suggestion string
	// Elsewhere is the scope the key belongs to, if another one (0 if none).
	Elsewhere OptionScope
}

func (e *UnknownOptionError) Error() string {
	switch {
	case e.Elsewhere != 0:
		return fmt.Sprintf("unknown option %q for the %s; it is an option of the %s", e.Key, e.Scope, e.Elsewhere)
	case e.Suggestion != "":
		return fmt.Sprintf("unknown option %q; did you mean %q?", e.Key, e.Suggestion)
	}
	return fmt.Sprintf("unknown option %q for the %s (run `shardflow options` for the list)", e.Key, e.Scope)
}

// secretMask replaces secret values in messages and listings.
const secretMask = "****"

// Options is the result of [ParseOptions]: validated, typed values for one
// scope, with defaults for the options that were not given. The zero value
// has no scope and its accessors panic.
//
// The accessors take an option's name (matched case-insensitively) and
// panic when the name is not an option of the scope, is an ignored option or
// has another type: those are programming errors, not bad input.
type Options struct {
	scope OptionScope
	set   map[string]setting // by lower-case name; only options given
}

// setting is one option given by the user.
type setting struct {
	key string // as written
	v   any    // parsed: string, int64, bool, time.Duration or StartingPosition
}

// ParseOptions validates the options of one scope, given as Spark key/value
// pairs. Keys and enumerated values are case-insensitive, values are
// trimmed, and an empty value is the same as leaving the option out.
//
// It returns every problem at once (joined with errors.Join), each an
// [*OptionError] or [*UnknownOptionError], and warnings for accepted keys
// that have no effect (Spark connector options that mean nothing here, or
// options of features that come later). Warnings are meant to be logged
// once at Warn level.
func ParseOptions(scope OptionScope, m map[string]string) (Options, []string, error) {
	now := time.Now() // for AT_TIMESTAMP's "not in the future" check
	specs, ok := registry.byScope[scope]
	if !ok {
		return Options{}, nil, fmt.Errorf("shardflow: unknown option scope %v", scope)
	}
	o := Options{scope: scope, set: map[string]setting{}}
	var errs []error
	var warns []string
	seen := map[string]string{} // lower-case key → key as written
	for _, key := range slices.Sorted(maps.Keys(m)) {
		name := strings.ToLower(strings.TrimSpace(key))
		val := strings.TrimSpace(m[key])
		if prev, dup := seen[name]; dup {
			errs = append(errs, &OptionError{Key: key, Err: fmt.Errorf("given twice, as %q and %q (keys are case-insensitive)", prev, key)})
			continue
		}
		seen[name] = key
		sp, ok := specs[name]
		if !ok {
			if strings.HasPrefix(name, "kinesis.internal.") {
				warns = append(warns, fmt.Sprintf("ignored Spark option %q: an internal setting of the Spark connector's per-batch tasks; shardflow has no equivalent", key))
				continue
			}
			errs = append(errs, unknownOption(scope, key, name))
			continue
		}
		switch sp.status {
		case StatusIgnored:
			warns = append(warns, fmt.Sprintf("ignored Spark option %q: %s", key, sp.why))
			continue
		case StatusNotYet, StatusUnsupported:
			if val != "" {
				errs = append(errs, sp.errorf(key, val, "%w", &notSupportedError{string(sp.status) + ": " + sp.why}))
			}
			continue
		}
		if val == "" {
			continue // an empty value is the same as leaving the option out
		}
		v, err := sp.parse(val, now)
		if err != nil {
			errs = append(errs, sp.wrapError(key, val, err))
		}
		if v != nil {
			o.set[name] = setting{key: key, v: v}
			if sp.status == StatusReserved && (sp.warnIf == nil || sp.warnIf(v)) {
				warns = append(warns, fmt.Sprintf("option %q has no effect yet: %s", key, sp.why))
			}
		}
	}
	for _, sp := range registry.ordered[scope] {
		if sp.required && !o.Has(sp.name) {
			errs = append(errs, &OptionError{Key: sp.name, Err: fmt.Errorf("required; accepted: %s", sp.accepts())})
		}
	}
	errs = append(errs, crossCheck(o)...)
	if len(errs) > 0 {
		return Options{}, warns, errors.Join(errs...)
	}
	return o, warns, nil
}

// unknownOption builds the error for a key that is not in scope.
func unknownOption(scope OptionScope, key, name string) error {
	e := &UnknownOptionError{Key: key, Scope: scope}
	for _, other := range Scopes() {
		if other == scope {
			continue
		}
		if sp, ok := registry.byScope[other][name]; ok && sp.status != StatusIgnored {
			e.Elsewhere = other
			return e
		}
	}
	e.Suggestion = suggest(scope, name)
	return e
}

// suggest returns the known key of scope closest to name by edit distance,
// or "" when none is close enough to be a likely typo.
func suggest(scope OptionScope, name string) string {
	if sp, ok := registry.byScope[scope]["kinesis."+name]; ok {
		return sp.name
	}
	best, bestDist := "", math.MaxInt
	for _, sp := range registry.ordered[scope] {
		if d := editdist.Distance(name, strings.ToLower(sp.name)); d < bestDist {
			best, bestDist = sp.name, d
		}
	}
	if editdist.Likely(name, bestDist) {
		return best
	}
	return ""
}

// Scope returns the scope the options were parsed for.
func (o Options) Scope() OptionScope { return o.scope }

// spec returns the option's row, panicking on a programming error.
func (o Options) spec(name string) *spec {
	sp, ok := registry.byScope[o.scope][strings.ToLower(name)]
	if !ok {
		panic(fmt.Sprintf("shardflow: %q is not an option of the %s", name, o.scope))
	}
	if sp.status == StatusIgnored || sp.status == StatusNotYet || sp.status == StatusUnsupported {
		panic(fmt.Sprintf("shardflow: option %q is %s: it has no value", sp.name, sp.status))
	}
	return sp
}

// value returns the option's parsed value or its default.
func (o Options) value(name string) (*spec, any) {
	sp := o.spec(name)
	if s, ok := o.set[strings.ToLower(sp.name)]; ok {
		return sp, s.v
	}
	return sp, sp.defValue
}

// Has reports whether the option was given with a non-empty value.
func (o Options) Has(name string) bool {
	sp := o.spec(name)
	_, ok := o.set[strings.ToLower(sp.name)]
	return ok
}

// String returns the option's value, or its default, as text: the value
// of a string option, the canonical spelling of an enumerated value, and for
// other types the form Map uses. It is "" for an unset option with no default.
func (o Options) String(name string) string {
	sp, v := o.value(name)
	return sp.format(v)
}

// Int returns the value of an integer or byte-size option (0 if unset
// without a default).
func (o Options) Int(name string) int {
	sp, v := o.value(name)
	if sp.kind != kindInt && sp.kind != kindBytes {
		panic(fmt.Sprintf("shardflow: option %q is a %s, not an integer", sp.name, sp.kind))
	}
	n, _ := v.(int64)
	return int(n)
}

// Bool returns the value of a boolean option.
func (o Options) Bool(name string) bool {
	sp, v := o.value(name)
	if sp.kind != kindBool {
		panic(fmt.Sprintf("shardflow: option %q is a %s, not a bool", sp.name, sp.kind))
	}
	b, _ := v.(bool)
	return b
}

// Duration returns the value of a duration option (0 if unset without a
// default).
func (o Options) Duration(name string) time.Duration {
	sp, v := o.value(name)
	if sp.kind != kindDuration {
		panic(fmt.Sprintf("shardflow: option %q is a %s, not a duration", sp.name, sp.kind))
	}
	d, _ := v.(time.Duration)
	return d
}

// Position returns the value of a starting-position option
// (kinesis.startingPosition).
func (o Options) Position(name string) StartingPosition {
	sp, v := o.value(name)
	if sp.kind != kindPosition {
		panic(fmt.Sprintf("shardflow: option %q is a %s, not a starting position", sp.name, sp.kind))
	}
	p, _ := v.(StartingPosition)
	return p
}

// Map returns the options that were given, by their canonical names, with
// canonical values that ParseOptions reads back to the same Options. Secret
// options (credentials) are left out, so the map can be persisted, e.g. in
// a checkpoint's metadata to detect a changed stream name on restart.
func (o Options) Map() map[string]string {
	m := make(map[string]string, len(o.set))
	for name, s := range o.set {
		sp := registry.byScope[o.scope][name]
		if !sp.secret {
			m[sp.name] = sp.format(s.v)
		}
	}
	return m
}

// Redacted returns the options that were given, by their canonical names,
// with secret values masked: for display (logs, the dashboard).
func (o Options) Redacted() map[string]string {
	m := make(map[string]string, len(o.set))
	for name, s := range o.set {
		sp := registry.byScope[o.scope][name]
		m[sp.name] = sp.format(s.v)
		if sp.secret {
			m[sp.name] = secretMask
		}
	}
	return m
}

// LogValue implements slog.LogValuer: the given options, secrets masked.
func (o Options) LogValue() slog.Value {
	r := o.Redacted()
	attrs := make([]slog.Attr, 0, len(r))
	for _, k := range slices.Sorted(maps.Keys(r)) {
		attrs = append(attrs, slog.String(k, r[k]))
	}
	return slog.GroupValue(attrs...)
}

// crossCheck applies the rules that involve several options of o.
func crossCheck(o Options) (errs []error) {
	key := func(name string) string { // as the user wrote it
		if s, ok := o.set[strings.ToLower(name)]; ok {
			return s.key
		}
		return name
	}
	switch o.scope {
	case ScopeSource, ScopeSink:
		const id, secret, token = "kinesis.awsAccessKeyId", "kinesis.awsSecretKey", "kinesis.sessionToken"
		const both = "accepted: kinesis.awsAccessKeyId and kinesis.awsSecretKey together, or neither"
		switch {
		case o.Has(id) && !o.Has(secret):
			errs = append(errs, &OptionError{Key: secret, Err: fmt.Errorf("required when %q is set (static credentials need both); %s", key(id), both)})
		case o.Has(secret) && !o.Has(id):
			errs = append(errs, &OptionError{Key: id, Err: fmt.Errorf("required when %q is set (static credentials need both); %s", key(secret), both)})
		}
		if o.Has(token) && !(o.Has(id) && o.Has(secret)) {
			errs = append(errs, &OptionError{Key: key(token), Value: secretMask, Err: fmt.Errorf("a session token needs the static credentials it belongs to; accepted: with kinesis.awsAccessKeyId and kinesis.awsSecretKey")})
		}
		const role, session = "kinesis.stsRoleArn", "kinesis.stsSessionName"
		switch {
		case o.Has(role) && !o.Has(session):
			errs = append(errs, &OptionError{Key: session, Err: fmt.Errorf("required when %q is set; accepted: kinesis.stsRoleArn and kinesis.stsSessionName together, or neither", key(role))})
		case o.Has(session) && !o.Has(role):
			errs = append(errs, &OptionError{Key: role, Err: fmt.Errorf("required when %q is set; accepted: kinesis.stsRoleArn and kinesis.stsSessionName together, or neither", key(session))})
		}
		for _, k := range []string{"kinesis.stsEndpointUrl", "shardflow.sts.externalId"} {
			if o.Has(k) && !o.Has(role) {
				v := o.String(k)
				if k == "kinesis.stsEndpointUrl" && checkEndpoint(v) != nil {
					continue // reported by its own check
				}
				if k == "shardflow.sts.externalId" {
					v = secretMask
				}
				errs = append(errs, &OptionError{Key: key(k), Value: v, Err: fmt.Errorf("only used with kinesis.stsRoleArn; accepted: with kinesis.stsRoleArn and kinesis.stsSessionName")})
			}
		}
	}
	if o.scope == ScopeSource {
		const ct, cn, ca = "kinesis.consumerType", "kinesis.consumerName", "kinesis.consumerARN"
		efo := strings.EqualFold(o.String(ct), "SubscribeToShard")
		if efo && !o.Has(cn) && !o.Has(ca) {
			errs = append(errs, &OptionError{Key: cn, Err: fmt.Errorf("required when %q is SubscribeToShard (the enhanced fan-out consumer to register), unless kinesis.consumerARN names an existing one; accepted: %s", key(ct), registry.byScope[ScopeSource][strings.ToLower(cn)].accepts())})
		}
		if arn := o.String(ca); consumerARNRE.MatchString(arn) { // a bad ARN is reported by its own check
			if !efo {
				errs = append(errs, &OptionError{Key: key(ca), Value: arn, Err: fmt.Errorf("only used with %s=SubscribeToShard (enhanced fan-out); accepted: with kinesis.consumerType=SubscribeToShard", ct)})
			}
			if _, rest, ok := strings.Cut(arn, ":stream/"); ok {
				if stream, _, _ := strings.Cut(rest, "/"); o.Has("kinesis.streamName") && stream != o.String("kinesis.streamName") {
					errs = append(errs, &OptionError{Key: key(ca), Value: arn, Err: fmt.Errorf("a consumer of stream %q, but kinesis.streamName is %q; accepted: a consumer ARN of the stream read", stream, o.String("kinesis.streamName"))})
				}
			}
		}
	}
	return errs
}

// OptionInfo describes one option of one scope, for `shardflow options`,
// docs/options.md and the dashboard.
type OptionInfo struct {
	Scope OptionScope
	// Name is the key in its documented case (keys are case-insensitive).
	Name string
	// Type is string, int, bool, enum, duration (with the unit of a bare
	// number), size or position.
	Type string
	// Default is the default as a user would write it; "" when none.
	Default string
	// Allowed says what values are accepted.
	Allowed     string
	Description string
	// Spark is true for the Spark connector's keys, false for shardflow
	// extensions.
	Spark    bool
	Status   OptionStatus
	Required bool
	// Secret options are masked in output and left out of Options.Map.
	Secret bool
	// Reason says why an ignored, reserved or unsupported option has no
	// effect; "" for supported options.
	Reason string
	// BadExamples are invalid values, each rejected by ParseOptions; when
	// there are none, AnyValue says why every value is accepted.
	BadExamples []string
	AnyValue    string
}

// OptionsTable returns every option of every scope, in documentation order.
func OptionsTable() []OptionInfo {
	var rows []OptionInfo
	for _, scope := range Scopes() {
		for _, sp := range registry.ordered[scope] {
			typ := sp.kind.String()
			switch {
			case sp.kind == kindDuration && sp.unit == time.Second:
				typ += " (s)"
			case sp.kind == kindDuration:
				typ += " (ms)"
			case sp.kind == kindBytes:
				typ += " (bytes)"
			}
			rows = append(rows, OptionInfo{
				Scope:       scope,
				Name:        sp.name,
				Type:        typ,
				Default:     sp.def,
				Allowed:     sp.accepts(),
				Description: sp.doc,
				Spark:       !sp.ext,
				Status:      sp.status,
				Required:    sp.required,
				Secret:      sp.secret,
				Reason:      sp.why,
				BadExamples: slices.Clone(sp.bad),
				AnyValue:    sp.anyValue,
			})
		}
	}
	return rows
}
