// Package clcapi is the cloud controller's internal API for roles on other
// hosts that need its records: Walrus on a host of its own checks
// signatures against the cloud's access keys, and names accounts, through
// it. One interface (walrus.Keys), two transports: the cloud controller
// itself in its process; over JSON and mutual TLS on the front-end's
// CLOUD_PORT (its TLS side), answered to Walrus's certificates only.
//
// A secret key crosses the wire inside the mutual TLS session only, and
// is never logged: the client keeps it in memory for CacheFor, so that a
// bucket listing does not cost a round trip per request, and a key
// deactivated on the front-end stops working on Walrus's host within that.
package clcapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/principal"
	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/store"
)

// Directory is what the API serves: the cloud controller's accounts.
type Directory interface {
	LookupAccessKey(ctx context.Context, accessKeyID string) (principal.Principal, string, error)
	AccountName(ctx context.Context, accountID string) (string, error)
}

// Prefix is where the front-end mounts the API.
const Prefix = "/internal/v1/clc/"

const (
	pathAccessKey = Prefix + "access-key"
	pathAccount   = Prefix + "account"
)

// CacheFor is how long a client keeps an answer.
const CacheFor = 30 * time.Second

// Errors is the API's error table.
var Errors = rpc.Errors{
	{Code: "InvalidAccessKeyId", Status: http.StatusNotFound, Err: awsauth.ErrUnknownKey},
	{Code: "NoSuchAccount", Status: http.StatusNotFound, Err: store.ErrNotFound},
}

type keyIn struct {
	AccessKeyID string `json:"access_key_id"`
}

// keyOut is a key's owner and secret. The secret is a plain string on the
// wire (pki.Secret hides itself even from JSON); the client turns it back
// into a pki.Secret at once.
type keyOut struct {
	Principal principal.Principal `json:"principal"`
	Secret    string              `json:"secret"`
}

type accountIn struct {
	AccountID string `json:"account_id"`
}

type accountOut struct {
	Name string `json:"name"`
}

// NewHandler serves d to Walrus on other hosts (mount it at Prefix).
func NewHandler(d Directory, log *slog.Logger) http.Handler {
	m := rpc.NewMux(Errors, log)
	m.AllowRoles("walrus") // the only role that checks signatures elsewhere
	rpc.Func(m, "POST "+pathAccessKey, func(ctx context.Context, in keyIn) (keyOut, error) {
		p, secret, err := d.LookupAccessKey(ctx, in.AccessKeyID)
		if err != nil {
			return keyOut{}, err
		}
		return keyOut{Principal: p, Secret: secret}, nil
	})
	rpc.Func(m, "POST "+pathAccount, func(ctx context.Context, in accountIn) (accountOut, error) {
		name, err := d.AccountName(ctx, in.AccountID)
		return accountOut{name}, err
	})
	return m
}

// NewClient is the directory reached through c (the front-end's CLOUD_PORT,
// TLS side), answers kept for CacheFor.
func NewClient(c *rpc.Client) Directory {
	return &client{c: c, now: time.Now, keys: map[string]cachedKey{}, names: map[string]cachedName{}}
}

type cachedKey struct {
	p      principal.Principal
	secret pki.Secret
	until  time.Time
}

type cachedName struct {
	name  string
	until time.Time
}

type client struct {
	c     *rpc.Client
	now   func() time.Time
	mu    sync.Mutex
	keys  map[string]cachedKey
	names map[string]cachedName
}

// maxCached bounds each cache: past it, the cache starts again empty.
const maxCached = 10000

func (c *client) call(ctx context.Context, path string, in, out any) error {
	return rpc.Idempotent.Do(ctx, func(ctx context.Context) error {
		return Errors.Decode(c.c.Call(ctx, http.MethodPost, path, in, out))
	})
}

func (c *client) LookupAccessKey(ctx context.Context, akid string) (principal.Principal, string, error) {
	c.mu.Lock()
	k, ok := c.keys[akid]
	c.mu.Unlock()
	if ok && c.now().Before(k.until) {
		return k.p, k.secret.Reveal(), nil
	}
	var out keyOut
	if err := c.call(ctx, pathAccessKey, keyIn{akid}, &out); err != nil {
		if errors.Is(err, awsauth.ErrUnknownKey) {
			return principal.Principal{}, "", awsauth.ErrUnknownKey
		}
		return principal.Principal{}, "", err
	}
	c.mu.Lock()
	if len(c.keys) >= maxCached {
		c.keys = map[string]cachedKey{}
	}
	c.keys[akid] = cachedKey{p: out.Principal, secret: pki.Secret(out.Secret), until: c.now().Add(CacheFor)}
	c.mu.Unlock()
	return out.Principal, out.Secret, nil
}

func (c *client) AccountName(ctx context.Context, id string) (string, error) {
	c.mu.Lock()
	n, ok := c.names[id]
	c.mu.Unlock()
	if ok && c.now().Before(n.until) {
		return n.name, nil
	}
	var out accountOut
	if err := c.call(ctx, pathAccount, accountIn{id}, &out); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", store.ErrNotFound
		}
		return "", err
	}
	c.mu.Lock()
	if len(c.names) >= maxCached {
		c.names = map[string]cachedName{}
	}
	c.names[id] = cachedName{name: out.Name, until: c.now().Add(CacheFor)}
	c.mu.Unlock()
	return out.Name, nil
}
