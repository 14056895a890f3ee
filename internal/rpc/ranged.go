package rpc

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// OpenFrom GETs path as Open does, but only from byte offset on (an HTTP
// range request, "bytes=offset-"), to resume a download a broken
// connection cut short. The server must answer 206 with a Content-Range
// that starts at offset; any other answer is an error, since appending the
// wrong bytes would only fail later, at the digest check, after the whole
// rest was fetched. Offset 0 is a plain Open.
func (c *Client) OpenFrom(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if offset <= 0 {
		return c.Open(ctx, path)
	}
	resp, err := c.doHeader(ctx, http.MethodGet, path, nil, http.Header{"Range": {"bytes=" + strconv.FormatInt(offset, 10) + "-"}})
	if err != nil {
		return nil, err
	}
	start, ok := rangeStart(resp.Header.Get("Content-Range"))
	if resp.StatusCode != http.StatusPartialContent || !ok || start != offset {
		resp.Body.Close()
		return nil, fmt.Errorf("rpc GET %s from byte %d: answered %s, Content-Range %q", path, offset, resp.Status, resp.Header.Get("Content-Range"))
	}
	return resp.Body, nil
}

// rangeStart is the first byte of a Content-Range "bytes first-last/size".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil && n >= 0
}
