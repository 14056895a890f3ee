package awsauth

import (
	"strings"
	"time"
)

const (
	// iso8601Basic is the SigV4 timestamp (X-Amz-Date), always UTC.
	iso8601Basic = "20060102T150405Z"
	// MaxSkew is how far a request's own date may be from the server
	// clock. AWS uses 15 minutes; so do we.
	MaxSkew = 15 * time.Minute
	// MaxPresignExpires is the longest X-Amz-Expires a SigV4 presigned
	// URL may ask for: seven days.
	MaxPresignExpires = 7 * 24 * time.Hour
)

// httpDateLayouts are the date forms clients put in Date and x-amz-date:
// RFC 1123 (the HTTP standard), RFC 1123 with a numeric zone (euca2ools
// and boto2 send "-0000"), RFC 850 and asctime (the obsolete HTTP forms),
// the one-digit-day variants, and ISO 8601 basic (SigV4's x-amz-date).
var httpDateLayouts = []string{
	time.RFC1123,
	time.RFC1123Z,
	time.RFC850,
	time.ANSIC,
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04:05 -0700",
	iso8601Basic,
}

// parseHTTPDate parses a Date or x-amz-date header value.
func parseHTTPDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range httpDateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// iso8601Layouts are the forms of the SigV2 Query Timestamp and Expires
// parameters: RFC 3339 with or without fractional seconds and zone.
var iso8601Layouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
}

func parseISO8601(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range iso8601Layouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// checkSkew refuses a request whose own date is more than MaxSkew from now.
func checkSkew(t, now time.Time) error {
	d := now.Sub(t)
	if d > MaxSkew || d < -MaxSkew {
		return ErrRequestExpired
	}
	return nil
}
