package ccapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// Errors is the cluster API's error table: the sentinels the HTTP transport
// carries by name. A node's refusal that the cluster passes on (a reboot of
// an instance that is not running) keeps its node API name, so the cloud
// controller sees the same error from a cluster in its process and from
// one elsewhere.
var Errors = rpc.Errors{
	{Code: "InsufficientInstanceCapacity", Status: http.StatusServiceUnavailable, Err: ErrInsufficientCapacity},
	{Code: "NoSuchInstance", Status: http.StatusNotFound, Err: ErrNoSuchInstance},
	{Code: "IncorrectInstanceState", Status: http.StatusConflict, Err: ncapi.ErrIncorrectState},
	{Code: "WrongZone", Status: http.StatusMisdirectedRequest, Err: ErrWrongZone},
	{Code: rpc.CodeBadRequest, Status: http.StatusBadRequest, Err: ErrBadRequest},
}

// The cluster API's calls, one row each, with how each is made: the
// idempotent ones are tried again when no answer came; a launch is sent
// once (a launch that got no answer is rolled back by the cloud
// controller, which terminates what may have started).
var calls = map[string]rpc.Policy{
	pathDescribe:  rpc.Idempotent,
	pathRun:       rpc.Once,
	pathTerminate: rpc.Idempotent,
	pathReboot:    rpc.Idempotent,
	pathConsole:   rpc.Idempotent,
	pathNetwork:   rpc.Idempotent,
	pathAttach:    rpc.Idempotent,
	pathDetach:    rpc.Idempotent,
	pathStop:      rpc.Idempotent,
}

const (
	pathDescribe  = "/cc/v1/describe"
	pathRun       = "/cc/v1/run-instances"
	pathTerminate = "/cc/v1/terminate-instances"
	pathReboot    = "/cc/v1/reboot-instances"
	pathConsole   = "/cc/v1/console-output"
	pathNetwork   = "/cc/v1/set-network"
	pathAttach    = "/cc/v1/attach-volume"
	pathDetach    = "/cc/v1/detach-volume"
	pathStop      = "/cc/v1/stop-instances"
)

// zoneOf is part of every call: the zone the caller believes it is
// talking to, so that a cluster registered under one name but serving
// another (CLUSTER_NAME differs) refuses instead of placing instances in the
// wrong zone.
type zoneOf struct {
	Zone string `json:"zone"`
}

type describeIn struct {
	zoneOf
	Types []VMType `json:"types"`
}

type runIn struct {
	zoneOf
	Requests []InstanceRequest `json:"requests"`
}

type idsIn struct {
	zoneOf
	IDs []string `json:"ids"`
}

type idIn struct {
	zoneOf
	ID string `json:"id"`
}

type attachIn struct {
	zoneOf
	ID     string                 `json:"id"`
	Volume ncapi.VolumeAttachment `json:"volume"`
}

type detachIn struct {
	zoneOf
	ID       string `json:"id"`
	VolumeID string `json:"volume_id"`
	Force    bool   `json:"force,omitempty"`
}

type networkIn struct {
	zoneOf
	Network Network `json:"network"`
}

type placements struct {
	Placements []Placement `json:"placements"`
}

type consoleOutput struct {
	Output []byte `json:"output"` // base64 in JSON: a console holds any bytes
}

type none struct{}

