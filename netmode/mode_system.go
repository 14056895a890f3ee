package netmode

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/euca-cloud/euca/netmode/ipam"
	"github.com/euca-cloud/euca/netmode/link"
	"github.com/vishvananda/netlink"
)

// system is SYSTEM mode: instances' taps join the operator's bridge
// (VNET_BRIDGE, which must exist) on the physical network, with random
// MACs; the network's own DHCP server gives their addresses. The cloud
// runs no DHCP, no NAT, no filtering and no metadata redirect here: the
// instances' router is not this host. Each node filters its own guests and
// redirects their metadata requests to its own relay (netmode/nodenet).
type system struct {
	cfg Config
	log *slog.Logger
	mu  sync.Mutex
}

func newSystem(cfg Config, log *slog.Logger) (Mode, error) {
	// The 1.5 documentation's front-end block is VNET_MODE alone: a
	// front-end without guests has nothing to bridge; the nodes put theirs
	// on their own VNET_BRIDGE.
	if cfg.Bridge != "" {
		if err := link.CheckName(cfg.Bridge); err != nil {
			return nil, fmt.Errorf("VNET_BRIDGE: %w", err)
		}
	}
	return &system{cfg: cfg, log: log}, nil
}

func (s *system) Name() string           { return System }
func (s *system) Segments() int          { return 0 }
func (s *system) VNI(int) int            { return 0 }
func (s *system) Gateway(int) netip.Addr { return netip.Addr{} }
func (s *system) Bridge(int) string      { return s.cfg.Bridge }

// Allocate gives a random MAC with the cloud's prefix, and no address:
// SYSTEM instances have none to derive a MAC from (two running instances
// share one with odds of about n²/2^33).
func (s *system) Allocate([]netip.Addr, int) (Address, error) {
	return Address{MAC: ipam.RandomMAC()}, nil
}

func (s *system) Set(ctx context.Context, st State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkInstances(st.Instances, false); err != nil {
		return fmt.Errorf("SYSTEM: %w", err)
	}
	if s.cfg.Bridge == "" {
		if slices.ContainsFunc(st.Instances, func(in Instance) bool { return in.Tap != "" }) {
			return fmt.Errorf("SYSTEM needs VNET_BRIDGE for instances' taps: the bridge on the physical network")
		}
		return nil
	}
	br, err := link.Bridge(s.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("SYSTEM: VNET_BRIDGE: %w", err)
	}
	if err := syncTaps(st.Instances, func(Instance) (netlink.Link, error) { return br, nil }, s.log); err != nil {
		return fmt.Errorf("SYSTEM: %w", err)
	}
	return nil
}

func (s *system) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := removeTaps(); err != nil {
		return fmt.Errorf("SYSTEM close: %w", err)
	}
	return nil
}
