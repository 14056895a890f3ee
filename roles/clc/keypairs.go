package clc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/internal/sshkey"
	"github.com/euca-cloud/euca/store"
)

// maxKeyNameLen is EC2's limit on a key pair's name: 255 ASCII characters.
const maxKeyNameLen = 255

func checkKeyName(name string) error {
	if name == "" {
		return awserr.MissingParameter("KeyName")
	}
	if len(name) > maxKeyNameLen {
		return awserr.InvalidParameterValue("Value (%.40s...) for parameter KeyName is invalid. Length exceeds maximum of %d.", name, maxKeyNameLen)
	}
	for i := 0; i < len(name); i++ {
		// Printable ASCII only: the name goes into authorized_keys comments
		// and the metadata service's listings, where a control character
		// would split or corrupt a line.
		if c := name[i]; c < 0x20 || c > 0x7e {
			return awserr.InvalidParameterValue("Value for parameter KeyName is invalid. Character sets beyond ASCII are not supported.")
		}
	}
	return nil
}

func keyPairNotFound(what string) *awserr.Error {
	return awserr.New("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", what)
}

// CreateKeyPair makes a key pair; the private key is returned once and
// never stored, and the public half is kept as an authorized_keys line
// commented with the key's name, as instances will be given it.
func (c *Cloud) CreateKeyPair(ctx context.Context, accountID, name, keyType string, tags []store.Tag) (store.KeyPair, string, error) {
	if err := checkKeyName(name); err != nil {
		return store.KeyPair{}, "", err
	}
	kind := sshkey.Kind(keyType)
	if kind != sshkey.RSA && kind != sshkey.Ed25519 {
		return store.KeyPair{}, "", awserr.InvalidParameterValue("Value (%s) for parameter KeyType is invalid. Valid values are rsa and ed25519.", keyType)
	}
	gen, err := sshkey.Generate(kind, name)
	if err != nil {
		return store.KeyPair{}, "", fmt.Errorf("create key pair %q: %w", name, err)
	}
	kp := store.KeyPair{ID: ids.New("key"), AccountID: accountID, Name: name, Type: string(kind),
		Fingerprint: gen.Fingerprint, PublicKey: gen.Public.AuthorizedKey(name), Tags: tags}
	if err := c.addKeyPair(ctx, kp); err != nil {
		return store.KeyPair{}, "", err
	}
	return kp, gen.PrivatePEM, nil
}

// ImportKeyPair stores the public half of a key pair the user made. The
// fingerprint is EC2's for imported keys (MD5 for RSA, unlike created ones).
func (c *Cloud) ImportKeyPair(ctx context.Context, accountID, name string, material []byte, tags []store.Tag) (store.KeyPair, error) {
	if err := checkKeyName(name); err != nil {
		return store.KeyPair{}, err
	}
	pub, err := sshkey.Parse(material)
	if err != nil {
		msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), sshkey.ErrFormat.Error()), ": ")
		return store.KeyPair{}, awserr.New("InvalidKey.Format", "Key is not in valid OpenSSH public key format: %s", msg).WithCause(err)
	}
	kp := store.KeyPair{ID: ids.New("key"), AccountID: accountID, Name: name, Type: string(pub.Kind),
		Fingerprint: pub.ImportFingerprint(), PublicKey: pub.AuthorizedKey(name), Tags: tags}
	if err := c.addKeyPair(ctx, kp); err != nil {
		return store.KeyPair{}, err
	}
	return kp, nil
}

func (c *Cloud) addKeyPair(ctx context.Context, kp store.KeyPair) error {
	err := c.store.CreateKeyPair(ctx, kp)
	switch {
	case errors.Is(err, store.ErrConflict):
		return awserr.New("InvalidKeyPair.Duplicate", "The keypair '%s' already exists.", kp.Name)
	case errors.Is(err, store.ErrTagLimit):
		return awserr.New("TagLimitExceeded", "The maximum number of tags per resource is %d.", store.MaxTags)
	case err != nil:
		return fmt.Errorf("store key pair %q: %w", kp.Name, err)
	}
	c.log.InfoContext(ctx, "key pair added", "account", kp.AccountID, "key", kp.ID, "name", kp.Name, "type", kp.Type)
	return nil
}

// DeleteKeyPair deletes a key pair by id, or else by name. As in EC2, a
// name that names nothing is deleted successfully (nothing to do), while an
// id that names nothing is an error. It returns the id deleted, if any.
func (c *Cloud) DeleteKeyPair(ctx context.Context, accountID, name, keyPairID string) (string, error) {
	var kp store.KeyPair
	var err error
	if keyPairID != "" {
		kp, err = c.store.KeyPairByID(ctx, accountID, keyPairID)
		if errors.Is(err, store.ErrNotFound) {
			return "", keyPairNotFound(keyPairID)
		}
	} else {
		kp, err = c.store.KeyPairByName(ctx, accountID, name)
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("delete key pair: %w", err)
	}
	if name != "" && kp.Name != name {
		// Both given and naming different keys: refuse rather than guess.
		return "", awserr.InvalidParameterValue("The key pair ID '%s' does not name the key pair '%s'.", keyPairID, name)
	}
	err = c.store.DeleteKeyPair(ctx, accountID, kp.ID)
	if errors.Is(err, store.ErrNotFound) { // deleted meanwhile: the outcome asked for
		return kp.ID, nil
	}
	if err != nil {
		return "", fmt.Errorf("delete key pair %s: %w", kp.ID, err)
	}
	c.log.InfoContext(ctx, "key pair deleted", "account", accountID, "key", kp.ID, "name", kp.Name)
	return kp.ID, nil
}

// DescribeKeyPairs lists the account's key pairs, by name. With names or
// ids it returns those (either kind of reference selects), and every one
// must exist: the unknown ones are named in InvalidKeyPair.NotFound.
func (c *Cloud) DescribeKeyPairs(ctx context.Context, accountID string, names, keyPairIDs []string) ([]store.KeyPair, error) {
	all, err := c.store.KeyPairs(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("describe key pairs: %w", err)
	}
	if len(names) == 0 && len(keyPairIDs) == 0 {
		return all, nil
	}
	byName := make(map[string]bool, len(names))
	byID := make(map[string]bool, len(keyPairIDs))
	for _, n := range names {
		byName[n] = true
	}
	for _, id := range keyPairIDs {
		byID[id] = true
	}
	var out []store.KeyPair
	found := map[string]bool{}
	for _, k := range all {
		if byName[k.Name] || byID[k.ID] {
			out = append(out, k)
			found[k.Name], found[k.ID] = true, true
		}
	}
	var missing []string
	for _, ref := range append(append([]string(nil), names...), keyPairIDs...) {
		if !found[ref] {
			missing = append(missing, ref)
			found[ref] = true // name it once
		}
	}
	switch len(missing) {
	case 0:
		return out, nil
	case 1:
		return nil, keyPairNotFound(missing[0])
	}
	return nil, awserr.New("InvalidKeyPair.NotFound", "The key pairs '%s' do not exist", strings.Join(missing, "', '"))
}
