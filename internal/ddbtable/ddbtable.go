// Package ddbtable creates a DynamoDB table on first use: the checkpoint
// store's and the worker-mode lease table both need "create it
// PAY_PER_REQUEST if it is missing, check an existing one's key, wait
// until it is ACTIVE".
package ddbtable

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// API is the part of *dynamodb.Client Ensure calls.
type API interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
}

// Key is a table's key: its hash key and, when not empty, its range key,
// both strings.
type Key struct {
	Hash, Range string
}

// Ensure creates table with key (PAY_PER_REQUEST) if it is missing, or
// checks that an existing one has that key (check returns the error for
// another key), and waits up to wait for it to be ACTIVE. what names the
// table in errors, e.g. "lease table".
func Ensure(ctx context.Context, c API, table string, key Key, wait time.Duration, what string, check func(d *types.TableDescription) error) error {
	out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var rnf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &rnf):
		in := &dynamodb.CreateTableInput{
			TableName:            aws.String(table),
			BillingMode:          types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(key.Hash), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(key.Hash), KeyType: types.KeyTypeHash}},
		}
		if key.Range != "" {
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(key.Range), AttributeType: types.ScalarAttributeTypeS})
			in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(key.Range), KeyType: types.KeyTypeRange})
		}
		_, err = c.CreateTable(ctx, in)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create %s %s: %w", what, table, err)
		}
	case err != nil:
		return fmt.Errorf("describe %s %s: %w", what, table, err)
	default:
		if err := check(out.Table); err != nil {
			return err
		}
		if out.Table.TableStatus == types.TableStatusActive || out.Table.TableStatus == types.TableStatusUpdating {
			return nil
		}
	}
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, wait); err != nil {
		return fmt.Errorf("waiting for %s %s to be ACTIVE: %w", what, table, err)
	}
	return nil
}
