package ec2api

import (
	"context"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/principal"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/internal/sshkey"
)

// kpAPI is the EC2 API over a real cloud controller and store, with two
// accounts; it returns their ids.
func kpAPI(t *testing.T) (a *api, alice, bob string) {
	t.Helper()
	c, _, ids := newTestCloud(t, nil, "alice", "bob")
	return &api{cloud: c}, ids[0], ids[1]
}

// kpCall runs one action as account through the action table.
func kpCall(t *testing.T, a *api, account, action string, params queryapi.Params) (any, error) {
	t.Helper()
	h, ok := a.actions()[action]
	if !ok {
		t.Fatalf("no action %s", action)
	}
	params["Action"] = action
	return h(context.Background(), &queryapi.Request{Action: action, Params: params, Caller: principal.Principal{AccountID: account}})
}

// kpMust is kpCall that fails the test on an error and returns the
// response as botocore parses it.
func kpMust(t *testing.T, a *api, account, action string, params queryapi.Params) map[string]any {
	t.Helper()
	resp, err := kpCall(t, a, account, action, params)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	return botoParse(t, action, resp)
}

func kpCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if e, ok := awserr.As(err); !ok || e.Code != code {
		t.Errorf("%s: error %v, want code %s", what, err, code)
	}
}

func TestCreateKeyPairAPI(t *testing.T) {
	a, alice, _ := kpAPI(t)
	r := kpMust(t, a, alice, "CreateKeyPair", queryapi.Params{
		"KeyName": "web", "KeyType": "ed25519",
		"TagSpecification.1.ResourceType": "key-pair", "TagSpecification.1.Tag.1.Key": "env", "TagSpecification.1.Tag.1.Value": "prod",
	})
	if r["KeyName"] != "web" || !strings.HasPrefix(r["KeyPairId"].(string), "key-") ||
		!strings.HasPrefix(r["KeyMaterial"].(string), "-----BEGIN OPENSSH PRIVATE KEY-----") || !strings.HasSuffix(r["KeyFingerprint"].(string), "=") {
		t.Errorf("CreateKeyPair = %v", r)
	}
	if tags, _ := r["Tags"].([]any); len(tags) != 1 {
		t.Errorf("Tags = %v", r["Tags"])
	}
	// rsa is the default, in PKCS#1 PEM with a colon-hex SHA-1 fingerprint.
	r = kpMust(t, a, alice, "CreateKeyPair", queryapi.Params{"KeyName": "rsa"})
	if !strings.HasPrefix(r["KeyMaterial"].(string), "-----BEGIN RSA PRIVATE KEY-----") || len(r["KeyFingerprint"].(string)) != 59 {
		t.Errorf("CreateKeyPair rsa = %v", r)
	}

	for _, tc := range []struct {
		name   string
		params queryapi.Params
		code   string
	}{
		{"no name", queryapi.Params{}, "MissingParameter"},
		{"duplicate", queryapi.Params{"KeyName": "web"}, "InvalidKeyPair.Duplicate"},
		{"ppk", queryapi.Params{"KeyName": "p", "KeyFormat": "ppk"}, "InvalidParameterValue"},
		{"bad format", queryapi.Params{"KeyName": "p", "KeyFormat": "der"}, "InvalidParameterValue"},
		{"bad type", queryapi.Params{"KeyName": "p", "KeyType": "dsa"}, "InvalidParameterValue"},
		{"wrong tag type", queryapi.Params{"KeyName": "p", "TagSpecification.1.ResourceType": "instance", "TagSpecification.1.Tag.1.Key": "a"}, "InvalidParameterValue"},
		{"aws: tag", queryapi.Params{"KeyName": "p", "TagSpecification.1.ResourceType": "key-pair", "TagSpecification.1.Tag.1.Key": "aws:x"}, "InvalidParameterValue"},
	} {
		_, err := kpCall(t, a, alice, "CreateKeyPair", tc.params)
		kpCode(t, tc.name, err, tc.code)
	}
}

