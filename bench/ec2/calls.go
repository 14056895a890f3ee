package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"
)

// simple is one call with fixed parameters.
func simple(ep *endpoint, action string, params url.Values) op {
	return func(ctx context.Context, _, _ int) error {
		_, err := ep.call(ctx, action, params)
		return err
	}
}

// seq makes names unique across cells and concurrencies of a run.
var seq atomic.Int64

// keyPairCycle creates a key pair of a fresh name and deletes it.
func keyPairCycle(ep *endpoint) op {
	return func(ctx context.Context, _, _ int) error {
		name := fmt.Sprintf("bench-cycle-%d", seq.Add(1))
		if _, err := ep.call(ctx, "CreateKeyPair", url.Values{"KeyName": {name}}); err != nil {
			return err
		}
		_, err := ep.call(ctx, "DeleteKeyPair", url.Values{"KeyName": {name}})
		return err
	}
}

// instanceCycle launches one m1.small and terminates it (without waiting
// for either to settle: the API's part, as a client sees it).
func instanceCycle(ep *endpoint, image string) op {
	return func(ctx context.Context, _, _ int) error {
		ids, err := runInstances(ctx, ep, image, 1)
		if err != nil {
			return err
		}
		_, err = ep.call(ctx, "TerminateInstances", url.Values{"InstanceId.1": {ids[0]}})
		return err
	}
}

func runInstances(ctx context.Context, ep *endpoint, image string, n int) ([]string, error) {
	out, err := ep.call(ctx, "RunInstances", url.Values{"ImageId": {image}, "InstanceType": {"m1.small"},
		"MinCount": {strconv.Itoa(n)}, "MaxCount": {strconv.Itoa(n)}})
	if err != nil {
		return nil, err
	}
	ids := unique(firstMatches(instanceIDRe, out))
	if len(ids) != n {
		return nil, fmt.Errorf("%s RunInstances of %d: %d instance ids in the response", ep.name, n, len(ids))
	}
	return ids, nil
}

func unique(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

var nextTokenRe = regexp.MustCompile(`<nextToken>([^<]+)</nextToken>`)

// eachPage lists every instance page by page (MaxResults 1000, following
// NextToken, as the AWS CLI and Terraform do), handing each page's XML to
// page.
func eachPage(ctx context.Context, ep *endpoint, page func(out []byte)) error {
	token := ""
	for {
		p := url.Values{"MaxResults": {"1000"}}
		if token != "" {
			p.Set("NextToken", token)
		}
		out, err := ep.call(ctx, "DescribeInstances", p)
		if err != nil {
			return err
		}
		page(out)
		m := nextTokenRe.FindSubmatch(out)
		if m == nil {
			return nil
		}
		token = string(m[1])
	}
}

// states lists every instance's state.
func states(ctx context.Context, ep *endpoint) ([]string, error) {
	var all []string
	err := eachPage(ctx, ep, func(out []byte) { all = append(all, firstMatches(stateNameRe, out)...) })
	if err != nil {
		return nil, err
	}
	return all, nil
}

// listAll is one listing of every instance; it checks it saw want of them,
// so that a short page can never pass for a fast one. It counts rather than
// parses: a listing of 10,000 is tens of megabytes, and the client shares
// the CPUs with the server.
func listAll(ep *endpoint, want int) op {
	marker := []byte("<instanceState>")
	return func(ctx context.Context, _, _ int) error {
		n := 0
		if err := eachPage(ctx, ep, func(out []byte) { n += bytes.Count(out, marker) }); err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("%s DescribeInstances listed %d instances, want %d", ep.name, n, want)
		}
		return nil
	}
}

// describeOne is DescribeInstances of one instance by its id.
func describeOne(ep *endpoint, id string) op {
	return func(ctx context.Context, _, _ int) error {
		out, err := ep.call(ctx, "DescribeInstances", url.Values{"InstanceId.1": {id}})
		if err == nil && len(firstMatches(stateNameRe, out)) != 1 {
			err = fmt.Errorf("%s DescribeInstances of %s: not one instance in the response", ep.name, id)
		}
		return err
	}
}

// settle waits until none of the account's instances is pending (euca's
// node starts them in the background; moto records them running) and
// returns how many there are.
func settle(ctx context.Context, ep *endpoint) (int, error) {
	deadline := time.Now().Add(30 * time.Minute)
	for {
		t0 := time.Now()
		s, err := states(ctx, ep)
		if err != nil {
			return 0, err
		}
		pending := 0
		for _, st := range s {
			switch st {
			case "pending":
				pending++
			case "running":
			default:
				return 0, fmt.Errorf("%s: an instance is %s, not running", ep.name, st)
			}
		}
		if pending == 0 {
			return len(s), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: %d of %d instances still pending after 30 minutes", ep.name, pending, len(s))
		}
		// A listing of 10,000 takes the server seconds: poll no harder
		// than half its time, so that the polls do not slow the launch.
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(max(500*time.Millisecond, 2*time.Since(t0))):
		}
	}
}

