package ncapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/euca-cloud/euca/internal/rpc"
)

// Errors is the node API's error table: the sentinels the HTTP transport
// carries by name.
var Errors = rpc.Errors{
	{Code: "NoSuchInstance", Status: http.StatusNotFound, Err: ErrNoSuchInstance},
	{Code: "InsufficientCapacity", Status: http.StatusServiceUnavailable, Err: ErrNoCapacity},
	{Code: "IncorrectInstanceState", Status: http.StatusConflict, Err: ErrIncorrectState},
	{Code: rpc.CodeBadRequest, Status: http.StatusBadRequest, Err: ErrBadRequest},
	{Code: "Unsupported", Status: http.StatusNotImplemented, Err: ErrUnsupported},
}

// The node API's calls, one row each.
const (
	pathDescribe  = "/nc/v1/describe"
	pathRun       = "/nc/v1/run-instance"
	pathTerminate = "/nc/v1/terminate-instance"
	pathReboot    = "/nc/v1/reboot-instance"
	pathConsole   = "/nc/v1/console-output"
	pathNetwork   = "/nc/v1/set-network"
	pathPowerDown = "/nc/v1/power-down"
	pathAttach    = "/nc/v1/attach-volume"
	pathDetach    = "/nc/v1/detach-volume"
	pathStop      = "/nc/v1/stop-instance"
)

type none struct{}

type instanceID struct {
	ID string `json:"id"`
}

type attachIn struct {
	ID     string           `json:"id"`
	Volume VolumeAttachment `json:"volume"`
}

type detachIn struct {
	ID       string `json:"id"`
	VolumeID string `json:"volume_id"`
	Force    bool   `json:"force,omitempty"`
}

type consoleOutput struct {
	Output []byte `json:"output"` // base64 in JSON: a console holds any bytes
}

// NewHandler serves n to cluster controllers elsewhere (mount it on the NC's
// internal listener, rpc.NewServer).
func NewHandler(n Node, log *slog.Logger) http.Handler {
	m := rpc.NewMux(Errors, log)
	// Only a cluster or cloud controller drives a node: another node's
	// certificate, from the same CA, must not.
	m.AllowRoles("cc", "clc")
	rpc.Func(m, "POST "+pathDescribe, func(ctx context.Context, _ none) (NodeStatus, error) {
		return n.Describe(ctx)
	})
	rpc.Func(m, "POST "+pathRun, func(ctx context.Context, req InstanceRequest) (none, error) {
		return none{}, n.RunInstance(ctx, req)
	})
	rpc.Func(m, "POST "+pathTerminate, func(ctx context.Context, in instanceID) (none, error) {
		return none{}, n.TerminateInstance(ctx, in.ID)
	})
	rpc.Func(m, "POST "+pathReboot, func(ctx context.Context, in instanceID) (none, error) {
		return none{}, n.RebootInstance(ctx, in.ID)
	})
	rpc.Func(m, "POST "+pathConsole, func(ctx context.Context, in instanceID) (consoleOutput, error) {
		out, err := n.ConsoleOutput(ctx, in.ID)
		return consoleOutput{out}, err
	})
	rpc.Func(m, "POST "+pathNetwork, func(ctx context.Context, in Network) (none, error) {
		return none{}, n.SetNetwork(ctx, in)
	})
	rpc.Func(m, "POST "+pathAttach, func(ctx context.Context, in attachIn) (none, error) {
		return none{}, n.AttachVolume(ctx, in.ID, in.Volume)
	})
	rpc.Func(m, "POST "+pathDetach, func(ctx context.Context, in detachIn) (none, error) {
		return none{}, n.DetachVolume(ctx, in.ID, in.VolumeID, in.Force)
	})
	rpc.Func(m, "POST "+pathStop, func(ctx context.Context, in instanceID) (none, error) {
		return none{}, n.StopInstance(ctx, in.ID)
	})
	rpc.Func(m, "POST "+pathPowerDown, func(ctx context.Context, _ none) (none, error) {
		p, ok := n.(PowerDowner)
		if !ok {
			return none{}, fmt.Errorf("%w: this node cannot power its host down", ErrUnsupported)
		}
		return none{}, p.PowerDown(ctx)
	})
	return m
}

// NewClient is a Node reached through c (a node controller's internal
// listener).
func NewClient(c *rpc.Client) Node { return client{c} }

type client struct{ c *rpc.Client }

// calls says how each call is made: every one with a deadline; those
// harmless twice (RunInstance is, for one id) tried again when no answer
// came. The poll is not: a node that does not answer it is down for that
// round, and the next round asks again.
var calls = map[string]rpc.Policy{
	pathDescribe:  {Timeout: rpc.Idempotent.Timeout, Attempts: 1},
	pathRun:       rpc.Idempotent,
	pathTerminate: rpc.Idempotent,
	pathReboot:    rpc.Idempotent,
	pathConsole:   rpc.Idempotent,
	pathNetwork:   rpc.Idempotent,
	pathAttach:    rpc.Idempotent,
	pathDetach:    rpc.Idempotent,
	pathStop:      rpc.Idempotent,
	// Once: a host that took the first and went to sleep answers no second.
	pathPowerDown: {Timeout: rpc.Idempotent.Timeout, Attempts: 1},
}

func (c client) call(ctx context.Context, path string, in, out any) error {
	return calls[path].Do(ctx, func(ctx context.Context) error {
		return Errors.Decode(c.c.Call(ctx, http.MethodPost, path, in, out))
	})
}

func (c client) Describe(ctx context.Context) (NodeStatus, error) {
	var s NodeStatus
	err := c.call(ctx, pathDescribe, none{}, &s)
	return s, err
}

func (c client) RunInstance(ctx context.Context, req InstanceRequest) error {
	return c.call(ctx, pathRun, req, nil)
}

func (c client) TerminateInstance(ctx context.Context, id string) error {
	return c.call(ctx, pathTerminate, instanceID{id}, nil)
}

func (c client) RebootInstance(ctx context.Context, id string) error {
	return c.call(ctx, pathReboot, instanceID{id}, nil)
}

func (c client) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	var out consoleOutput
	if err := c.call(ctx, pathConsole, instanceID{id}, &out); err != nil {
		return nil, err
	}
	return out.Output, nil
}

func (c client) SetNetwork(ctx context.Context, n Network) error {
	return c.call(ctx, pathNetwork, n, nil)
}

func (c client) AttachVolume(ctx context.Context, id string, v VolumeAttachment) error {
	return c.call(ctx, pathAttach, attachIn{id, v}, nil)
}

func (c client) DetachVolume(ctx context.Context, id, volumeID string, force bool) error {
	return c.call(ctx, pathDetach, detachIn{id, volumeID, force}, nil)
}

func (c client) StopInstance(ctx context.Context, id string) error {
	return c.call(ctx, pathStop, instanceID{id}, nil)
}

// PowerDown asks the node to power its host down (ErrUnsupported when it
// cannot).
func (c client) PowerDown(ctx context.Context) error {
	return c.call(ctx, pathPowerDown, none{}, nil)
}
