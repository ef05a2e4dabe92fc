package kds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shardflow/shardflow/internal/engine"
)

// Enhanced fan-out consumer registration.
const (
	// registrationTimeout bounds the wait for a consumer to become ACTIVE,
	// a DELETING one included (AWS takes seconds to a minute or two).
	registrationTimeout = 5 * time.Minute
	// registrationPoll is the first wait between two
	// DescribeStreamConsumer calls; it doubles up to registrationPollMax,
	// with full jitter.
	registrationPoll    = 100 * time.Millisecond
	registrationPollMax = 5 * time.Second
)

// consumerState is the source's object in the checkpoint ("sources/0",
// docs/checkpoint-format.md): whether this query registered its consumer,
// and may therefore deregister it on a graceful stop.
type consumerState struct {
	ConsumerName string `json:"consumerName,omitempty"`
	ConsumerARN  string `json:"consumerARN,omitempty"`
	// Registered is true when this query's checkpoint registered the
	// consumer. It is written before RegisterStreamConsumer is called, so
	// a crash right after it never leaves a consumer this query made
	// marked as someone else's.
	Registered bool `json:"registered"`
}

var _ engine.Lifecycle = (*Source)(nil)

// Open implements engine.Lifecycle. In enhanced fan-out mode it reads the
// consumer state from the checkpoint and makes sure the consumer exists and
// is ACTIVE: DescribeStreamSummary, DescribeStreamConsumer, and
// RegisterStreamConsumer if it is missing (never with kinesis.consumerARN).
// A DELETING consumer (e.g. right after a graceful stop) is waited out and
// registered again; a CREATING one is waited for. In polling mode it does
// nothing.
func (s *Source) Open(ctx context.Context, state engine.StateStore) error {
	if !s.efoMode() {
		return nil
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.state = state
	var st consumerState
	if _, err := state.Read(ctx, &st); err != nil {
		return err
	}
	// A state written for another consumer name says nothing about this one.
	s.owned = st.Registered && st.ConsumerName == s.cfg.EFO.ConsumerName && s.cfg.EFO.ConsumerARN == ""
	return s.ensureConsumer(ctx)
}

// Close implements engine.Lifecycle. On a graceful stop in enhanced fan-out
// mode it deregisters the consumer if this query registered it and
// kinesis.consumerRegistration is auto (invariant 9). It does not wait for
// the deletion to finish: the next start waits a DELETING consumer out.
// After a failure (graceful false) the consumer is kept for the restart.
func (s *Source) Close(ctx context.Context, graceful bool) error {
	if !s.efoMode() || !graceful {
		return nil
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if !s.owned || s.cfg.EFO.ConsumerARN != "" || s.cfg.EFO.Registration != RegisterAuto || s.consumerARN == "" {
		return nil
	}
	arn := s.consumerARN
	err := s.retry.do(ctx, "DeregisterStreamConsumer", s.cfg.StreamName, "", func(ctx context.Context) error {
		_, err := s.efo.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(arn)})
		return err
	})
	if err != nil && !isNotFound(err) && !isInUse(err) { // in use: already DELETING
		return err
	}
	s.log.Info("deregistered enhanced fan-out consumer", "consumer", s.cfg.EFO.ConsumerName, "consumer_arn", arn)
	s.owned, s.consumerARN = false, ""
	if s.state != nil {
		return s.state.Write(ctx, consumerState{ConsumerName: s.cfg.EFO.ConsumerName})
	}
	return nil
}

// consumer returns the ARN of the ACTIVE consumer, registering it first if
// Open was not called (a Source used without the engine). Such a
// registration is not recorded, so it is never deregistered.
func (s *Source) consumer(ctx context.Context) (string, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.consumerARN != "" {
		return s.consumerARN, nil
	}
	if err := s.ensureConsumer(ctx); err != nil {
		return "", err
	}
	return s.consumerARN, nil
}

// recheck runs after a ResourceNotFoundException during a subscription:
// it checks that the consumer still exists (registering it again when it
// was deleted and this source may register) and that the shard is still
// listed. arn is the ARN the subscription used.
func (s *Source) recheck(ctx context.Context, shardID, arn string) error {
	s.cmu.Lock()
	if s.consumerARN == arn {
		s.consumerARN = "" // describe again
	}
	err := func() error {
		if s.consumerARN != "" {
			return nil // another reader re-checked already
		}
		return s.ensureConsumer(ctx)
	}()
	s.cmu.Unlock()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.listedAt = time.Time{} // list afresh
	s.mu.Unlock()
	shards, err := s.ListShards(ctx)
	if err != nil {
		return err
	}
	for _, sh := range shards {
		if sh.ID == shardID {
			return nil
		}
	}
	return fmt.Errorf("kds: SubscribeToShard on %s of stream %q: the shard is no longer listed (trimmed by retention?)", shardID, s.cfg.StreamName)
}

