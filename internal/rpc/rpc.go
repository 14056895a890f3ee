// Package rpc is the transport between the cloud's roles when they do not
// share a process: JSON over HTTPS with mutual TLS, both ends holding
// certificates from the cloud's CA (internal/pki) that mark them as roles.
//
// A call is an HTTP request whose body is the JSON of its input; the answer
// is 200 with the JSON of its output, or an error status with
//
//	{"code": "NoSuchInstance", "message": "…"}
//
// Each API gives one table (Errors) that maps its sentinel errors to a code
// and a status; the server encodes with it and the client decodes with it,
// so errors.Is(err, ncapi.ErrNoSuchInstance) holds across the wire. The
// request id (internal/reqid) travels in reqid.Header both ways.
//
// ENABLE_WS_SECURITY="N" makes both ends speak plain HTTP, for debugging;
// each end says so at warning level when it is made.
package rpc

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is one row of an API's error table.
type Code struct {
	Code   string // on the wire, e.g. "NoSuchInstance"
	Status int    // HTTP status
	Err    error  // the sentinel it stands for
}

// Errors is an API's table of errors carried by name. The first row whose
// Err matches (errors.Is) encodes an error.
type Errors []Code

// Error codes every API has.
const (
	CodeInternal   = "InternalError"
	CodeBadRequest = "BadRequest"
	CodeForbidden  = "Forbidden"
	CodeNotFound   = "NotFound"
	// CodeTimeout: the caller did not send its request in time.
	CodeTimeout = "RequestTimeout"
)

// encode finds the code and status of err.
func (t Errors) encode(err error) (code string, status int) {
	for _, c := range t {
		if errors.Is(err, c.Err) {
			return c.Code, c.Status
		}
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" { // an error relayed from another role keeps its code
		return e.Code, e.Status
	}
	return CodeInternal, http.StatusInternalServerError
}

// Decode gives err, an error returned by Client.Call, the sentinel its code
// stands for in t, so that errors.Is matches it; other errors are returned
// as they are.
func (t Errors) Decode(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	for _, c := range t {
		if c.Code == e.Code {
			d := *e
			d.err = c.Err
			return &d
		}
	}
	return err
}

// Error is an error answered by another role.
type Error struct {
	Status    int    `json:"-"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"-"`
	err       error  // the sentinel, once decoded
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// Unwrap is the sentinel the code stands for, once Errors.Decode has run.
func (e *Error) Unwrap() error { return e.err }
