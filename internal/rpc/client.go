package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/reqid"
)

// Client calls one role at BaseURL ("https://host:port").
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// NewClient is a client of the role at addr (host:port) presenting cert and
// trusting only the cloud's CA; without secure (ENABLE_WS_SECURITY="N") it
// speaks plain HTTP and says so loudly.
func NewClient(addr string, ca *pki.CA, cert tls.Certificate, secure bool, log *slog.Logger) *Client {
	var tc *tls.Config
	if secure {
		tc = ca.ClientTLSConfig(cert)
	}
	return NewClientConfig(addr, tc, log)
}

// NewClientConfig is a client of the role at addr over tc, for a caller
// whose certificate changes while it runs (a joined host renews its own:
// tc.GetClientCertificate answers the current one). A nil tc is plain HTTP
// (ENABLE_WS_SECURITY="N"), said loudly.
func NewClientConfig(addr string, tc *tls.Config, log *slog.Logger) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // internal traffic never goes through the operator's web proxy
	scheme := "https"
	if tc != nil {
		tr.TLSClientConfig = tc
	} else {
		scheme = "http"
		log.Warn("ENABLE_WS_SECURITY=N: calling another role over PLAIN HTTP without authentication", "addr", addr)
	}
	return &Client{BaseURL: scheme + "://" + addr, HTTP: &http.Client{Transport: tr}} // a call's deadline is its context's
}

// Call sends in as JSON to method path and decodes the answer into out (nil
// to discard it). An error answer is an *Error; decode it with the API's
// Errors table.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("rpc %s: encode: %w", path, err)
	}
	resp, err := c.do(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("rpc %s: decode answer: %w", path, err)
	}
	return nil
}

// Open GETs path (with its query) and returns the answer's body to stream:
// the caller closes it. An error answer is an *Error, as for Call.
func (c *Client) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// do sends the request with the context's request id and turns a non-2xx
// answer into an *Error.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	return c.doHeader(ctx, method, path, body, nil)
}

// doHeader is do with extra request headers.
func (c *Client) doHeader(ctx context.Context, method, path string, body io.Reader, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, fmt.Errorf("rpc %s: %w", path, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	id := reqid.From(ctx)
	if id == "" {
		id = reqid.New()
	}
	req.Header.Set(reqid.Header, id)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rpc %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get(reqid.Header)}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(raw, e) != nil || e.Code == "" {
		// Not one of ours (a proxy, a wrong port): keep what it said.
		e.Code, e.Message = CodeInternal, fmt.Sprintf("%s %s: %s: %.200s", method, path, resp.Status, raw)
	}
	return nil, e
}
