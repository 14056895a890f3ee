// Package iamapi answers the identity calls today's clients make before
// anything else: STS GetCallerIdentity (Terraform's provider start-up, `aws
// sts get-caller-identity`) and IAM GetUser (the fallback for the account
// id). Accounts and their users live in the cloud controller; this package
// only reports the authenticated caller, so it needs no state of its own.
package iamapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
)

// Namespaces of the two APIs' responses.
const (
	STSNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	IAMNamespace = "https://iam.amazonaws.com/doc/2010-05-08/"
)

// authCodes are STS's and IAM's codes for a failed signature.
var authCodes = map[awsauth.Kind]string{
	awsauth.KindMissing:      "MissingAuthenticationToken",
	awsauth.KindMalformed:    "IncompleteSignature",
	awsauth.KindUnknownKey:   "InvalidClientTokenId",
	awsauth.KindBadSignature: "SignatureDoesNotMatch",
	awsauth.KindExpired:      "RequestExpired",
	awsauth.KindUnsupported:  "InvalidClientTokenId",
}

// Users tells when a user was created (IAM GetUser reports it).
type Users interface {
	UserCreated(ctx context.Context, accountID, userName string) (time.Time, error)
}

// NewSTS returns the STS handler.
func NewSTS(keys queryapi.Keys, log *slog.Logger) http.Handler {
	return queryapi.NewServer(queryapi.Service{
		Name: "sts", Namespace: STSNamespace, Dialect: queryapi.DialectQuery, AuthCodes: authCodes,
		Actions: map[string]queryapi.Handler{"GetCallerIdentity": getCallerIdentity},
	}, keys, log)
}

// NewIAM returns the IAM handler.
func NewIAM(keys queryapi.Keys, users Users, log *slog.Logger) http.Handler {
	return queryapi.NewServer(queryapi.Service{
		Name: "iam", Namespace: IAMNamespace, Dialect: queryapi.DialectQuery, AuthCodes: authCodes,
		Actions: map[string]queryapi.Handler{"GetUser": getUser(users)},
	}, keys, log)
}

type callerIdentity struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

func getCallerIdentity(ctx context.Context, req *queryapi.Request) (any, error) {
	c := req.Caller
	return &callerIdentity{Arn: c.ARN(), UserID: c.AccessKeyID, Account: c.AccountID}, nil
}

type user struct {
	Path       string `xml:"Path"`
	UserName   string `xml:"UserName"`
	UserID     string `xml:"UserId"`
	Arn        string `xml:"Arn"`
	CreateDate string `xml:"CreateDate"`
}

type getUserResult struct {
	User user `xml:"User"`
}

func getUser(users Users) queryapi.Handler {
	return func(ctx context.Context, req *queryapi.Request) (any, error) {
		c := req.Caller
		name := req.Params.String("UserName")
		if name != "" && name != c.UserName {
			// Users see only themselves until IAM users are built.
			return nil, awserr.NewStatus(http.StatusNotFound, "NoSuchEntity", "The user with name %s cannot be found.", name)
		}
		created, err := users.UserCreated(ctx, c.AccountID, c.UserName)
		if err != nil {
			return nil, awserr.Internal(err)
		}
		return &getUserResult{User: user{
			Path: "/", UserName: c.UserName, UserID: c.AccessKeyID, Arn: c.ARN(),
			CreateDate: created.UTC().Format(time.RFC3339),
		}}, nil
	}
}
