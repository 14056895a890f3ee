package clc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/credentials"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/principal"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// accountUser is the user every account starts with; Eucalyptus 1.x had one
// user per account and called it admin.
const accountUser = "admin"

var accountName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// bootstrap makes the admin account on first start and repairs every
// account's defaults (a zone added since, or a start that crashed half way).
func (c *Cloud) bootstrap(ctx context.Context) error {
	if _, err := c.store.AccountByName(ctx, AdminAccount); errors.Is(err, store.ErrNotFound) {
		if _, err := c.CreateAccount(ctx, AdminAccount); err != nil {
			return fmt.Errorf("clc: create admin account: %w", err)
		}
		c.log.Info("created the admin account", "account", AdminAccount)
	} else if err != nil {
		return fmt.Errorf("clc: admin account: %w", err)
	}
	accts, err := c.store.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("clc: accounts: %w", err)
	}
	for _, a := range accts {
		if err := c.ensureAccountDefaults(ctx, a.ID); err != nil {
			return fmt.Errorf("clc: defaults of account %s: %w", a.Name, err)
		}
	}
	return nil
}

// CreateAccount adds an account with an access key, a user certificate and
// its defaults.
func (c *Cloud) CreateAccount(ctx context.Context, name string) (store.Account, error) {
	if !accountName.MatchString(name) {
		return store.Account{}, fmt.Errorf("account name %q: use 1-63 lower-case letters, digits, '.', '_' or '-'", name)
	}
	id, err := pki.NewAccountID()
	if err != nil {
		return store.Account{}, err
	}
	akid, secret, err := pki.NewAccessKey()
	if err != nil {
		return store.Account{}, err
	}
	cert, err := c.newUserCert(id)
	if err != nil {
		return store.Account{}, err
	}
	a := store.Account{ID: id, Name: name}
	err = c.store.CreateAccount(ctx, a, store.AccessKey{ID: akid, AccountID: id, UserName: accountUser, Secret: secret}, cert.UserCert)
	if errors.Is(err, store.ErrConflict) {
		return store.Account{}, fmt.Errorf("account %q already exists", name)
	}
	if err != nil {
		return store.Account{}, err
	}
	if err := c.ensureAccountDefaults(ctx, id); err != nil {
		return store.Account{}, err
	}
	return c.store.AccountByName(ctx, name)
}

type issuedCert struct {
	store.UserCert
	KeyPEM []byte
}

func (c *Cloud) newUserCert(accountID string) (issuedCert, error) {
	certPEM, keyPEM, err := c.ca.IssueUser(accountID, accountUser)
	if err != nil {
		return issuedCert{}, fmt.Errorf("issue user certificate: %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return issuedCert{}, fmt.Errorf("issue user certificate: no PEM")
	}
	sum := sha256.Sum256(block.Bytes)
	return issuedCert{
		UserCert: store.UserCert{Fingerprint: hex.EncodeToString(sum[:]), AccountID: accountID, UserName: accountUser, CertPEM: string(certPEM)},
		KeyPEM:   keyPEM,
	}, nil
}

// Endpoints are the URLs a credentials bundle points its clients at.
type Endpoints struct{ EC2, S3, STS, IAM string }

// Credentials makes the legacy credentials bundle of an account: its access
// key and a freshly issued certificate (each download issues a new one, as
// Eucalyptus did; the user's private key is never stored by the cloud).
func (c *Cloud) Credentials(ctx context.Context, accountName string, ep Endpoints) (credentials.Bundle, error) {
	a, err := c.store.AccountByName(ctx, accountName)
	if err != nil {
		return credentials.Bundle{}, err
	}
	keys, err := c.store.AccessKeys(ctx, a.ID, accountUser)
	if err != nil {
		return credentials.Bundle{}, err
	}
	var key *store.AccessKey
	for i := range keys {
		if keys[i].Active {
			key = &keys[i]
			break
		}
	}
	if key == nil {
		return credentials.Bundle{}, fmt.Errorf("account %s has no active access key", accountName)
	}
	cert, err := c.newUserCert(a.ID)
	if err != nil {
		return credentials.Bundle{}, err
	}
	if err := c.store.AddUserCert(ctx, cert.UserCert); err != nil {
		return credentials.Bundle{}, err
	}
	return credentials.Bundle{
		AccountName: a.Name, AccountID: a.ID, UserName: accountUser,
		AccessKeyID: key.ID, SecretKey: key.Secret,
		UserCertPEM: []byte(cert.CertPEM), UserKeyPEM: cert.KeyPEM, CloudCertPEM: c.ca.CertPEM,
		EC2URL: ep.EC2, S3URL: ep.S3, STSURL: ep.STS, IAMURL: ep.IAM,
		Region: c.cfg.Region,
	}, nil
}

// LookupAccessKey resolves a signature's access key to its owner and secret
// (queryapi.Keys).
func (c *Cloud) LookupAccessKey(ctx context.Context, akid string) (principal.Principal, string, error) {
	k, err := c.store.AccessKeyByID(ctx, akid)
	if errors.Is(err, store.ErrNotFound) {
		return principal.Principal{}, "", queryapi.ErrUnknownKey
	}
	if err != nil {
		return principal.Principal{}, "", err
	}
	a, err := c.store.AccountByID(ctx, k.AccountID)
	if err != nil {
		return principal.Principal{}, "", err
	}
	return principal.Principal{AccountID: a.ID, AccountName: a.Name, UserName: k.UserName, AccessKeyID: k.ID}, k.Secret, nil
}

// AccountName is an account's name; store.ErrNotFound when there is none
// (Walrus's display names and grantee checks).
func (c *Cloud) AccountName(ctx context.Context, accountID string) (string, error) {
	a, err := c.store.AccountByID(ctx, accountID)
	if err != nil {
		return "", err
	}
	return a.Name, nil
}

// internal turns an unexpected store failure into the API's internal error.
func internal(err error) error { return awserr.Internal(err) }

// UserCreated is when a user's account was made (iamapi.Users); Eucalyptus
// 1.x users were born with their account.
func (c *Cloud) UserCreated(ctx context.Context, accountID, userName string) (time.Time, error) {
	a, err := c.store.AccountByID(ctx, accountID)
	if err != nil {
		return time.Time{}, err
	}
	return store.Time(a.CreatedMS), nil
}
