package images

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/internal/rpc"
)

// ImagePath is the path under which Handler serves plain images:
// GET ImagePath + id + "?sha256=<hex>&size=<bytes>".
const ImagePath = "/images/"

// Errors is the table the image download carries its errors by: a node
// reading over HTTP sees the same sentinels as one reading in process.
var Errors = rpc.Errors{
	{Code: "NoSuchImage", Status: http.StatusNotFound, Err: ErrUnknownImage},
	{Code: "ImageDigestMismatch", Status: http.StatusConflict, Err: ErrDigest},
	{Code: "ImageTooLarge", Status: http.StatusInsufficientStorage, Err: ErrTooLarge},
	{Code: "NoSpace", Status: http.StatusInsufficientStorage, Err: ErrNoSpace},
	{Code: rpc.CodeBadRequest, Status: http.StatusBadRequest, Err: errBadRef},
	{Code: "InvalidRange", Status: http.StatusRequestedRangeNotSatisfiable, Err: errBadRange},
}

var (
	errBadRef   = errors.New("bad image reference")
	errBadRange = errors.New("range not satisfiable")
)

// resumeFrom reads the one form of Range a node sends, "bytes=N-" with N
// inside the image; no header is the whole image. Other forms (several
// ranges, suffixes) are refused rather than half-honoured.
func resumeFrom(h string, size int64) (from int64, ranged bool, err error) {
	if h == "" {
		return 0, false, nil
	}
	v, ok := strings.CutPrefix(h, "bytes=")
	first, last, ok2 := strings.Cut(v, "-")
	if !ok || !ok2 || last != "" {
		return 0, false, fmt.Errorf("%w: only \"bytes=N-\" is served, got %q", errBadRange, h)
	}
	n, perr := strconv.ParseInt(first, 10, 64)
	if perr != nil || n < 0 || n >= size {
		return 0, false, fmt.Errorf("%w: %q of a %d-byte image", errBadRange, h, size)
	}
	return n, true, nil
}

// Handler serves plain images to node controllers, as Open does in
// process. Mount it on an internal listener (rpc.NewServer): only the
// cloud's roles may read images, whoever owns them.
func (s *Service) Handler() http.Handler {
	m := rpc.NewMux(Errors, s.log)
	// Nodes fetch images; the controllers may (to check or pre-fetch).
	m.AllowRoles("nc", "cc", "clc")
	m.Handle("GET "+ImagePath+"{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ref := Ref{ID: r.PathValue("id"), SHA256: r.URL.Query().Get("sha256")}
		if !validSum(ref.SHA256) {
			m.Error(w, r, fmt.Errorf("%w: image %s: sha256 %q", errBadRef, ref.ID, ref.SHA256))
			return
		}
		var want int64 = -1
		if v := r.URL.Query().Get("size"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				m.Error(w, r, fmt.Errorf("%w: image %s: size %q", errBadRef, ref.ID, v))
				return
			}
			want = n
		}
		// Open is asked without the size and the size is checked here,
		// so that a wrong one is told apart as a mismatch.
		rc, err := s.Open(r.Context(), ref)
		if err != nil {
			m.Error(w, r, err)
			return
		}
		defer rc.Close()
		img, ok := rc.(*Reader)
		if !ok {
			m.Error(w, r, fmt.Errorf("image %s: open gave a %T", ref.ID, rc))
			return
		}
		if want > 0 && img.Size != want {
			m.Error(w, r, fmt.Errorf("%w: image %s is %d bytes, asked for %d", ErrDigest, ref.ID, img.Size, want))
			return
		}
		// A node resuming a download cut short asks for the rest only
		// ("bytes=N-"); the digest it checks covers the whole image.
		from, ranged, err := resumeFrom(r.Header.Get("Range"), img.Size)
		if err != nil {
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(img.Size, 10))
			m.Error(w, r, err)
			return
		}
		if ranged {
			if _, err := img.Seek(from, io.SeekStart); err != nil {
				m.Error(w, r, fmt.Errorf("image %s: seek to %d: %w", ref.ID, from, err))
				return
			}
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(img.Size-from, 10))
		w.Header().Set("X-Euca-Image-Sha256", img.SHA256)
		if ranged {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, img.Size-1, img.Size))
			w.WriteHeader(http.StatusPartialContent)
		}
		if _, err := io.Copy(w, img); err != nil {
			// The status is sent; the short body fails the reader's
			// length and digest checks.
			s.log.WarnContext(r.Context(), "image download cut short", "image", ref.ID, "error", err)
		}
	}))
	return m
}
