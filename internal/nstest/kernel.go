package nstest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Attach enslaves the link port to bridge, both in ns.
func Attach(t testing.TB, ns netns.NsHandle, port, bridge string) {
	t.Helper()
	MustDo(t, ns, func() error {
		p, err := netlink.LinkByName(port)
		if err != nil {
			return err
		}
		br, err := netlink.LinkByName(bridge)
		if err != nil {
			return err
		}
		return netlink.LinkSetMaster(p, br)
	})
}

// MustLink is the link name in the calling thread's namespace (inside Do
// or Inside), failing t when there is none.
func MustLink(t testing.TB, name string) netlink.Link {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Metadata GETs /latest/meta-data/instance-id from 169.254.169.254:80 in
// ns, as a guest asks its metadata, and returns the answer's body (what
// the test's metadata server makes of the request).
func Metadata(ns netns.NsHandle, timeout time.Duration) (string, error) {
	var body string
	err := Do(ns, func() error {
		c, err := net.DialTimeout("tcp4", "169.254.169.254:80", timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		fmt.Fprint(c, "GET /latest/meta-data/instance-id HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err
	})
	return body, err
}

// RuleHandles are the rules of the inet nftables table in ns, each
// "chain/comment" (the comment netmode/nft gives every rule) to its handle: a rule replaced gets another handle, one
// left alone keeps its own.
func RuleHandles(t testing.TB, ns netns.NsHandle, table string) map[string]uint64 {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, ch := range chains {
		if ch.Table.Name != table {
			continue
		}
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			out[ch.Name+"/"+comment] = r.Handle
		}
	}
	return out
}

// Bridge makes the bridge name in ns, up, with the links ports of ns on it.
func Bridge(t testing.TB, ns netns.NsHandle, name string, ports ...string) {
	t.Helper()
	MustDo(t, ns, func() error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := netlink.LinkAdd(br); err != nil {
			return err
		}
		return netlink.LinkSetUp(br)
	})
	for _, p := range ports {
		Attach(t, ns, p, name)
	}
}
