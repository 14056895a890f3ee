// Package roles decides which of euca's roles run in this process, starts
// them over one shared store and one edge listener, and stops them cleanly.
//
// Start order follows the dependencies: the store, then the cloud controller
// (it owns accounts, so every API's signature check needs it), then the
// listener. A role that is not built yet is refused by name rather than
// pretended.
package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/ec2api"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/edge"
	"github.com/euca-cloud/euca/internal/iamapi"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus"
	"github.com/euca-cloud/euca/walrus/images"
)

// Role names.
const (
	CLC    = "clc"
	CC     = "cc"
	NC     = "nc"
	Walrus = "walrus"
	SC     = "sc"
)

// all is every role, in start order.
var all = []string{CLC, Walrus, SC, CC, NC}

// aliases expand to several roles.
var aliases = map[string][]string{
	"all":     all,
	"storage": {Walrus, SC},
}

// built says which roles this build can run; the others are refused at
// start-up with the reason.
var built = map[string]bool{CLC: true, Walrus: true}

// Set is a set of role names.
type Set map[string]bool

// Parse reads a comma-separated role list with aliases.
func Parse(list string) (Set, error) {
	s := Set{}
	for _, f := range strings.Split(list, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		if ex, ok := aliases[f]; ok {
			for _, r := range ex {
				s[r] = true
			}
			continue
		}
		known := false
		for _, r := range all {
			if r == f {
				known = true
			}
		}
		if !known {
			return nil, fmt.Errorf("unknown role %q (roles: %s; aliases: all, storage)", f, strings.Join(all, ", "))
		}
		s[f] = true
	}
	if len(s) == 0 {
		return nil, errors.New("no roles given (for example --roles=all)")
	}
	return s, nil
}

// String lists the set in start order.
func (s Set) String() string {
	var out []string
	for _, r := range all {
		if s[r] {
			out = append(out, r)
		}
	}
	return strings.Join(out, ",")
}

// Unbuilt returns the roles of s this build cannot run yet.
func (s Set) Unbuilt() []string {
	var out []string
	for r := range s {
		if !built[r] {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// Options configure Run.
type Options struct {
	Roles Set
	Conf  *conf.Config
	Log   *slog.Logger
	// Ready, when not nil, receives the listener's address once serving.
	Ready chan<- net.Addr
}

// Run starts the roles and blocks until ctx is cancelled, then stops them.
func Run(ctx context.Context, o Options) error {
	if missing := o.Roles.Unbuilt(); len(missing) > 0 {
		return fmt.Errorf("role %s is not built yet in this version of euca; run the roles that are (%s)", strings.Join(missing, ", "), builtList())
	}
	cfg, log := o.Conf, o.Log
	st, err := store.Open(ctx, cfg.DataDir())
	if err != nil {
		return err
	}
	defer st.Close()
	log.Info("store open", "path", st.Path(), "schema", store.SchemaVersion())

	router := &edge.Router{}
	var cloud *clc.Cloud
	if o.Roles[CLC] {
		cloud, err = clc.New(ctx, cfg, st, log.With("role", CLC))
		if err != nil {
			return err
		}
		router.EC2 = ec2api.New(cloud, cloud, log.With("role", CLC))
		router.STS = iamapi.NewSTS(cloud, log.With("role", CLC))
		router.IAM = iamapi.NewIAM(cloud, cloud, log.With("role", CLC))
	}
	if o.Roles[Walrus] {
		// Signatures are checked against the clc's access keys, in
		// process: there is no internal RPC to reach a remote clc yet.
		if cloud == nil {
			return errors.New("walrus needs the clc role in the same process until internal RPC lands (run --roles=clc,walrus)")
		}
		s3, err := walrus.New(ctx, walrus.Options{Conf: cfg, Store: st, Keys: cloud, Log: log.With("role", Walrus)})
		if err != nil {
			return err
		}
		router.S3 = s3
		// The storage side of images: bundles read for RegisterImage, and
		// the decrypted image cache nodes download from.
		imgs, err := images.New(ctx, images.Options{Conf: cfg, Store: st, CloudKey: cloud.CA().Key, Log: log.With("role", Walrus)})
		if err != nil {
			return err
		}
		cloud.SetBundleSource(imgs)
	}

	addr := ":" + strconv.Itoa(cfg.CloudPort)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (CLOUD_PORT): %w", addr, err)
	}
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("euca running", "roles", o.Roles.String(), "listen", ln.Addr().String(), "region", cfg.Region)
	if o.Ready != nil {
		o.Ready <- ln.Addr()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("edge listener: %w", err)
	case <-ctx.Done():
	}
	log.Info("stopping")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("stop edge listener: %w", err)
	}
	log.Info("stopped")
	return nil
}

func builtList() string {
	var out []string
	for _, r := range all {
		if built[r] {
			out = append(out, r)
		}
	}
	return strings.Join(out, ", ")
}
