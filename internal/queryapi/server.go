// Package queryapi serves AWS's Query protocol, the one EC2, STS, IAM (and
// later CloudWatch, Auto Scaling and ELB) share: a form of parameters with an
// Action, signed with SigV4 or SigV2, answered in XML.
//
// The request path, applied once for every action of every Query service:
//
//	request id -> read body (bounded) -> parameters (query + form) ->
//	Action known? -> signature verified (awsauth) -> principal in ctx ->
//	handler(ctx, req) (response, error) -> XML document -> one log line
//
// Handlers never touch the ResponseWriter: they return a response value or an
// error, and Encode turns either into the service's XML dialect (EC2's own,
// or the <ActionResult>/<ErrorResponse> form of the other Query services).
package queryapi

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/internal/principal"
	"github.com/euca-cloud/euca/internal/reqid"
)

// Dialect is how a service shapes its XML.
type Dialect int

const (
	// DialectEC2: <ActionResponse><requestId/>fields</ActionResponse>, errors as
	// <Response><Errors><Error/></Errors><RequestID/></Response>.
	DialectEC2 Dialect = iota
	// DialectQuery: <ActionResponse><ActionResult>fields</ActionResult>
	// <ResponseMetadata><RequestId/></ResponseMetadata></ActionResponse>,
	// errors as <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>.
	DialectQuery
)

// MaxBody bounds a Query request's body; Query requests are small (user data
// is at most 16 KiB before base64), so anything bigger is refused unread.
const MaxBody = 1 << 20

// Request is a decoded, authenticated Query request.
type Request struct {
	Action    string
	Params    Params
	Caller    principal.Principal
	RequestID string
	HTTP      *http.Request
}

// Handler serves one action.
type Handler func(ctx context.Context, req *Request) (any, error)

// Keys resolves an access key id to its owner and secret.
type Keys interface {
	LookupAccessKey(ctx context.Context, accessKeyID string) (principal.Principal, string, error)
}

// ErrUnknownKey is what Keys returns for an access key it does not know.
var ErrUnknownKey = awsauth.ErrUnknownKey

// Service is one Query API: its name, XML dialect and action table.
type Service struct {
	// Name is the SigV4 credential-scope service ("ec2", "sts", "iam"):
	// a request signed for another is refused.
	Name      string
	Namespace string // the xmlns of responses
	Dialect   Dialect
	Actions   map[string]Handler
	// AuthCodes maps a signature failure to this service's error code.
	AuthCodes map[awsauth.Kind]string
}

// Server serves one Service over HTTP.
type Server struct {
	svc  Service
	keys Keys
	log  *slog.Logger
	now  func() time.Time
}

