package ec2api

import (
	"context"
	"encoding/base64"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// KeyPairService is the cloud controller's side of the key pair actions.
// Key names, types and material are checked there; the private key of a
// created pair is returned once and never stored.
type KeyPairService interface {
	// CreateKeyPair makes a key pair of keyType ("rsa" or "ed25519") and
	// returns it with its private key in PEM.
	CreateKeyPair(ctx context.Context, accountID, name, keyType string, tags []store.Tag) (kp store.KeyPair, privateKeyPEM string, err error)
	// ImportKeyPair stores the public key given in any accepted format.
	ImportKeyPair(ctx context.Context, accountID, name string, publicKey []byte, tags []store.Tag) (store.KeyPair, error)
	// DeleteKeyPair deletes by id when keyPairID is given, else by name; a
	// name that does not exist is not an error. It returns the deleted id.
	DeleteKeyPair(ctx context.Context, accountID, name, keyPairID string) (deletedID string, err error)
	// DescribeKeyPairs lists the account's key pairs, or those named by
	// names and ids (each of which must exist).
	DescribeKeyPairs(ctx context.Context, accountID string, names, keyPairIDs []string) ([]store.KeyPair, error)
}

// createKeyPairResponse is botocore's KeyPair shape.
type createKeyPairResponse struct {
	Response
	KeyPairID      string    `xml:"keyPairId"`
	KeyName        string    `xml:"keyName"`
	KeyFingerprint string    `xml:"keyFingerprint"`
	KeyMaterial    string    `xml:"keyMaterial"`
	Tags           []tagItem `xml:"tagSet>item"`
}

func (a *api) createKeyPair(ctx context.Context, req *queryapi.Request) (any, error) {
	if err := dryRun(req.Params); err != nil {
		return nil, err
	}
	p := req.Params
	name, err := p.Required("KeyName")
	if err != nil {
		return nil, err
	}
	keyType := p.String("KeyType")
	if keyType == "" {
		keyType = "rsa"
	}
	switch format := p.String("KeyFormat"); format {
	case "", "pem":
	case "ppk":
		return nil, awserr.InvalidParameterValue("The key format ppk is not supported; use pem (puttygen converts it).")
	default:
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter KeyFormat is invalid. Valid values are pem and ppk.", format)
	}
	tags, err := tagsFor(p.TagSpecifications(), store.TypeKeyPair)
	if err != nil {
		return nil, err
	}
	kp, material, err := a.cloud.CreateKeyPair(ctx, req.Caller.AccountID, name, keyType, tags)
	if err != nil {
		return nil, err
	}
	return &createKeyPairResponse{KeyPairID: kp.ID, KeyName: kp.Name, KeyFingerprint: kp.Fingerprint,
		KeyMaterial: material, Tags: tagItems(kp.Tags)}, nil
}

type importKeyPairResponse struct {
	Response
	KeyFingerprint string    `xml:"keyFingerprint"`
	KeyName        string    `xml:"keyName"`
	KeyPairID      string    `xml:"keyPairId"`
	Tags           []tagItem `xml:"tagSet>item"`
}

func (a *api) importKeyPair(ctx context.Context, req *queryapi.Request) (any, error) {
	if err := dryRun(req.Params); err != nil {
		return nil, err
	}
	p := req.Params
	name, err := p.Required("KeyName")
	if err != nil {
		return nil, err
	}
	encoded, err := p.Required("PublicKeyMaterial")
	if err != nil {
		return nil, err
	}
	tags, err := tagsFor(p.TagSpecifications(), store.TypeKeyPair)
	if err != nil {
		return nil, err
	}
	kp, err := a.cloud.ImportKeyPair(ctx, req.Caller.AccountID, name, publicKeyMaterial(encoded), tags)
	if err != nil {
		return nil, err
	}
	return &importKeyPairResponse{KeyFingerprint: kp.Fingerprint, KeyName: kp.Name, KeyPairID: kp.ID, Tags: tagItems(kp.Tags)}, nil
}

// publicKeyMaterial undoes the base64 botocore applies to the blob
// PublicKeyMaterial. Older clients sent the key as it is; an OpenSSH line
// or an RFC 4716 file is never valid base64 (spaces, dashes), so such a
// value is taken as sent.
func publicKeyMaterial(v string) []byte {
	if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err == nil {
		return b
	}
	return []byte(v)
}

type deleteKeyPairResponse struct {
	Response
	Return    bool   `xml:"return"`
	KeyPairID string `xml:"keyPairId,omitempty"`
}

func (a *api) deleteKeyPair(ctx context.Context, req *queryapi.Request) (any, error) {
	if err := dryRun(req.Params); err != nil {
		return nil, err
	}
	p := req.Params
	name, id := p.String("KeyName"), p.String("KeyPairId")
	if name == "" && id == "" {
		return nil, awserr.MissingParameter("KeyName or KeyPairId")
	}
	deleted, err := a.cloud.DeleteKeyPair(ctx, req.Caller.AccountID, name, id)
	if err != nil {
		return nil, err
	}
	return &deleteKeyPairResponse{Return: true, KeyPairID: deleted}, nil
}

// keyPairInfo is botocore's KeyPairInfo shape.
type keyPairInfo struct {
	KeyPairID      string         `xml:"keyPairId"`
	KeyType        string         `xml:"keyType"`
	Tags           setOf[tagItem] `xml:"tagSet"`
	PublicKey      string         `xml:"publicKey,omitempty"`
	CreateTime     string         `xml:"createTime"`
	KeyName        string         `xml:"keyName"`
	KeyFingerprint string         `xml:"keyFingerprint"`
}

type describeKeyPairsResponse struct {
	Response
	KeySet setOf[keyPairInfo] `xml:"keySet"`
}

var keyPairFilters = filterFields[store.KeyPair]{
	"key-pair-id": func(k store.KeyPair) []string { return []string{k.ID} },
	"key-name":    func(k store.KeyPair) []string { return []string{k.Name} },
	"fingerprint": func(k store.KeyPair) []string { return []string{k.Fingerprint} },
	"key-type":    func(k store.KeyPair) []string { return []string{k.Type} },
}

// keyTimeFormat is how EC2 writes its timestamps (ISO 8601, UTC, milliseconds).
const keyTimeFormat = "2006-01-02T15:04:05.000Z"

func (a *api) describeKeyPairs(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	// DescribeKeyPairs answers a dry run before it reads anything else.
	if err := dryRun(p); err != nil {
		return nil, err
	}
	var withPublic bool
	keys, _, err := describe(p, describeCall[store.KeyPair]{
		fields: keyPairFilters, tags: func(k store.KeyPair) []store.Tag { return k.Tags },
		check: func() (err error) {
			withPublic, err = p.Bool("IncludePublicKey")
			return err
		},
		fetch: func() ([]store.KeyPair, error) {
			return a.cloud.DescribeKeyPairs(ctx, req.Caller.AccountID, p.List("KeyName"), p.List("KeyPairId"))
		},
	})
	if err != nil {
		return nil, err
	}
	resp := &describeKeyPairsResponse{}
	for _, k := range keys {
		item := keyPairInfo{KeyPairID: k.ID, KeyType: k.Type, Tags: tagSetOf(k.Tags),
			CreateTime: store.Time(k.CreatedMS).Format(keyTimeFormat), KeyName: k.Name, KeyFingerprint: k.Fingerprint}
		if withPublic {
			item.PublicKey = k.PublicKey
		}
		resp.KeySet.Items = append(resp.KeySet.Items, item)
	}
	return resp, nil
}
