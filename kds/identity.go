package kds

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardflow/shardflow/internal/engine"
)

// streamDescriber is the call Identity needs; *kinesis.Client has it.
type streamDescriber interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// Identity returns the stream's ARN and creation time, which the engine
// keeps in the checkpoint so that a stream deleted and created again under
// the same name is detected. Without kinesis:DescribeStreamSummary
// permission it returns a zero identity (the check is skipped) and logs a
// warning.
func (s *Source) Identity(ctx context.Context) (engine.StreamIdentity, error) {
	d, ok := s.api.(streamDescriber)
	if !ok {
		return engine.StreamIdentity{}, nil
	}
	var out *kinesis.DescribeStreamSummaryOutput
	err := s.retry.do(ctx, "DescribeStreamSummary", s.cfg.StreamName, "", func(ctx context.Context) error {
		var err error
		out, err = d.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.cfg.StreamName)})
		return err
	})
	if _, denied := errors.AsType[*types.AccessDeniedException](err); denied {
		s.log.Warn("no permission for DescribeStreamSummary: a stream deleted and created again under the same name cannot be detected", "stream", s.cfg.StreamName)
		return engine.StreamIdentity{}, nil
	}
	if err != nil {
		return engine.StreamIdentity{}, err
	}
	sum := out.StreamDescriptionSummary
	return engine.StreamIdentity{ARN: aws.ToString(sum.StreamARN), Created: aws.ToTime(sum.StreamCreationTimestamp)}, nil
}
