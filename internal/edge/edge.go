// Package edge routes the one public listener (CLOUD_PORT, 8773) to the API
// that a request is for, the way AWS's endpoints would have separated them:
//
//  1. a legacy path prefix: /services/Eucalyptus (EC2), /services/Walrus (S3),
//     /services/Tokens (STS), /services/Euare (IAM);
//  2. the SigV4 credential scope's service name (ec2, s3, sts, iam);
//  3. an Action parameter (Query APIs; SigV2 clients carry no scope);
//  4. otherwise S3, whose REST requests have none of the above.
package edge

import (
	"encoding/xml"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/internal/reqid"
)

// Legacy path prefixes of Eucalyptus's services.
const (
	PathEC2 = "/services/Eucalyptus"
	PathS3  = "/services/Walrus"
	PathSTS = "/services/Tokens"
	PathIAM = "/services/Euare"
)

// Router holds one handler per API; a nil handler means the role that serves
// it is not running here, and requests for it get a clear error.
type Router struct {
	EC2, S3, STS, IAM http.Handler
	// MaxPeek bounds how much of a form body is read to find its Action.
	MaxPeek int64
}

// stsActions and iamActions tell SigV2 Query requests (no scope) apart.
var stsActions = map[string]bool{"GetCallerIdentity": true, "GetSessionToken": true, "AssumeRole": true, "GetAccessKeyInfo": true}
var iamActions = map[string]bool{"GetUser": true, "ListUsers": true, "ListAccessKeys": true, "GetAccountSummary": true, "ListAccountAliases": true}

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt.handler(r).ServeHTTP(w, r)
}

func (rt *Router) handler(r *http.Request) http.Handler {
	p := r.URL.Path
	switch {
	case hasPrefix(p, PathEC2):
		return rt.or(rt.EC2, "ec2")
	case hasPrefix(p, PathS3):
		return rt.or(rt.S3, "s3")
	case hasPrefix(p, PathSTS):
		return rt.or(rt.STS, "sts")
	case hasPrefix(p, PathIAM):
		return rt.or(rt.IAM, "iam")
	}
	switch awsauth.PeekService(r) {
	case "ec2":
		return rt.or(rt.EC2, "ec2")
	case "sts":
		return rt.or(rt.STS, "sts")
	case "iam":
		return rt.or(rt.IAM, "iam")
	case "s3":
		return rt.or(rt.S3, "s3")
	}
	action, unread := rt.peekAction(r)
	if unread && p == "/" {
		// A form posted to / whose body did not come in time is a Query
		// request: its API answers the timeout in its own format.
		return rt.or(rt.EC2, "ec2")
	}
	if action != "" {
		switch {
		case stsActions[action]:
			return rt.or(rt.STS, "sts")
		case iamActions[action]:
			return rt.or(rt.IAM, "iam")
		default:
			return rt.or(rt.EC2, "ec2")
		}
	}
	return rt.or(rt.S3, "s3")
}

func hasPrefix(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// peekAction finds the Action of a Query request in its URL or its form
// body, restoring the body for the handler; unread reports a form body that
// could not be read (it stalled, or the budget below is spent: the
// handler gets the same error). The
// signature is not checked yet, so at most MaxPeek bytes are read, no
// longer than the listener's body limits allow and within its budget of
// such documents (internal/httplimit).
func (rt *Router) peekAction(r *http.Request) (action string, unread bool) {
	if a := r.URL.Query().Get("Action"); a != "" {
		return a, false
	}
	if r.Method != http.MethodPost || r.Body == nil {
		return "", false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return "", false
	}
	limit := rt.MaxPeek
	if limit == 0 {
		limit = 1 << 20
	}
	head, err := httplimit.PeekDocument(r, limit)
	if err != nil {
		return "", true
	}
	form, err := url.ParseQuery(string(head))
	if err != nil {
		return "", false
	}
	return form.Get("Action"), false
}

func (rt *Router) or(h http.Handler, service string) http.Handler {
	if h != nil {
		return h
	}
	return unavailable(service)
}

// unavailable answers for a service whose role does not run in this
// process, in the service's own error format.
func unavailable(service string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := reqid.New()
		w.Header().Set(reqid.Header, id)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		msg := "The " + service + " service is not running on this host: start euca with the role that serves it."
		var doc any
		if service == "s3" {
			doc = struct {
				XMLName   xml.Name `xml:"Error"`
				Code      string
				Message   string
				RequestID string `xml:"RequestId"`
			}{Code: "ServiceUnavailable", Message: msg, RequestID: id}
		} else {
			doc = struct {
				XMLName   xml.Name `xml:"Response"`
				Code      string   `xml:"Errors>Error>Code"`
				Message   string   `xml:"Errors>Error>Message"`
				RequestID string   `xml:"RequestID"`
			}{Code: "ServiceUnavailable", Message: msg, RequestID: id}
		}
		out, _ := xml.Marshal(doc)
		_, _ = w.Write(append([]byte(xml.Header), out...))
	})
}
