// Package join lets a host join the cloud with a token and keeps the
// certificate it gets.
//
// The front-end (the CLC, which is the cloud's CA) serves two calls on its
// internal TLS side (CLOUD_PORT, told apart from plain HTTP by the first
// byte):
//
//   - POST /internal/v1/join, without a client certificate: the host sends
//     the token's secret, its role, its host name and addresses, and a
//     certificate request over a key it made itself; the front-end checks
//     the secret against the hash it stored (`euca token create`), uses the
//     token up, and answers a certificate naming that host (and the address
//     the request came from) with the CA's certificate.
//   - POST /internal/v1/renew, with the host's certificate: a fresh
//     certificate for the same identity, unless it was revoked
//     (`euca node revoke HOST`).
//
// The joining host trusts the front-end only once the CA certificate it
// shows in its TLS chain matches the token's pin (the hash of the CA's
// public key) and that CA signed the front-end's certificate for the
// address dialled: the secret is never sent before (Join). Afterwards the
// host starts from what Join wrote (Load) and renews well before expiry
// (Identity.KeepRenewed), swapping the certificate under running listeners
// and clients (Identity.ServerTLSConfig, Identity.ClientTLSConfig).
//
// Each refusal says which it is: the server's CA does not match the pin,
// the token is unknown (forged, or another cloud's), expired or already
// used, the certificate is revoked, or it is presented by another host.
package join

import (
	"errors"
	"net/http"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
)

// The calls, on the front-end's internal TLS side.
const (
	PathJoin  = "/internal/v1/join"
	PathRenew = "/internal/v1/renew"
)

// Roles a host may join as.
var Roles = []string{"nc", "cc", "walrus"}

// HostValidity is how long a joined host's certificate is valid; it is
// renewed when a third of that is left, so a front-end down for days does
// not strand its nodes.
const HostValidity = 30 * 24 * time.Hour

// Refusals. Each says what happened and what to do, since the message is
// what an operator reads on the joining host.
var (
	ErrPinMismatch  = errors.New("the server's CA does not match the token's pin: this is not the cloud that made the token (or someone is in between); check --server")
	ErrTokenUnknown = errors.New("the join token is unknown to this cloud (forged, mistyped, or made by another cloud); make one with `euca token create` on the front-end")
	ErrTokenExpired = errors.New("the join token has expired; make a new one with `euca token create` on the front-end")
	ErrTokenUsed    = errors.New("the join token was already used (a token joins one host once); make a new one with `euca token create` on the front-end")
	ErrWrongRole    = errors.New("the join token was made for another role")
	ErrRevoked      = errors.New("this host's certificate has been revoked (euca node revoke); join again with a new token")
	ErrNotJoined    = errors.New("this host has not joined a cloud")
	ErrExpired      = errors.New("this host's certificate has expired")
	ErrBadRequest   = errors.New("bad join request")
)

// Errors is the join API's error table, so that errors.Is holds on the
// joining host for each refusal.
var Errors = rpc.Errors{
	{Code: "TokenUnknown", Status: http.StatusForbidden, Err: ErrTokenUnknown},
	{Code: "TokenExpired", Status: http.StatusForbidden, Err: ErrTokenExpired},
	{Code: "TokenUsed", Status: http.StatusForbidden, Err: ErrTokenUsed},
	{Code: "WrongRole", Status: http.StatusForbidden, Err: ErrWrongRole},
	{Code: "CertificateRevoked", Status: http.StatusForbidden, Err: ErrRevoked},
	{Code: "WrongHost", Status: http.StatusForbidden, Err: pki.ErrWrongHost},
	{Code: rpc.CodeBadRequest, Status: http.StatusBadRequest, Err: ErrBadRequest},
}

// joinRequest is the body of a join call. Secret is the token's secret in
// hex: it travels only inside TLS to a server whose CA matched the pin.
type joinRequest struct {
	Secret    string   `json:"secret"`
	Role      string   `json:"role"`
	Host      string   `json:"host"`
	DNSNames  []string `json:"dns_names,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	CSR       string   `json:"csr"` // PEM CERTIFICATE REQUEST over the host's own key
}

// renewRequest is the body of a renew call: the identity is the presented
// certificate's, the key the request's.
type renewRequest struct {
	CSR string `json:"csr"`
}

// certResponse answers both calls.
type certResponse struct {
	Certificate string `json:"certificate"` // PEM
	CA          string `json:"ca"`          // PEM
}

// Limits of a join request: a host has a handful of names and addresses.
const (
	maxNames   = 32
	maxNameLen = 253
	maxCSR     = 16 << 10
)
