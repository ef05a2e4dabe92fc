package kdsfake

import (
	"fmt"
	"net/http"
)

// Error types (the "__type" of an AWS JSON error response).
const (
	errResourceNotFound      = "ResourceNotFoundException"
	errResourceInUse         = "ResourceInUseException"
	errInvalidArgument       = "InvalidArgumentException"
	errValidation            = "ValidationException"
	errLimitExceeded         = "LimitExceededException"
	errThroughput            = "ProvisionedThroughputExceededException"
	errExpiredIterator       = "ExpiredIteratorException"
	errExpiredNextToken      = "ExpiredNextTokenException"
	errSerialization         = "SerializationException"
	errUnknownOperation      = "UnknownOperationException"
	errInternalFailure       = "InternalFailure"
	errServiceUnavailable    = "ServiceUnavailable"
	errUnrecognizedClient    = "UnrecognizedClientException"
	errInvalidSignature      = "InvalidSignatureException"
	errIncompleteSignature   = "IncompleteSignatureException"
	errMissingAuthentication = "MissingAuthenticationTokenException"
	errAccessDenied          = "AccessDeniedException"
)

// apiError is an error returned to the client as an AWS JSON error:
// {"__type": typ, "message": msg} with HTTP status.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

// newError returns an apiError of type typ whose status follows from the type.
func newError(typ, format string, args ...any) *apiError {
	status := http.StatusBadRequest
	switch typ {
	case errInternalFailure:
		status = http.StatusInternalServerError
	case errServiceUnavailable:
		status = http.StatusServiceUnavailable
	case errUnrecognizedClient, errInvalidSignature, errIncompleteSignature, errMissingAuthentication:
		status = http.StatusForbidden
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &apiError{status: status, typ: typ, msg: msg}
}

func errNotFound(format string, args ...any) *apiError {
	return newError(errResourceNotFound, format, args...)
}

func errInvalid(format string, args ...any) *apiError {
	return newError(errInvalidArgument, format, args...)
}

func errValidate(format string, args ...any) *apiError {
	return newError(errValidation, format, args...)
}

func errInUse(format string, args ...any) *apiError {
	return newError(errResourceInUse, format, args...)
}

// streamNotFound is Kinesis's message for a missing stream.
func streamNotFound(acct, name string) *apiError {
	return errNotFound("Stream %s under account %s not found.", name, acct)
}

// shardNotFound is Kinesis's message for a missing shard.
func shardNotFound(acct, stream, shardID string) *apiError {
	return errNotFound("Shard %s in stream %s under account %s does not exist", shardID, stream, acct)
}

// rateExceeded is the message of a throughput error for one shard.
func rateExceeded(acct, stream, shardID string) string {
	return fmt.Sprintf("Rate exceeded for shard %s in stream %s under account %s.", shardID, stream, acct)
}
