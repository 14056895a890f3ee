package awsauth

import (
	"net/url"
	"sort"
	"strings"
)

const upperhex = "0123456789ABCDEF"

// uriEncode percent-encodes every byte except the RFC 3986 unreserved
// characters (A-Z a-z 0-9 - _ . ~), with upper-case hex, as both AWS
// signature versions require. keepSlash leaves '/' alone (paths).
func uriEncode(s string, keepSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !keep(s[i], keepSlash) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keep(c, keepSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperhex[c>>4])
		b.WriteByte(upperhex[c&15])
	}
	return b.String()
}

func keep(c byte, keepSlash bool) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	case c == '-', c == '_', c == '.', c == '~':
		return true
	case c == '/':
		return keepSlash
	}
	return false
}

// queryPair is one key=value of a query string, decoded.
type queryPair struct{ key, value string }

// parseQuery splits a raw query string into decoded pairs, in order and
// keeping duplicates. '+' decodes to a space, as every server does; AWS
// clients encode a space as %20 anyway.
func parseQuery(raw string) ([]queryPair, error) {
	var pairs []queryPair
	for raw != "" {
		var piece string
		piece, raw, _ = strings.Cut(raw, "&")
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return nil, malformed("The query string is not validly percent-encoded.")
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return nil, malformed("The query string is not validly percent-encoded.")
		}
		pairs = append(pairs, queryPair{dk, dv})
	}
	return pairs, nil
}

// canonicalQueryV4 is the SigV4 CanonicalQueryString: every pair except
// those skip names, key and value URI-encoded, sorted by encoded key then
// encoded value, joined with '&'.
func canonicalQueryV4(pairs []queryPair, skip string) string {
	enc := make([]queryPair, 0, len(pairs))
	for _, p := range pairs {
		if skip != "" && p.key == skip {
			continue
		}
		enc = append(enc, queryPair{uriEncode(p.key, false), uriEncode(p.value, false)})
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].key != enc[j].key {
			return enc[i].key < enc[j].key
		}
		return enc[i].value < enc[j].value
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// canonicalURIV4 is the SigV4 CanonicalURI.
//
// S3 signs the path exactly as it went on the wire (clients have already
// URI-encoded each key segment the AWS way), so it is used as is.
//
// Every other service signs the URI-encoding of the wire path: the
// escaped path is encoded once more ("/%20/foo" is signed as
// "/%2520/foo"), which is what the AWS documents call encoding each path
// segment twice. Those services also normalise the path first: "." and
// ".." segments are resolved and empty segments dropped, as the SDKs do.
func canonicalURIV4(escapedPath string, style Style) string {
	if escapedPath == "" {
		escapedPath = "/"
	}
	if style == StyleS3 {
		return escapedPath
	}
	return uriEncode(removeDotSegments(escapedPath), true)
}

// removeDotSegments resolves "." and ".." (RFC 3986 5.2.4) and collapses
// repeated slashes, keeping a leading and (for a non-root result) a
// trailing slash, exactly as botocore and the other SDKs normalise.
func removeDotSegments(p string) string {
	if p == "" {
		return ""
	}
	var out []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	var b strings.Builder
	if p[0] == '/' {
		b.WriteByte('/')
	}
	b.WriteString(strings.Join(out, "/"))
	if p[len(p)-1] == '/' && len(out) > 0 {
		b.WriteByte('/')
	}
	return b.String()
}

// escapedPath is the request path as sent on the wire, or "/" when empty.
func escapedPath(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return p
}