// NewHandler serves cl to the cloud controller elsewhere (mount it on the
// CC's internal listener, rpc.NewServer, on CC_PORT).
func NewHandler(cl Cluster, log *slog.Logger) http.Handler {
	m := rpc.NewMux(Errors, log)
	m.AllowRoles("clc") // only the cloud controller drives a cluster
	zone := cl.Zone()
	check := func(z zoneOf) error {
		if z.Zone != zone {
			return fmt.Errorf("%w: this cluster serves %s (CLUSTER_NAME), the cloud asked for %s", ErrWrongZone, zone, z.Zone)
		}
		return nil
	}
	rpc.Func(m, "POST "+pathDescribe, func(ctx context.Context, in describeIn) (Status, error) {
		if err := check(in.zoneOf); err != nil {
			return Status{}, err
		}
		return cl.Describe(ctx, in.Types)
	})
	rpc.Func(m, "POST "+pathRun, func(ctx context.Context, in runIn) (placements, error) {
		if err := check(in.zoneOf); err != nil {
			return placements{}, err
		}
		p, err := cl.RunInstances(ctx, in.Requests)
		return placements{p}, err
	})
	rpc.Func(m, "POST "+pathTerminate, func(ctx context.Context, in idsIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, cl.TerminateInstances(ctx, in.IDs)
	})
	rpc.Func(m, "POST "+pathReboot, func(ctx context.Context, in idsIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, cl.RebootInstances(ctx, in.IDs)
	})
	rpc.Func(m, "POST "+pathConsole, func(ctx context.Context, in idIn) (consoleOutput, error) {
		if err := check(in.zoneOf); err != nil {
			return consoleOutput{}, err
		}
		out, err := cl.ConsoleOutput(ctx, in.ID)
		return consoleOutput{out}, err
	})
	rpc.Func(m, "POST "+pathNetwork, func(ctx context.Context, in networkIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, cl.SetNetwork(ctx, in.Network)
	})
	rpc.Func(m, "POST "+pathAttach, func(ctx context.Context, in attachIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, cl.AttachVolume(ctx, in.ID, in.Volume)
	})
	rpc.Func(m, "POST "+pathDetach, func(ctx context.Context, in detachIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, cl.DetachVolume(ctx, in.ID, in.VolumeID, in.Force)
	})
	rpc.Func(m, "POST "+pathStop, func(ctx context.Context, in idsIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, cl.StopInstances(ctx, in.IDs)
	})
	return m
}

// NewClient is the cluster of zone reached through c (a cluster
// controller's internal listener, CC_PORT): the zone it was registered as
// (`euca cluster register NAME HOST`), which every call names.
func NewClient(c *rpc.Client, zone string) Cluster { return client{c, zoneOf{zone}} }

type client struct {
	c    *rpc.Client
	zone zoneOf
}

func (c client) call(ctx context.Context, path string, in, out any) error {
	return calls[path].Do(ctx, func(ctx context.Context) error {
		return Errors.Decode(c.c.Call(ctx, http.MethodPost, path, in, out))
	})
}

func (c client) Zone() string { return c.zone.Zone }

func (c client) Describe(ctx context.Context, types []VMType) (Status, error) {
	var s Status
	err := c.call(ctx, pathDescribe, describeIn{c.zone, types}, &s)
	return s, err
}

func (c client) RunInstances(ctx context.Context, reqs []InstanceRequest) ([]Placement, error) {
	var p placements
	err := c.call(ctx, pathRun, runIn{c.zone, reqs}, &p)
	return p.Placements, err
}

func (c client) TerminateInstances(ctx context.Context, ids []string) error {
	return c.call(ctx, pathTerminate, idsIn{c.zone, ids}, nil)
}

func (c client) RebootInstances(ctx context.Context, ids []string) error {
	return c.call(ctx, pathReboot, idsIn{c.zone, ids}, nil)
}

func (c client) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	var out consoleOutput
	if err := c.call(ctx, pathConsole, idIn{c.zone, id}, &out); err != nil {
		return nil, err
	}
	return out.Output, nil
}

func (c client) SetNetwork(ctx context.Context, n Network) error {
	return c.call(ctx, pathNetwork, networkIn{c.zone, n}, nil)
}

func (c client) AttachVolume(ctx context.Context, id string, v ncapi.VolumeAttachment) error {
	return c.call(ctx, pathAttach, attachIn{c.zone, id, v}, nil)
}

func (c client) DetachVolume(ctx context.Context, id, volumeID string, force bool) error {
	return c.call(ctx, pathDetach, detachIn{c.zone, id, volumeID, force}, nil)
}

func (c client) StopInstances(ctx context.Context, ids []string) error {
	return c.call(ctx, pathStop, idsIn{c.zone, ids}, nil)
}
