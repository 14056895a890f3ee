// Package principal names who is making a request, once its signature has
// been verified: the account that owns what the request touches and the user
// inside it. Service layers scope every read and write by AccountID.
package principal

import "context"

// Principal is an authenticated caller.
type Principal struct {
	AccountID   string
	AccountName string
	UserName    string
	AccessKeyID string
}

// ARN is the caller's identity as STS GetCallerIdentity reports it.
func (p Principal) ARN() string {
	if p.UserName == "" || p.UserName == "root" {
		return "arn:aws:iam::" + p.AccountID + ":root"
	}
	return "arn:aws:iam::" + p.AccountID + ":user/" + p.UserName
}

type key struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p Principal) context.Context { return context.WithValue(ctx, key{}, p) }

// From returns the principal in ctx; ok is false for anonymous requests.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(key{}).(Principal)
	return p, ok
}