// NewServer returns the HTTP handler for svc.
func NewServer(svc Service, keys Keys, log *slog.Logger) *Server {
	return &Server{svc: svc, keys: keys, log: log.With("service", svc.Name), now: time.Now}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := reqid.New()
	ctx := reqid.With(r.Context(), id)
	req := &Request{RequestID: id, HTTP: r}
	resp, err := s.serve(ctx, req)
	status := s.write(ctx, w, req, resp, err)
	attrs := []any{"action", req.Action, "status", status, "ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr}
	if req.Caller.AccountID != "" {
		attrs = append(attrs, "account", req.Caller.AccountID)
	}
	if err != nil {
		e := awserr.From(err)
		attrs = append(attrs, "code", e.Code)
		if e.Cause != nil {
			attrs = append(attrs, "cause", e.Cause.Error())
		}
		if status >= 500 {
			s.log.ErrorContext(ctx, "request failed", attrs...)
			return
		}
	}
	s.log.InfoContext(ctx, "request", attrs...)
}

func (s *Server) serve(ctx context.Context, req *Request) (any, error) {
	r := req.HTTP
	// The form is read before its signature can be checked: bounded in
	// size, time and, with the other forms in flight, memory.
	body, err := httplimit.ReadDocument(r, MaxBody)
	switch {
	case errors.Is(err, httplimit.ErrTooLarge):
		return nil, awserr.NewStatus(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request is larger than %d bytes.", MaxBody)
	case errors.Is(err, httplimit.ErrBusy):
		return nil, awserr.NewStatus(http.StatusServiceUnavailable, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.").WithCause(err)
	case errors.Is(err, httplimit.ErrBodyTimeout):
		// The code botocore and the AWS SDKs retry as a transient error.
		return nil, awserr.New("RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period.").WithCause(err)
	case err != nil:
		return nil, awserr.New("MalformedQueryString", "The request body could not be read.").WithCause(err)
	}
	values, err := parseValues(r, body)
	if err != nil {
		return nil, err
	}
	req.Params = make(Params, len(values))
	for k, v := range values {
		if len(v) > 0 {
			req.Params[k] = v[0]
		}
	}
	req.Action = req.Params["Action"]
	if req.Action == "" {
		return nil, awserr.New("MissingAction", "The request must contain the parameter Action.")
	}
	h, ok := s.svc.Actions[req.Action]
	if !ok {
		return nil, awserr.New("InvalidAction", "The action %s is not valid for this web service.", req.Action)
	}
	caller, err := s.authenticate(ctx, r, body, values)
	if err != nil {
		return nil, err
	}
	req.Caller = caller
	return h(principal.With(ctx, caller), req)
}

// parseValues merges the URL query and, for form posts, the body. A body
// that is not a valid form is refused rather than half-read.
func parseValues(r *http.Request, body []byte) (url.Values, error) {
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, awserr.New("MalformedQueryString", "The query string is malformed.").WithCause(err)
	}
	if r.Method == http.MethodPost && len(body) > 0 {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, awserr.New("MalformedQueryString", "The request body is not a valid form.").WithCause(err)
		}
		for k, v := range form {
			values[k] = append(values[k], v...)
		}
	}
	return values, nil
}

func (s *Server) authenticate(ctx context.Context, r *http.Request, body []byte, values url.Values) (principal.Principal, error) {
	var caller principal.Principal
	lookup := func(ctx context.Context, akid string) (string, error) {
		p, secret, err := s.keys.LookupAccessKey(ctx, akid)
		if err != nil {
			return "", err
		}
		caller = p
		return secret, nil
	}
	_, err := awsauth.Verify(ctx, awsauth.Request{HTTP: r, Body: body, Params: values, Style: awsauth.StyleQuery, Service: s.svc.Name}, lookup, s.now())
	if err == nil {
		return caller, nil
	}
	var ae *awsauth.Error
	if !errors.As(err, &ae) {
		return caller, awserr.Internal(fmt.Errorf("verify signature: %w", err))
	}
	code := s.svc.AuthCodes[ae.Kind]
	if code == "" {
		code = "AuthFailure"
	}
	status := http.StatusForbidden
	if ae.Kind == awsauth.KindMalformed {
		status = http.StatusBadRequest
	}
	return caller, &awserr.Error{Code: code, Status: status, Message: ae.Msg}
}

// EC2Response is embedded first in every EC2 response so the encoder can
// stamp the request id where EC2 puts it.
type EC2Response struct {
	RequestID string `xml:"requestId"`
}

func (m *EC2Response) setRequestID(id string) { m.RequestID = id }

type requestIDSetter interface{ setRequestID(string) }

func (s *Server) write(ctx context.Context, w http.ResponseWriter, req *Request, resp any, err error) int {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set(reqid.Header, req.RequestID)
	if err == nil {
		doc, encErr := s.encodeResponse(req, resp)
		if encErr == nil {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(doc)
			return http.StatusOK
		}
		err = awserr.Internal(fmt.Errorf("encode %s response: %w", req.Action, encErr))
	}
	e := awserr.From(err)
	w.WriteHeader(e.Status)
	_, _ = w.Write(s.encodeError(req.RequestID, e))
	return e.Status
}

func (s *Server) encodeResponse(req *Request, resp any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	name := xml.Name{Local: req.Action + "Response"}
	start := xml.StartElement{Name: name, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: s.svc.Namespace}}}
	switch s.svc.Dialect {
	case DialectEC2:
		if setter, ok := resp.(requestIDSetter); ok {
			setter.setRequestID(req.RequestID)
		} else {
			return nil, fmt.Errorf("%T does not embed queryapi.EC2Response", resp)
		}
		if err := enc.EncodeElement(resp, start); err != nil {
			return nil, err
		}
	default:
		if err := enc.EncodeToken(start); err != nil {
			return nil, err
		}
		if resp != nil {
			if err := enc.EncodeElement(resp, xml.StartElement{Name: xml.Name{Local: req.Action + "Result"}}); err != nil {
				return nil, err
			}
		}
		meta := struct {
			RequestID string `xml:"RequestId"`
		}{req.RequestID}
		if err := enc.EncodeElement(meta, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}}); err != nil {
			return nil, err
		}
		if err := enc.EncodeToken(start.End()); err != nil {
			return nil, err
		}
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type ec2ErrorDoc struct {
	XMLName   xml.Name `xml:"Response"`
	Errors    []ec2Err `xml:"Errors>Error"`
	RequestID string   `xml:"RequestID"`
}

type ec2Err struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type queryErrorDoc struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Error     queryErr `xml:"Error"`
	RequestID string   `xml:"RequestId"`
}

type queryErr struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func (s *Server) encodeError(id string, e *awserr.Error) []byte {
	var doc any
	switch s.svc.Dialect {
	case DialectEC2:
		doc = ec2ErrorDoc{Errors: []ec2Err{{Code: e.Code, Message: e.Message}}, RequestID: id}
	default:
		typ := "Sender"
		if e.Status >= 500 {
			typ = "Receiver"
		}
		doc = queryErrorDoc{Xmlns: s.svc.Namespace, Error: queryErr{Type: typ, Code: e.Code, Message: e.Message}, RequestID: id}
	}
	out, err := xml.Marshal(doc)
	if err != nil { // cannot happen for these fixed shapes
		return []byte(xml.Header)
	}
	return append([]byte(xml.Header), out...)
}