func TestImportDescribeDeleteKeyPairAPI(t *testing.T) {
	a, alice, bob := kpAPI(t)
	gen, err := sshkey.Generate(sshkey.RSA, "")
	if err != nil {
		t.Fatal(err)
	}
	line := gen.Public.AuthorizedKey("me@host") + "\n"
	// botocore sends the blob in base64; older clients sent it as it is.
	r := kpMust(t, a, alice, "ImportKeyPair", queryapi.Params{"KeyName": "mine",
		"PublicKeyMaterial": base64.StdEncoding.EncodeToString([]byte(line))})
	if r["KeyFingerprint"] != gen.Public.ImportFingerprint() || r["KeyName"] != "mine" {
		t.Errorf("ImportKeyPair = %v", r)
	}
	mineID := r["KeyPairId"].(string)
	kpMust(t, a, alice, "ImportKeyPair", queryapi.Params{"KeyName": "raw", "PublicKeyMaterial": line,
		"TagSpecification.1.ResourceType": "key-pair", "TagSpecification.1.Tag.1.Key": "team", "TagSpecification.1.Tag.1.Value": "a"})
	_, err = kpCall(t, a, alice, "ImportKeyPair", queryapi.Params{"KeyName": "bad", "PublicKeyMaterial": base64.StdEncoding.EncodeToString([]byte("not a key"))})
	kpCode(t, "garbage", err, "InvalidKey.Format")
	_, err = kpCall(t, a, alice, "ImportKeyPair", queryapi.Params{"KeyName": "bad"})
	kpCode(t, "no material", err, "MissingParameter")

	r = kpMust(t, a, alice, "DescribeKeyPairs", queryapi.Params{"KeyName.1": "mine", "IncludePublicKey": "true"})
	keys := r["KeyPairs"].([]any)
	if len(keys) != 1 {
		t.Fatalf("DescribeKeyPairs = %v", r)
	}
	k := keys[0].(map[string]any)
	if k["KeyPairId"] != mineID || k["KeyType"] != "rsa" || k["PublicKey"] != gen.Public.AuthorizedKey("mine") ||
		k["CreateTime"] == nil || k["KeyFingerprint"] != gen.Public.ImportFingerprint() {
		t.Errorf("key = %v", k)
	}
	if tags, ok := k["Tags"].([]any); !ok || len(tags) != 0 {
		t.Errorf("an untagged key should have an empty Tags list: %v", k["Tags"])
	}
	r = kpMust(t, a, alice, "DescribeKeyPairs", queryapi.Params{})
	if keys := r["KeyPairs"].([]any); len(keys) != 2 || keys[0].(map[string]any)["PublicKey"] != nil {
		t.Errorf("all keys, without public keys: %v", r)
	}
	for filter, want := range map[string]int{"key-name=m*": 1, "tag:team=a": 1, "tag-key=team": 1, "key-type=rsa": 2,
		"fingerprint=" + gen.Public.ImportFingerprint(): 2, "key-pair-id=" + mineID: 1, "key-type=ed25519": 0} {
		name, value, _ := strings.Cut(filter, "=")
		r = kpMust(t, a, alice, "DescribeKeyPairs", queryapi.Params{"Filter.1.Name": name, "Filter.1.Value.1": value})
		if got, _ := r["KeyPairs"].([]any); len(got) != want {
			t.Errorf("filter %s: %d keys, want %d", filter, len(got), want)
		}
	}
	_, err = kpCall(t, a, alice, "DescribeKeyPairs", queryapi.Params{"Filter.1.Name": "color", "Filter.1.Value.1": "x"})
	kpCode(t, "unknown filter", err, "InvalidParameterValue")
	_, err = kpCall(t, a, alice, "DescribeKeyPairs", queryapi.Params{"KeyName.1": "nope"})
	kpCode(t, "unknown name", err, "InvalidKeyPair.NotFound")
	_, err = kpCall(t, a, bob, "DescribeKeyPairs", queryapi.Params{"KeyPairId.1": mineID})
	kpCode(t, "another account's id", err, "InvalidKeyPair.NotFound")

	r = kpMust(t, a, alice, "DeleteKeyPair", queryapi.Params{"KeyName": "nope"})
	if r["Return"] != true || r["KeyPairId"] != nil {
		t.Errorf("delete of an unknown name = %v", r)
	}
	r = kpMust(t, a, alice, "DeleteKeyPair", queryapi.Params{"KeyPairId": mineID})
	if r["Return"] != true || r["KeyPairId"] != mineID {
		t.Errorf("delete by id = %v", r)
	}
	_, err = kpCall(t, a, alice, "DeleteKeyPair", queryapi.Params{"KeyPairId": mineID})
	kpCode(t, "delete of an unknown id", err, "InvalidKeyPair.NotFound")
	_, err = kpCall(t, a, alice, "DeleteKeyPair", queryapi.Params{})
	kpCode(t, "delete without a key", err, "MissingParameter")
}

// FuzzImportKeyPair feeds ImportKeyPair's decoding and the public key
// parser arbitrary material: never a panic, and whatever parses survives a
// round trip through the authorized_keys line the cloud stores.
func FuzzImportKeyPair(f *testing.F) {
	f.Add([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDS6tuOFzT8t1pXHTzp0gEl7rZKXHJa8Qr2aJZ9L0TaE me@host"))
	f.Add([]byte("---- BEGIN SSH2 PUBLIC KEY ----\n---- END SSH2 PUBLIC KEY ----\n"))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, material []byte) {
		for _, m := range [][]byte{material, publicKeyMaterial(string(material))} {
			k, err := sshkey.Parse(m)
			if err != nil {
				continue
			}
			line := k.AuthorizedKey("name")
			again, err := sshkey.Parse([]byte(line))
			if err != nil {
				t.Fatalf("stored line %q does not parse: %v", line, err)
			}
			if !again.Equal(k) || again.ImportFingerprint() != k.ImportFingerprint() {
				t.Fatalf("round trip changed the key: %q", line)
			}
		}
	})
}

// TestFuzzSeedsParse: the committed corpus holds each accepted form; the
// ones named ok_* must parse, the rest must not.
func TestFuzzSeedsParse(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzImportKeyPair")
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no seed corpus in %s: %v", dir, err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		material, err := corpusBytes(raw)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		_, err = sshkey.Parse(material)
		if ok := strings.HasPrefix(e.Name(), "ok_"); ok != (err == nil) {
			t.Errorf("%s: Parse error %v", e.Name(), err)
		}
	}
}

// corpusBytes reads a "go test fuzz v1" file of one []byte value.
func corpusBytes(raw []byte) ([]byte, error) {
	s := strings.TrimSpace(string(raw))
	header, body, _ := strings.Cut(s, "\n")
	if header != "go test fuzz v1" || !strings.HasPrefix(body, "[]byte(") || !strings.HasSuffix(body, ")") {
		return nil, io.ErrUnexpectedEOF
	}
	v, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(body, "[]byte("), ")"))
	return []byte(v), err
}