// ensureConsumer finds or registers the consumer and waits until it is
// ACTIVE, setting s.consumerARN. Caller holds s.cmu.
func (s *Source) ensureConsumer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, registrationTimeout)
	defer cancel()
	in := &kinesis.DescribeStreamConsumerInput{}
	name := s.cfg.EFO.ConsumerName
	if arn := s.cfg.EFO.ConsumerARN; arn != "" {
		in.ConsumerARN = aws.String(arn)
		name = arn
	} else {
		if s.streamARN == "" {
			var out *kinesis.DescribeStreamSummaryOutput
			err := s.retry.do(ctx, "DescribeStreamSummary", s.cfg.StreamName, "", func(ctx context.Context) error {
				var err error
				out, err = s.efo.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.cfg.StreamName)})
				return err
			})
			if err != nil {
				return err
			}
			if out.StreamDescriptionSummary == nil || aws.ToString(out.StreamDescriptionSummary.StreamARN) == "" {
				return fmt.Errorf("kds: DescribeStreamSummary of stream %q returned no stream ARN", s.cfg.StreamName)
			}
			s.streamARN = aws.ToString(out.StreamDescriptionSummary.StreamARN)
		}
		in.StreamARN, in.ConsumerName = aws.String(s.streamARN), aws.String(name)
	}
	status := "unknown"
	for attempt := 0; ; attempt++ {
		var (
			out     *kinesis.DescribeStreamConsumerOutput
			missing error
		)
		err := s.retry.do(ctx, "DescribeStreamConsumer", s.cfg.StreamName, "", func(ctx context.Context) error {
			var err error
			out, err = s.efo.DescribeStreamConsumer(ctx, in)
			if isNotFound(err) {
				// An answer, not a failed call: the consumer is missing
				// (registered below), which the failures counter of the
				// progress metrics must not count.
				missing, err = err, nil
			}
			return err
		})
		if missing != nil {
			err = missing
		}
		switch {
		case isNotFound(err) && s.cfg.EFO.ConsumerARN != "":
			return fmt.Errorf("kds: kinesis.consumerARN %s: no such consumer (shardflow never registers a consumer given by ARN): %w", name, err)
		case isNotFound(err):
			if err := s.register(ctx); err != nil {
				return err
			}
			status = "CREATING"
			continue
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("kds: consumer %s of stream %q did not become ACTIVE within %s (last status %s): %w", name, s.cfg.StreamName, registrationTimeout, status, err)
			}
			return err
		}
		d := out.ConsumerDescription
		if d == nil {
			return fmt.Errorf("kds: DescribeStreamConsumer %s returned no description", name)
		}
		status = string(d.ConsumerStatus)
		if d.ConsumerStatus == types.ConsumerStatusActive {
			s.consumerARN = aws.ToString(d.ConsumerARN)
			s.log.Info("enhanced fan-out consumer active", "consumer", aws.ToString(d.ConsumerName),
				"consumer_arn", s.consumerARN, "registered_by_query", s.owned)
			return nil
		}
		// CREATING: wait for it. DELETING: wait until it is gone, then
		// register it again (the describe above then finds nothing).
		wait := fullJitter(min(registrationPoll<<min(attempt, 10), registrationPollMax))
		s.log.Debug("waiting for enhanced fan-out consumer", "consumer", name, "status", status, "backoff", wait)
		if err := sleep(ctx, max(wait, 10*time.Millisecond)); err != nil {
			return fmt.Errorf("kds: consumer %s of stream %q did not become ACTIVE within %s (last status %s): %w", name, s.cfg.StreamName, registrationTimeout, status, err)
		}
	}
}

// register calls RegisterStreamConsumer, first recording in the checkpoint
// that this query registers it. Caller holds s.cmu.
func (s *Source) register(ctx context.Context) error {
	name := s.cfg.EFO.ConsumerName
	if s.state != nil && !s.owned {
		if err := s.state.Write(ctx, consumerState{ConsumerName: name, Registered: true}); err != nil {
			return err
		}
	}
	s.owned = s.state != nil
	err := s.retry.do(ctx, "RegisterStreamConsumer", s.cfg.StreamName, "", func(ctx context.Context) error {
		_, err := s.efo.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{
			StreamARN: aws.String(s.streamARN), ConsumerName: aws.String(name)})
		return err
	})
	switch {
	case err == nil:
		s.log.Info("registered enhanced fan-out consumer", "consumer", name)
		return nil
	case isInUse(err):
		// It exists after all (registered meanwhile, or a retried call
		// whose first attempt succeeded): describe it again.
		return nil
	case isConsumerLimit(err):
		return fmt.Errorf("kds: cannot register enhanced fan-out consumer %q on stream %q: the stream has reached its limit of registered consumers (20 per stream); deregister unused ones (aws kinesis list-stream-consumers / deregister-stream-consumer) or reuse one with kinesis.consumerARN: %w", name, s.cfg.StreamName, err)
	}
	return err
}

func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool { return errorCode(err) == "ResourceNotFoundException" }
func isInUse(err error) bool    { return errorCode(err) == "ResourceInUseException" }

// isConsumerLimit tells the per-stream consumer limit from throttling,
// which share LimitExceededException; too many consumers CREATING at once
// is transient and is not this limit.
func isConsumerLimit(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "LimitExceededException" {
		return false
	}
	msg := strings.ToLower(apiErr.ErrorMessage())
	return strings.Contains(msg, "consumer") && strings.Contains(msg, "limit") && !strings.Contains(msg, "creating")
}
