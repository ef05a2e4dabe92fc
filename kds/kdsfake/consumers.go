package kdsfake

import (
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits on the stream consumers (enhanced fan-out) of one stream.
const (
	maxConsumers         = 20
	maxCreatingConsumers = 5
)

// consumer is a registered stream consumer. Guarded by its stream's mutex.
type consumer struct {
	name     string
	arn      string
	created  time.Time
	readyAt  time.Time // CREATING until then
	deleting bool
	goneAt   time.Time // with deleting: removed then
}

// status returns the consumer status at now.
func (co *consumer) status(now time.Time) string {
	switch {
	case co.deleting:
		return statusDeleting
	case now.Before(co.readyAt):
		return statusCreating
	}
	return statusActive
}

// gone reports whether the consumer's deregistration is complete at now.
func (co *consumer) gone(now time.Time) bool {
	return co.deleting && !now.Before(co.goneAt)
}

// liveConsumers counts the consumers not yet gone. Caller holds st.mu.
func (st *stream) liveConsumers(now time.Time) int {
	n := 0
	for _, co := range st.consumers {
		if !co.gone(now) {
			n++
		}
	}
	return n
}

// consumerByName returns a consumer not yet gone, or nil. Caller holds st.mu.
func (st *stream) consumerByName(name string, now time.Time) *consumer {
	co := st.consumers[name]
	if co == nil || co.gone(now) {
		return nil
	}
	return co
}

// parseConsumerARN splits
// "arn:aws:kinesis:region:account:stream/name/consumer/cname:1700000000".
func parseConsumerARN(arn string) (streamARN, name string, ok bool) {
	streamARN, rest, ok := strings.Cut(arn, "/consumer/")
	if !ok {
		return "", "", false
	}
	name, ts, ok := strings.Cut(rest, ":")
	if !ok || !validName(name) {
		return "", "", false
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return "", "", false
	}
	if _, _, ok := parseStreamARN(streamARN); !ok {
		return "", "", false
	}
	return streamARN, name, true
}

type consumerOut struct {
	ConsumerName              string
	ConsumerARN               string
	ConsumerStatus            string
	ConsumerCreationTimestamp epoch
	StreamARN                 string `json:",omitempty"`
}

func (co *consumer) out(now time.Time) consumerOut {
	return consumerOut{co.name, co.arn, co.status(now), epoch(co.created), ""}
}

// consumerRequest holds the fields that name a consumer.
type consumerRequest struct {
	StreamARN    string
	ConsumerName string
	ConsumerARN  string
}

// consumer returns the stream and consumer a request names.
func (c *call) consumer(in consumerRequest) (*stream, *consumer, error) {
	streamARN, name := in.StreamARN, in.ConsumerName
	if in.ConsumerARN != "" {
		sa, n, ok := parseConsumerARN(in.ConsumerARN)
		if !ok {
			return nil, nil, errValidate("1 validation error detected: Value '%s' at 'consumerARN' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+", in.ConsumerARN)
		}
		streamARN, name = sa, n
	} else if streamARN == "" || name == "" {
		return nil, nil, errInvalid("Either ConsumerARN or both StreamARN and ConsumerName must be provided.")
	}
	st, err := c.stream(streamRef{StreamARN: streamARN})
	if err != nil {
		return nil, nil, err
	}
	st.mu.RLock()
	co := st.consumerByName(name, c.now)
	st.mu.RUnlock()
	if co == nil || in.ConsumerARN != "" && co.arn != in.ConsumerARN {
		return nil, nil, errNotFound("Consumer %s under stream %s under account %s not found.", name, st.name, st.account)
	}
	return st, co, nil
}

func (s *Server) registerConsumer(c *call) error {
	var in struct {
		StreamARN    string
		ConsumerName string
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.StreamARN == "" {
		return errValidate("1 validation error detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null")
	}
	if !validName(in.ConsumerName) {
		return errValidate("1 validation error detected: Value '%s' at 'consumerName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128", in.ConsumerName)
	}
	st, err := c.stream(streamRef{StreamARN: in.StreamARN})
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.status(c.now) != statusActive && st.status(c.now) != statusUpdating {
		return errInUse("Stream %s under account %s not ACTIVE, instead in state %s", st.name, st.account, st.status(c.now))
	}
	if st.consumerByName(in.ConsumerName, c.now) != nil {
		return errInUse("Consumer %s under stream %s already exists for account %s.", in.ConsumerName, st.name, st.account)
	}
	live, creating := 0, 0
	for _, co := range st.consumers {
		if co.gone(c.now) {
			continue
		}
		live++
		if co.status(c.now) == statusCreating {
			creating++
		}
	}
	if live >= maxConsumers {
		return newError(errLimitExceeded, "Consumer limit of %d reached for stream %s under account %s.", maxConsumers, st.name, st.account)
	}
	if creating >= maxCreatingConsumers {
		return newError(errLimitExceeded, "Stream %s under account %s already has %d consumers in CREATING state.", st.name, st.account, maxCreatingConsumers)
	}
	co := &consumer{
		name:    in.ConsumerName,
		arn:     st.arn + "/consumer/" + in.ConsumerName + ":" + strconv.FormatInt(c.now.Unix(), 10),
		created: c.now,
		readyAt: c.now.Add(s.cfg.ConsumerDelay),
	}
	st.consumers[co.name] = co
	s.dirty.Store(true)
	return c.reply(struct{ Consumer consumerOut }{co.out(c.now)})
}

func (s *Server) describeConsumer(c *call) error {
	var in consumerRequest
	if err := c.decode(&in); err != nil {
		return err
	}
	st, co, err := c.consumer(in)
	if err != nil {
		return err
	}
	st.mu.RLock()
	o := co.out(c.now)
	st.mu.RUnlock()
	o.StreamARN = st.arn
	return c.reply(struct{ ConsumerDescription consumerOut }{o})
}

func (s *Server) listConsumers(c *call) error {
	var in struct {
		StreamARN               string
		NextToken               string
		MaxResults              *int
		StreamCreationTimestamp timestampNumber
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.StreamARN == "" {
		return errValidate("1 validation error detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null")
	}
	limit, err := pageLimit(in.MaxResults, "maxResults", 100, 10000, 10000)
	if err != nil {
		return err
	}
	after := ""
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil {
			return errInvalid("Invalid NextToken.")
		}
		after = string(b)
	}
	st, err := c.stream(streamRef{StreamARN: in.StreamARN})
	if err != nil {
		return err
	}
	out := struct {
		Consumers []consumerOut
		NextToken string `json:",omitempty"`
	}{Consumers: []consumerOut{}}
	st.mu.RLock()
	names := make([]string, 0, len(st.consumers))
	for n, co := range st.consumers {
		if !co.gone(c.now) && n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if len(out.Consumers) == limit {
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(out.Consumers[len(out.Consumers)-1].ConsumerName))
			break
		}
		out.Consumers = append(out.Consumers, st.consumers[n].out(c.now))
	}
	st.mu.RUnlock()
	return c.reply(out)
}

func (s *Server) deregisterConsumer(c *call) error {
	var in consumerRequest
	if err := c.decode(&in); err != nil {
		return err
	}
	st, co, err := c.consumer(in)
	if err != nil {
		return err
	}
	st.mu.Lock()
	if co.deleting {
		st.mu.Unlock()
		return errInUse("Consumer %s under stream %s under account %s is being deleted.", co.name, st.name, st.account)
	}
	co.deleting = true
	co.goneAt = c.now.Add(s.cfg.ConsumerDelay)
	if s.cfg.ConsumerDelay == 0 {
		delete(st.consumers, co.name)
	}
	st.mu.Unlock()
	s.subs.endConsumer(co.arn)
	s.dirty.Store(true)
	return c.writeJSON([]byte("{}"))
}
