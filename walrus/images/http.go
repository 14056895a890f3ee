package images

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

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
}

var errBadRef = errors.New("bad image reference")

// Handler serves plain images to node controllers, as Open does in
// process. Mount it on an internal listener (rpc.NewServer): only the
// cloud's roles may read images, whoever owns them.
func (s *Service) Handler() http.Handler {
	m := rpc.NewMux(Errors, s.log)
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
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(img.Size, 10))
		w.Header().Set("X-Euca-Image-Sha256", img.SHA256)
		if _, err := io.Copy(w, img); err != nil {
			// The status is sent; the short body fails the reader's
			// length and digest checks.
			s.log.WarnContext(r.Context(), "image download cut short", "image", ref.ID, "error", err)
		}
	}))
	return m
}
