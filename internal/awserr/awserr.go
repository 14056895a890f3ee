// Package awserr is the one typed error the API edges understand.
//
// An Error carries the AWS error code, the HTTP status, a public message that
// is safe to show a client, and the hidden cause that only reaches the log.
// Service layers return these for anything a client did wrong; any other
// error reaching an API edge is an internal error and its cause is logged,
// never sent.
package awserr

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an API error in AWS's terms.
type Error struct {
	Code    string // AWS's code, e.g. "InvalidGroup.NotFound"
	Status  int    // HTTP status
	Message string // public: shown to the client
	Cause   error  // hidden: logged only
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// New is a client error (400) with a formatted public message.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// NewStatus is New with another HTTP status.
func NewStatus(status int, code, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// WithCause returns a copy of e that records the underlying cause.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// As finds an *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Internal wraps an unexpected failure: the client sees only that something
// went wrong on our side; the cause goes to the log.
func Internal(cause error) *Error {
	return &Error{Code: "InternalError", Status: http.StatusInternalServerError,
		Message: "An internal error has occurred.", Cause: cause}
}

// From returns err as an *Error, treating anything untyped as internal.
func From(err error) *Error {
	if e, ok := As(err); ok {
		return e
	}
	return Internal(err)
}

// Common codes shared by the Query APIs.
func MissingParameter(name string) *Error {
	return New("MissingParameter", "The request must contain the parameter %s", name)
}

func InvalidParameterValue(format string, args ...any) *Error {
	return New("InvalidParameterValue", format, args...)
}