// launchMany fills the store with n instances, batch per RunInstances,
// and waits until they run.
func launchMany(ctx context.Context, ep *endpoint, image string, n, batch int) ([]string, error) {
	var ids []string
	for len(ids) < n {
		got, err := runInstances(ctx, ep, image, min(batch, n-len(ids)))
		if err != nil {
			return nil, fmt.Errorf("after %d instances: %w", len(ids), err)
		}
		ids = append(ids, got...)
		progress("%s: %d of %d instances asked for", ep.name, len(ids), n)
	}
	if _, err := settle(ctx, ep); err != nil {
		return nil, err
	}
	return ids, nil
}

// fillAccount makes the small account: n key pairs, n security groups of
// one rule each, n running instances.
func fillAccount(ctx context.Context, ep *endpoint, image string, n int) error {
	for i := 0; i < n; i++ {
		if _, err := ep.call(ctx, "CreateKeyPair", url.Values{"KeyName": {fmt.Sprintf("bench-key-%d", i)}}); err != nil {
			return err
		}
		out, err := ep.call(ctx, "CreateSecurityGroup", url.Values{"GroupName": {fmt.Sprintf("bench-sg-%d", i)},
			"GroupDescription": {"bench"}})
		if err != nil {
			return err
		}
		g := firstMatches(groupIDRe, out)
		if len(g) == 0 {
			return fmt.Errorf("%s CreateSecurityGroup: no groupId in the response", ep.name)
		}
		if _, err := ep.call(ctx, "AuthorizeSecurityGroupIngress", url.Values{"GroupId": {g[0]},
			"IpPermissions.1.IpProtocol": {"tcp"}, "IpPermissions.1.FromPort": {"22"}, "IpPermissions.1.ToPort": {"22"},
			"IpPermissions.1.IpRanges.1.CidrIp": {"0.0.0.0/0"}}); err != nil {
			return err
		}
	}
	if n == 0 {
		return nil
	}
	if _, err := runInstances(ctx, ep, image, n); err != nil {
		return err
	}
	got, err := settle(ctx, ep)
	if err == nil && got != n {
		err = fmt.Errorf("%s: %d instances, want %d", ep.name, got, n)
	}
	return err
}

var imageStateRe = regexp.MustCompile(`<imageState>([^<]+)</imageState>`)

// eucaImage bundles, uploads and registers a machine image and waits until
// it is available.
func eucaImage(ctx context.Context, e *euca, ep *endpoint) (string, error) {
	loc, err := e.bundleImage()
	if err != nil {
		return "", err
	}
	out, err := ep.call(ctx, "RegisterImage", url.Values{"ImageLocation": {loc}, "Name": {"bench"}, "Architecture": {"x86_64"}})
	if err != nil {
		return "", err
	}
	ids := firstMatches(imageIDRe, out)
	if len(ids) == 0 {
		return "", errors.New("euca RegisterImage: no imageId in the response")
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		out, err := ep.call(ctx, "DescribeImages", url.Values{"ImageId.1": {ids[0]}})
		if err != nil {
			return "", err
		}
		st := firstMatches(imageStateRe, out)
		if len(st) == 1 && st[0] == "available" {
			return ids[0], nil
		}
		if len(st) == 1 && st[0] != "pending" {
			return "", fmt.Errorf("euca image %s is %s", ids[0], st[0])
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("euca image %s: not available within 2 minutes", ids[0])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// motoImage is one of the images moto ships.
func motoImage(ctx context.Context, ep *endpoint) (string, error) {
	out, err := ep.call(ctx, "DescribeImages", url.Values{"Owner.1": {"amazon"}})
	if err != nil {
		return "", err
	}
	ids := firstMatches(imageIDRe, out)
	if len(ids) == 0 {
		return "", errors.New("moto DescribeImages: no image")
	}
	return ids[0], nil
}

// trivialKeyPairs is what the trivial server answers to anything.
const trivialKeyPairs = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeKeyPairsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>1</requestId><keySet/></DescribeKeyPairsResponse>`

// clientCeiling drives DescribeKeyPairs against a server in this process
// that reads each request and answers a fixed body, checking nothing: what
// this client can do at most on this machine, server included.
func clientCeiling(ctx context.Context, c config, conc int) (result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		_, _ = w.Write([]byte(trivialKeyPairs))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	ep, err := newEndpoint("trivial", "http://"+ln.Addr().String()+"/", "AKIABENCHTRIVIAL0000", "trivial", "us-east-1", conc)
	if err != nil {
		return result{}, err
	}
	r := drive(ctx, conc, c.warm, c.d, simple(ep, "DescribeKeyPairs", nil))
	if r.firstErr != nil {
		return r, r.firstErr
	}
	progress("client ceiling: DescribeKeyPairs ×%d against a trivial server in this process: %.0f/s p50 %s p99 %s",
		conc, r.rps(), ms(r.pct(50)), ms(r.pct(99)))
	return r, nil
}
