// Package clc is the cloud controller: the service layer behind the public
// APIs. It owns the cloud's records (accounts and credentials, key pairs,
// VPCs and security groups, tags, VM types) and implements ec2api.Cloud.
//
// Every method takes the caller's account id and touches only that
// account's things; a resource of another account is reported exactly as a
// resource that does not exist, so nothing leaks across tenants.
package clc

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/store"
)

// AdminAccount is the account made on first start, as Eucalyptus made it.
const AdminAccount = "admin"

// Cloud is the cloud controller's service layer.
type Cloud struct {
	store *store.Store
	ca    *pki.CA
	cfg   *conf.Config
	log   *slog.Logger

	mu      sync.Mutex
	cap     Capacity     // nil: no cluster has reported
	bundles BundleSource // nil: no Walrus in reach

	// inst is the instances' runtime side (instances.go): the cluster
	// controllers by zone, the network last handed to each, the metadata
	// service's target and token key.
	inst instanceRuntime
	// vol is the volumes' runtime side (volumes.go): the storage
	// controllers by zone and the storage loop's work in progress.
	vol volumeRuntime

	zones    []string // zones.go: CLUSTER_NAME, then the registered clusters
	remoteMu sync.Mutex
	remote   map[string]remoteCluster // registered clusters connected, by zone
	warned   map[string]bool          // warnings given once
}

// KeysDir is where the cloud's CA lives, under the data directory (the
// place Eucalyptus kept cloud-cert.pem).
func KeysDir(cfg *conf.Config) string { return filepath.Join(cfg.DataDir(), "keys") }

// New opens the cloud controller over st: it loads (or on first start
// creates) the cloud's CA and the admin account, and gives every account the
// defaults it must have (default VPC, subnets, security group).
func New(ctx context.Context, cfg *conf.Config, st *store.Store, log *slog.Logger) (*Cloud, error) {
	ca, err := pki.LoadOrCreateCA(KeysDir(cfg))
	if err != nil {
		return nil, fmt.Errorf("clc: certificate authority: %w", err)
	}
	c := &Cloud{store: st, ca: ca, cfg: cfg, log: log}
	if _, _, err := c.loadZones(ctx); err != nil {
		return nil, err
	}
	if err := c.bootstrap(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// SetCluster connects the cluster controller of the zone cl.Zone() names;
// a second call for that zone replaces the first. Instances are placed,
// stopped and networked through it.
func (c *Cloud) SetCluster(cl ccapi.Cluster) {
	c.inst.setCluster(cl)
	c.inst.mu.Lock()
	defer c.inst.mu.Unlock()
	if c.inst.local == nil {
		c.inst.local = map[string]bool{}
	}
	c.inst.local[cl.Zone()] = true
}

// CA is the cloud's certificate authority.
func (c *Cloud) CA() *pki.CA { return c.ca }

// Region is the region this cloud answers as.
func (c *Cloud) Region() string { return c.cfg.Region }
