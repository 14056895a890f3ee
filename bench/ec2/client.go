package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"time"
)

// apiVersion is the EC2 API version botocore's model (2016-11-15) sends.
const apiVersion = "2016-11-15"

// endpoint is one EC2 Query endpoint with one identity: the same code,
// transport and signer for euca and for moto.
type endpoint struct {
	name string
	url  *url.URL
	sign *signer
	http *http.Client
}

func newEndpoint(name, rawURL, access, secret, region string, conns int) (*endpoint, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s: endpoint %q is not a URL", name, rawURL)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
	}
	return &endpoint{name: name, url: u,
		sign: &signer{access: access, secret: secret, region: region, service: "ec2"},
		// A request to 10,000 instances is slow on a loaded machine, but
		// a benchmark that hangs reports nothing.
		http: &http.Client{Transport: tr, Timeout: 5 * time.Minute}}, nil
}

// apiError is an EC2 error response.
type apiError struct {
	Status  int
	Code    string `xml:"Errors>Error>Code"`
	Message string `xml:"Errors>Error>Message"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// call sends one signed Query request and returns the whole response body
// (read to the end, as a client must to reuse the connection).
func (e *endpoint) call(ctx context.Context, action string, params url.Values) ([]byte, error) {
	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	form.Set("Action", action)
	form.Set("Version", apiVersion)
	body := []byte(form.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", formType)
	e.sign.sign(req, body, time.Now())
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", e.name, action, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", e.name, action, err)
	}
	if resp.StatusCode != http.StatusOK {
		ae := &apiError{Status: resp.StatusCode}
		if xml.Unmarshal(out, &ae) != nil || ae.Code == "" {
			ae.Code, ae.Message = http.StatusText(resp.StatusCode), string(out)
		}
		return nil, fmt.Errorf("%s %s: %w", e.name, action, ae)
	}
	return out, nil
}

var (
	instanceIDRe = regexp.MustCompile(`<instanceId>([^<]+)</instanceId>`)
	stateNameRe  = regexp.MustCompile(`<instanceState>\s*<code>\d+</code>\s*<name>([^<]+)</name>`)
	groupIDRe    = regexp.MustCompile(`<groupId>([^<]+)</groupId>`)
	imageIDRe    = regexp.MustCompile(`<imageId>([^<]+)</imageId>`)
)

// firstMatches returns the first submatch of each match of re in b.
func firstMatches(re *regexp.Regexp, b []byte) []string {
	var out []string
	for _, m := range re.FindAllSubmatch(b, -1) {
		out = append(out, string(m[1]))
	}
	return out
}
