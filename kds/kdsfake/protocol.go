package kdsfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// targetPrefix prefixes the X-Amz-Target header of every Kinesis action.
const targetPrefix = "Kinesis_20131202."

// jsonContentType is the Content-Type of AWS JSON 1.1 requests and responses.
const jsonContentType = "application/x-amz-json-1.1"

// maxBodyBytes caps request bodies. PutRecords is limited to 5 MiB of data,
// which base64 and JSON inflate to under 7 MiB.
const maxBodyBytes = 10 << 20

// call is one API request being served.
type call struct {
	s       *Server
	w       http.ResponseWriter
	r       *http.Request
	action  string
	account string
	body    []byte
	now     time.Time
}

// handlerFunc serves one action. It writes a successful response itself
// and returns an *apiError (or any error, reported as InternalFailure) on
// failure, before anything was written.
type handlerFunc func(c *call) error

// handler returns the function serving action, or nil.
func (s *Server) handler(action string) handlerFunc {
	switch action {
	case "CreateStream":
		return s.createStream
	case "DeleteStream":
		return s.deleteStream
	case "DescribeStream":
		return s.describeStream
	case "DescribeStreamSummary":
		return s.describeStreamSummary
	case "ListStreams":
		return s.listStreams
	case "ListShards":
		return s.listShards
	case "PutRecord":
		return s.putRecord
	case "PutRecords":
		return s.putRecords
	case "GetShardIterator":
		return s.getShardIterator
	case "GetRecords":
		return s.getRecords
	case "SplitShard":
		return s.splitShard
	case "MergeShards":
		return s.mergeShards
	case "UpdateShardCount":
		return s.updateShardCount
	case "IncreaseStreamRetentionPeriod":
		return s.increaseRetention
	case "DecreaseStreamRetentionPeriod":
		return s.decreaseRetention
	case "RegisterStreamConsumer":
		return s.registerConsumer
	case "DescribeStreamConsumer":
		return s.describeConsumer
	case "ListStreamConsumers":
		return s.listConsumers
	case "DeregisterStreamConsumer":
		return s.deregisterConsumer
	case "SubscribeToShard":
		return s.subscribeToShard
	case "AddTagsToStream":
		return s.addTags
	case "RemoveTagsFromStream":
		return s.removeTags
	case "ListTagsForStream":
		return s.listTags
	case "DescribeLimits":
		return s.describeLimits
	}
	return nil
}

// bodyPool holds request body buffers.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// serveHTTP is the server's http.Handler.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, s.nextRequestID(), newError(errSerialization, "Only POST requests are supported"))
		return
	}
	target := r.Header.Get("X-Amz-Target")
	action, ok := strings.CutPrefix(target, targetPrefix)
	h := s.handler(action)
	if !ok || h == nil {
		writeError(w, s.nextRequestID(), newError(errUnknownOperation, "Unknown operation %q", target))
		return
	}
	s.countCall(action)
	reqID := s.nextRequestID()
	w.Header().Set("X-Amzn-RequestId", reqID)

	if slices.Contains(s.cfg.DenyActions, action) {
		writeError(w, reqID, newError(errAccessDenied, "User is not authorized to perform: kinesis:%s (denied by kdsfake Config.DenyActions)", action))
		return
	}

	// Faults come first: a throttled or failed call does no work.
	if err := s.applyFaults(r, action); err != nil {
		writeError(w, reqID, err)
		return
	}

	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxBodyBytes+bytes.MinRead {
			bodyPool.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBodyBytes)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e := newError(errValidation, "Request body exceeds the limit of %d bytes", maxBodyBytes)
			e.status = http.StatusRequestEntityTooLarge
			writeError(w, reqID, e)
			return
		}
		writeError(w, reqID, newError(errSerialization, "Could not read the request body: %v", err))
		return
	}

	acct, aerr := s.authenticate(r, buf.Bytes())
	if aerr != nil {
		writeError(w, reqID, aerr)
		return
	}
	c := &call{s: s, w: w, r: r, action: action, account: acct, body: buf.Bytes(), now: s.now()}
	err := h(c)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			s.log.Error("request failed", "action", action, "err", err)
			ae = newError(errInternalFailure, "Internal Service Failure")
		}
		s.log.Debug("request", "action", action, "account", acct, "err", ae.typ)
		writeError(w, reqID, ae)
		return
	}
	s.log.Debug("request", "action", action, "account", acct)
}

// nextRequestID returns a request id shaped like AWS's UUIDs.
func (s *Server) nextRequestID() string {
	n := s.reqID.Add(1)
	var b [36]byte
	const hex = "0123456789abcdef"
	v := n
	for i := 35; i >= 0; i-- {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			b[i] = '-'
			continue
		}
		b[i] = hex[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// writeError writes e as an AWS JSON error response.
func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	b := make([]byte, 0, 64+len(e.msg))
	b = append(b, `{"__type":`...)
	b = appendString(b, e.typ)
	b = append(b, `,"message":`...)
	b = appendString(b, e.msg)
	b = append(b, '}')
	h := w.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("X-Amzn-RequestId", reqID)
	h.Set("X-Amzn-ErrorType", e.typ)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.status)
	w.Write(b)
}

// writeJSON writes a 200 response with body b.
func (c *call) writeJSON(b []byte) error {
	h := c.w.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(http.StatusOK)
	_, err := c.w.Write(b)
	if err != nil {
		// The client went away; nothing more to tell it.
		c.s.log.Debug("write response", "action", c.action, "err", err)
	}
	return nil
}

// reply marshals v with encoding/json and writes it. For the control plane;
// hot paths build their JSON by hand.
func (c *call) reply(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.writeJSON(b)
}

// decode parses the request body into v. Malformed JSON and wrong types get
// SerializationException, as on AWS.
func (c *call) decode(v any) error {
	body := c.body
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return newError(errSerialization, "Malformed JSON at offset %d", se.Offset)
		case errors.As(err, &te):
			return newError(errSerialization, "Unexpected %s for field %s", te.Value, te.Field)
		default:
			return newError(errSerialization, "Could not parse the request: %v", err)
		}
	}
	return nil
}

// epoch is a timestamp that marshals as epoch seconds with millisecond
// precision, the AWS JSON protocol's timestamp format.
type epoch time.Time

// MarshalJSON implements json.Marshaler.
func (e epoch) MarshalJSON() ([]byte, error) {
	return appendEpoch(nil, time.Time(e).UnixMilli()), nil
}

// appendEpoch appends ms (Unix milliseconds) as epoch seconds, e.g.
// 1732567890.123.
func appendEpoch(b []byte, ms int64) []byte {
	if ms < 0 {
		return strconv.AppendFloat(b, float64(ms)/1000, 'f', 3, 64)
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	frac := ms % 1000
	b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	return b
}

// fromEpoch converts epoch seconds to a time.
func fromEpoch(sec float64) time.Time {
	return time.UnixMilli(int64(sec*1000 + 0.5*sign(sec)))
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}

// timestampNumber accepts a JSON number (epoch seconds, as the SDKs send) or
// a string holding one or an RFC 3339 time.
type timestampNumber struct {
	t   time.Time
	set bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (ts *timestampNumber) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			ts.t, ts.set = fromEpoch(f), true
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return errBadTimestamp
		}
		ts.t, ts.set = t, true
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return errBadTimestamp
	}
	ts.t, ts.set = fromEpoch(f), true
	return nil
}

// errBadTimestamp reports a timestamp that is neither a number nor a time.
var errBadTimestamp = errors.New("timestamp must be epoch seconds or an RFC 3339 time")
