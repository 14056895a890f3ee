package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// TypeInstance is the tag resource type of instances.
const TypeInstance = "instance"

// Instance states, as EC2 names them.
const (
	InstancePending      = "pending"
	InstanceRunning      = "running"
	InstanceShuttingDown = "shutting-down"
	InstanceTerminated   = "terminated"
	InstanceStopping     = "stopping"
	InstanceStopped      = "stopped"
)

// InstanceOptions are the launch options an instance keeps and
// DescribeInstanceAttribute and ModifyInstanceAttribute read and change.
type InstanceOptions struct {
	DisableAPITermination bool
	DisableAPIStop        bool
	EBSOptimized          bool
	Monitoring            bool
	Hibernation           bool
	SourceDestCheck       bool
	ShutdownBehavior      string // "stop" or "terminate"
	CPUCredits            string // "standard" or "unlimited"
	HTTPTokens            string // "optional" or "required"
	HTTPEndpoint          string // "enabled" or "disabled"
	HTTPHopLimit          int
}

// GroupRef names a security group an instance is in.
type GroupRef struct{ ID, Name string }

// Reservation is one RunInstances: the instances it started share it.
type Reservation struct {
	ID          string
	AccountID   string
	ClientToken string
	// RequestHash identifies the launch parameters: a retry with the same
	// client token must carry the same ones.
	RequestHash string
	CreatedMS   int64
}

// Instance is a virtual machine of an account.
type Instance struct {
	ID            string
	ReservationID string
	AccountID     string
	LaunchIndex   int
	ImageID       string
	KernelID      string
	RamdiskID     string
	InstanceType  string
	Architecture  string
	KeyName       string
	PublicKey     string // the key pair's public key at launch
	Zone          string
	SubnetID      string
	VPCID         string
	PrivateIP     string
	MAC           string
	PublicIP      string // the address it answers on from outside: its elastic IP, or one lent from the pool
	// MapPublicIP: the instance takes a public address from the pool
	// whenever it has no elastic IP (launched into a subnet that maps
	// one, as a default subnet does).
	MapPublicIP bool
	// AllocationID and AssociationID name the elastic IP associated with
	// the instance (read only: the addresses' calls change them).
	AllocationID  string
	AssociationID string
	ENIID         string
	Node          string
	State         string
	// RootDeviceType is RootInstanceStore or RootEBS (from the image);
	// RootDeviceName the root device's name (/dev/sda1, /dev/xvda...).
	RootDeviceType string
	RootDeviceName string
	// BlockDevices are the EBS volumes attached to it (the root one
	// included), in the order they were attached.
	BlockDevices []InstanceBlockDevice
	// StateReasonCode and StateReasonMessage say why the instance left the
	// state it was in (EC2's stateReason), TransitionReason is EC2's reason.
	StateReasonCode    string
	StateReasonMessage string
	TransitionReason   string
	UserData           []byte // nil when none was given
	Options            InstanceOptions
	Groups             []GroupRef
	Tags               []Tag
	ClientToken        string // the reservation's
	CreatedMS          int64
	LaunchedMS         int64 // 0 until the node reports it running
	UpdatedMS          int64
}

// Live reports whether the instance still holds its address: it is not
// terminated.
func (i Instance) Live() bool { return i.State != InstanceTerminated }

// LaunchSpec is a RunInstances request as the API decoded it: what the
// cloud controller checks and turns into a reservation. It lives here, beside
// Instance, so that the API and the cloud controller share it without
// importing each other.
type LaunchSpec struct {
	ImageID      string
	KernelID     string // "" : the image's
	RamdiskID    string // "" : the image's
	InstanceType string
	KeyName      string
	GroupNames   []string
	GroupIDs     []string
	UserData     []byte // decoded; nil when none was given
	Zone         string // "" : any
	SubnetID     string // "" : the zone's default subnet
	PrivateIP    string // "" : the next free address
	// AssociatePublicIP overrides the subnet's MapPublicIpOnLaunch (nil:
	// the subnet's).
	AssociatePublicIP *bool
	ClientToken       string
	MinCount          int
	MaxCount          int
	InstanceTags      []Tag
	VolumeTags        []Tag // the tags of the volumes made at launch (EBS-backed images)
	Options           InstanceOptions
	// BlockDevices are the launch's BlockDeviceMapping: on top of the
	// image's (same device: replaced; no virtual name nor EBS: dropped).
	BlockDevices []ImageBlockDevice
}

// ClientTokenError says that the account already made a reservation with
// the client token. It wraps ErrConflict.
type ClientTokenError struct {
	ReservationID string
	RequestHash   string
}

func (e *ClientTokenError) Error() string {
	return "store: client token already used by reservation " + e.ReservationID
}

func (e *ClientTokenError) Unwrap() error { return ErrConflict }

// AddressAllocator gives the next instance its private address and MAC,
// given the addresses and MACs the zone's live instances hold (including
// those given earlier in the same launch) and the segment of the launch's
// first security group (-1 when the launch has no segments). An invalid
// address leaves the instance without one for now (SYSTEM mode: an outside
// DHCP server picks it, and SetInstanceAddress records it once learned).
type AddressAllocator func(used []netip.Addr, macs []string, segment int) (ip netip.Addr, mac string, err error)

// LaunchInstances records a reservation and its instances in one
// transaction, each given its private address and MAC by alloc inside it (so
// two launches never take one address), with their groups and tags. All the
// instances are in one zone. It returns the instances as stored. A client
// token the account has used already fails with a *ClientTokenError.
//
// With segs (MANAGED mode), the launch's first security group holds a
// segment of the zone from the same transaction on (see schemaSegments),
// and alloc is told which; ErrNoSegment when none is free.
func (s *Store) LaunchInstances(ctx context.Context, r Reservation, insts []Instance, segs SegmentRange, alloc AddressAllocator) ([]Instance, error) {
	out := make([]Instance, len(insts))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if r.ClientToken != "" {
			var id, hash string
			err := tx.QueryRowContext(ctx, `SELECT id, request_hash FROM reservations WHERE account_id = ? AND client_token = ?`,
				r.AccountID, r.ClientToken).Scan(&id, &hash)
			if err == nil {
				return &ClientTokenError{ReservationID: id, RequestHash: hash}
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		ts := now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO reservations (id, account_id, client_token, request_hash, created_ms) VALUES (?, ?, ?, ?, ?)`,
			r.ID, r.AccountID, r.ClientToken, r.RequestHash, ts); err != nil {
			return conflict(err, "reservation "+r.ID)
		}
		segment := -1
		if segs.Count > 0 && len(insts) > 0 {
			if len(insts[0].Groups) == 0 {
				return fmt.Errorf("store: a launch into segments needs a security group")
			}
			var err error
			if segment, err = assignSegment(ctx, tx, insts[0].Zone, insts[0].Groups[0].ID, segs); err != nil {
				return err
			}
		}
		used, macs := map[string][]netip.Addr{}, map[string][]string{}
		for i, in := range insts {
			if _, ok := used[in.Zone]; !ok {
				addrs, ms, err := zoneAddresses(ctx, tx, in.Zone)
				if err != nil {
					return err
				}
				used[in.Zone], macs[in.Zone] = addrs, ms
			}
			ip, mac, err := alloc(used[in.Zone], macs[in.Zone], segment)
			if err != nil {
				return err
			}
			in.PrivateIP, in.MAC = "", mac
			if ip.IsValid() {
				used[in.Zone] = append(used[in.Zone], ip)
				in.PrivateIP = ip.String()
			}
			macs[in.Zone] = append(macs[in.Zone], mac)
			in.ReservationID, in.AccountID, in.ClientToken = r.ID, r.AccountID, r.ClientToken
			in.CreatedMS, in.UpdatedMS = ts, ts
			if err := insertInstance(ctx, tx, in); err != nil {
				return err
			}
			out[i] = in
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// zoneAddresses are the private addresses and MACs the zone's live
// instances hold.
func zoneAddresses(ctx context.Context, q queryer, zone string) ([]netip.Addr, []string, error) {
	rows, err := q.QueryContext(ctx, `SELECT private_ip, mac FROM instances WHERE zone = ? AND state != 'terminated'`, zone)
	if err != nil {
		return nil, nil, fmt.Errorf("store: addresses of %s: %w", zone, err)
	}
	defer rows.Close()
	var out []netip.Addr
	var macs []string
	for rows.Next() {
		var s, mac string
		if err := rows.Scan(&s, &mac); err != nil {
			return nil, nil, err
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
		macs = append(macs, mac)
	}
	return out, macs, rows.Err()
}

func insertInstance(ctx context.Context, q queryer, in Instance) error {
	o := in.Options
	if _, err := q.ExecContext(ctx, `INSERT INTO instances (id, reservation_id, account_id, launch_index, image_id, kernel_id, ramdisk_id,
		instance_type, architecture, key_name, public_key, zone, subnet_id, vpc_id, private_ip, mac, public_ip, map_public_ip, eni_id, node, state,
		state_reason_code, state_reason_message, transition_reason, user_data, disable_api_termination, disable_api_stop,
		ebs_optimized, monitoring, hibernation, source_dest_check, shutdown_behavior, cpu_credits, http_tokens, http_endpoint,
		http_hop_limit, created_ms, launched_ms, updated_ms, root_device_type, root_device_name)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		in.ID, in.ReservationID, in.AccountID, in.LaunchIndex, in.ImageID, in.KernelID, in.RamdiskID,
		in.InstanceType, in.Architecture, in.KeyName, in.PublicKey, in.Zone, in.SubnetID, in.VPCID, in.PrivateIP, in.MAC, in.PublicIP, in.MapPublicIP,
		in.ENIID, in.Node, in.State, in.StateReasonCode, in.StateReasonMessage, in.TransitionReason, in.UserData,
		o.DisableAPITermination, o.DisableAPIStop, o.EBSOptimized, o.Monitoring, o.Hibernation, o.SourceDestCheck,
		o.ShutdownBehavior, o.CPUCredits, o.HTTPTokens, o.HTTPEndpoint, o.HTTPHopLimit, in.CreatedMS, in.LaunchedMS, in.UpdatedMS,
		rootDeviceType(in), rootDeviceName(in)); err != nil {
		return conflict(err, "instance "+in.ID+" at "+in.PrivateIP)
	}
	for i, g := range in.Groups {
		if _, err := q.ExecContext(ctx, `INSERT INTO instance_groups (instance_id, group_id, group_name, position) VALUES (?, ?, ?, ?)`,
			in.ID, g.ID, g.Name, i); err != nil {
			return conflict(err, "group "+g.ID+" of "+in.ID)
		}
	}
	return putTags(ctx, q, in.AccountID, in.ID, TypeInstance, in.Tags)
}

// DeleteInstances removes instances outright with their groups and tags,
// and the reservations left without instances: what a launch the cluster
// refused leaves behind. Unknown ids are ignored.
func (s *Store) DeleteInstances(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error { return deleteInstances(ctx, tx, ids) })
}

func deleteInstances(ctx context.Context, q queryer, ids []string) error {
	for _, id := range ids {
		if err := dropAssociation(ctx, q, id); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM instances WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: delete instance %s: %w", id, err)
		}
		if err := deleteAllTags(ctx, q, id); err != nil {
			return err
		}
	}
	_, err := q.ExecContext(ctx, `DELETE FROM reservations WHERE id NOT IN (SELECT reservation_id FROM instances)`)
	return err
}

const instanceCols = `i.id, i.reservation_id, i.account_id, i.launch_index, i.image_id, i.kernel_id, i.ramdisk_id, i.instance_type,
	i.architecture, i.key_name, i.public_key, i.zone, i.subnet_id, i.vpc_id, i.private_ip, i.mac, i.public_ip, i.map_public_ip,
	coalesce(a.allocation_id, ''), coalesce(a.association_id, ''), i.eni_id, i.node,
	i.state, i.state_reason_code, i.state_reason_message, i.transition_reason, i.user_data, i.disable_api_termination,
	i.disable_api_stop, i.ebs_optimized, i.monitoring, i.hibernation, i.source_dest_check, i.shutdown_behavior, i.cpu_credits,
	i.http_tokens, i.http_endpoint, i.http_hop_limit, r.client_token, i.created_ms, i.launched_ms, i.updated_ms,
	i.root_device_type, i.root_device_name`

const instanceFrom = ` FROM instances i JOIN reservations r ON r.id = i.reservation_id
	LEFT JOIN addresses a ON a.instance_id = i.id AND a.instance_id != ''` // the != lets the partial index serve

func scanInstance(sc interface{ Scan(...any) error }) (Instance, error) {
	var in Instance
	o := &in.Options
	err := sc.Scan(&in.ID, &in.ReservationID, &in.AccountID, &in.LaunchIndex, &in.ImageID, &in.KernelID, &in.RamdiskID,
		&in.InstanceType, &in.Architecture, &in.KeyName, &in.PublicKey, &in.Zone, &in.SubnetID, &in.VPCID, &in.PrivateIP,
		&in.MAC, &in.PublicIP, &in.MapPublicIP, &in.AllocationID, &in.AssociationID, &in.ENIID, &in.Node, &in.State, &in.StateReasonCode, &in.StateReasonMessage,
		&in.TransitionReason, &in.UserData, &o.DisableAPITermination, &o.DisableAPIStop, &o.EBSOptimized, &o.Monitoring,
		&o.Hibernation, &o.SourceDestCheck, &o.ShutdownBehavior, &o.CPUCredits, &o.HTTPTokens, &o.HTTPEndpoint,
		&o.HTTPHopLimit, &in.ClientToken, &in.CreatedMS, &in.LaunchedMS, &in.UpdatedMS, &in.RootDeviceType, &in.RootDeviceName)
	return in, err
}

// instances runs a query over instances (where and args select them) and
// loads their groups; tags are the caller's business (they are per account).
func instances(ctx context.Context, q queryer, where string, args ...any) ([]Instance, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+instanceCols+instanceFrom+` WHERE `+where+` ORDER BY i.created_ms, i.reservation_id, i.launch_index`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: instances: %w", err)
	}
	var out []Instance
	index := map[string]int{}
	for rows.Next() {
		in, err := scanInstance(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		index[in.ID] = len(out)
		out = append(out, in)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := instanceBlockDevices(ctx, q, out, where, args...); err != nil {
		return nil, err
	}
	grows, err := q.QueryContext(ctx, `SELECT g.instance_id, g.group_id, coalesce(sg.name, g.group_name)
		FROM instance_groups g JOIN instances i ON i.id = g.instance_id
		LEFT JOIN security_groups sg ON sg.id = g.group_id
		WHERE `+where+` ORDER BY g.instance_id, g.position`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: instance groups: %w", err)
	}
	defer grows.Close()
	for grows.Next() {
		var id string
		var g GroupRef
		if err := grows.Scan(&id, &g.ID, &g.Name); err != nil {
			return nil, err
		}
		if k, ok := index[id]; ok {
			out[k].Groups = append(out[k].Groups, g)
		}
	}
	return out, grows.Err()
}

// Instances lists an account's instances (terminated ones included, until
// they are deleted) with their groups and tags, oldest first.
func (s *Store) Instances(ctx context.Context, accountID string) ([]Instance, error) {
	out, err := instances(ctx, s.r, `i.account_id = ?`, accountID)
	if err != nil {
		return nil, err
	}
	tags, err := tagsByResource(ctx, s.r, accountID, TypeInstance)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Tags = tags[out[i].ID]
	}
	return out, nil
}

// InstancesByID returns those of ids that are the account's instances,
// with their groups and tags, oldest first; the others are left out (the
// caller names them). It reads those rows only, so that a call naming one
// instance costs the same in an account of 10,000.
func (s *Store) InstancesByID(ctx context.Context, accountID string, ids []string) ([]Instance, error) {
	var out []Instance
	// SQLite bounds the parameters of a statement: ask in chunks.
	const chunk = 500
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		args := []any{accountID}
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		in := `(?` + strings.Repeat(`, ?`, n-1) + `)`
		got, err := instances(ctx, s.r, `i.account_id = ? AND i.id IN `+in, args...)
		if err != nil {
			return nil, err
		}
		if len(got) > 0 {
			tags, err := tagsOf(ctx, s.r, accountID, TypeInstance, ids[:n])
			if err != nil {
				return nil, err
			}
			for i := range got {
				got[i].Tags = tags[got[i].ID]
			}
			out = append(out, got...)
		}
		ids = ids[n:]
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.CreatedMS != b.CreatedMS {
			return a.CreatedMS < b.CreatedMS
		}
		if a.ReservationID != b.ReservationID {
			return a.ReservationID < b.ReservationID
		}
		return a.LaunchIndex < b.LaunchIndex
	})
	return out, nil
}

// ReservationInstances returns the instances of one of the account's
// reservations, with their groups and tags, in launch order; it reads those
// rows only.
func (s *Store) ReservationInstances(ctx context.Context, accountID, reservationID string) ([]Instance, error) {
	out, err := instances(ctx, s.r, `i.account_id = ? AND i.reservation_id = ?`, accountID, reservationID)
	if err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]string, len(out))
	for i, in := range out {
		ids[i] = in.ID
	}
	tags := map[string][]Tag{}
	for len(ids) > 0 {
		n := min(500, len(ids))
		got, err := tagsOf(ctx, s.r, accountID, TypeInstance, ids[:n])
		if err != nil {
			return nil, err
		}
		for id, t := range got {
			tags[id] = t
		}
		ids = ids[n:]
	}
	for i := range out {
		out[i].Tags = tags[out[i].ID]
	}
	return out, nil
}

// Instance returns one of an account's instances (ErrNotFound otherwise).
func (s *Store) Instance(ctx context.Context, accountID, id string) (Instance, error) {
	out, err := instances(ctx, s.r, `i.account_id = ? AND i.id = ?`, accountID, id)
	if err != nil {
		return Instance{}, err
	}
	if len(out) == 0 {
		return Instance{}, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	tags, err := tagsByResource(ctx, s.r, accountID, TypeInstance)
	out[0].Tags = tags[id]
	return out[0], err
}

// ReservationByClientToken returns the account's reservation made with a
// client token (ErrNotFound when none).
func (s *Store) ReservationByClientToken(ctx context.Context, accountID, token string) (Reservation, error) {
	var r Reservation
	err := s.r.QueryRowContext(ctx, `SELECT id, account_id, client_token, request_hash, created_ms FROM reservations
		WHERE account_id = ? AND client_token = ? AND client_token != ''`, accountID, token).
		Scan(&r.ID, &r.AccountID, &r.ClientToken, &r.RequestHash, &r.CreatedMS)
	return r, notFound(err, "reservation with client token "+token)
}

// ZoneInstances lists the instances of every account in a zone that are
// not terminated, without tags: the zone's network and the reconcile loop
// work from them.
func (s *Store) ZoneInstances(ctx context.Context, zone string) ([]Instance, error) {
	return instances(ctx, s.r, `i.zone = ? AND i.state != 'terminated'`, zone)
}

// LiveInstanceByAddress returns the instance that is not terminated and
// holds a private address, in any zone: the metadata service identifies its
// caller by it. ErrNotFound when none does, ErrConflict when more than one
// zone's instance does (the caller cannot be told apart).
func (s *Store) LiveInstanceByAddress(ctx context.Context, ip string) (Instance, error) {
	out, err := instances(ctx, s.r, `i.private_ip = ? AND i.state != 'terminated'`, ip)
	switch {
	case err != nil:
		return Instance{}, err
	case len(out) == 0:
		return Instance{}, fmt.Errorf("instance at %s: %w", ip, ErrNotFound)
	case len(out) > 1:
		return Instance{}, fmt.Errorf("%d instances at %s: %w", len(out), ip, ErrConflict)
	}
	return out[0], nil
}

// StateChange moves an instance to State; the other fields are recorded
// when set.
type StateChange struct {
	State            string
	ReasonCode       string
	ReasonMessage    string
	TransitionReason string
	LaunchedMS       int64
	Node             string
}

// SetInstanceState applies ch to an instance if it is in one of from (any
// state when from is empty), and reports whether it did: the reconcile loop
// and the API change states concurrently, and neither may undo the other.
func (s *Store) SetInstanceState(ctx context.Context, id string, from []string, ch StateChange) (bool, error) {
	changed := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var ok bool
		var err error
		ok, err = setState(ctx, tx, id, from, ch)
		changed = ok
		return err
	})
	return changed, err
}

func setState(ctx context.Context, q queryer, id string, from []string, ch StateChange) (bool, error) {
	sets := []string{"state = ?", "updated_ms = ?"}
	args := []any{ch.State, now()}
	if ch.ReasonCode != "" {
		sets = append(sets, "state_reason_code = ?", "state_reason_message = ?")
		args = append(args, ch.ReasonCode, ch.ReasonMessage)
	}
	if ch.TransitionReason != "" {
		sets = append(sets, "transition_reason = ?")
		args = append(args, ch.TransitionReason)
	}
	if ch.LaunchedMS != 0 {
		sets = append(sets, "launched_ms = ?")
		args = append(args, ch.LaunchedMS)
	}
	if ch.Node != "" {
		sets = append(sets, "node = ?")
		args = append(args, ch.Node)
	}
	if ch.State == InstanceStopped {
		// A stopped instance leaves its node, and a public address lent
		// from the pool goes back to it; an elastic IP stays associated
		// (as EC2 does). Its private address stays its own.
		sets = append(sets, "node = ''", `public_ip = CASE WHEN EXISTS (SELECT 1 FROM addresses a
			WHERE a.instance_id = instances.id AND a.instance_id != '') THEN public_ip ELSE '' END`)
	}
	if ch.State == InstanceTerminated {
		// A terminated instance lets its public address go: one lent
		// from the pool returns to it, an elastic IP stays its account's,
		// disassociated (as EC2 does).
		sets = append(sets, "public_ip = ''")
	}
	where := ` WHERE id = ?`
	args = append(args, id)
	if len(from) > 0 {
		where += ` AND state IN (?` + strings.Repeat(`, ?`, len(from)-1) + `)`
		for _, f := range from {
			args = append(args, f)
		}
	}
	res, err := q.ExecContext(ctx, `UPDATE instances SET `+strings.Join(sets, ", ")+where, args...)
	if err != nil {
		return false, fmt.Errorf("store: state of %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err == nil && n > 0 && ch.State == InstanceTerminated {
		err = dropAssociation(ctx, q, id)
	}
	return n > 0, err
}

// SetInstanceNodes records where the cluster placed instances.
func (s *Store) SetInstanceNodes(ctx context.Context, nodes map[string]string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for id, node := range nodes {
			if _, err := tx.ExecContext(ctx, `UPDATE instances SET node = ? WHERE id = ?`, node, id); err != nil {
				return fmt.Errorf("store: node of %s: %w", id, err)
			}
		}
		return nil
	})
}

// SetInstanceAddress records the private address a live instance was
// found to hold (SYSTEM mode: its node learned it from the guest's DHCP).
// ErrConflict when another live instance of its zone holds it;
// ErrNotFound when the instance is terminated or unknown.
func (s *Store) SetInstanceAddress(ctx context.Context, id string, ip netip.Addr) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE instances SET private_ip = ?, updated_ms = ? WHERE id = ? AND state != 'terminated'`,
			ip.String(), now(), id)
		if err != nil {
			return conflict(err, "instance "+id+" at "+ip.String())
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("live instance %s: %w", id, ErrNotFound)
		}
		return nil
	})
}

// InstanceTransition is one instance's state before and after a call.
type InstanceTransition struct {
	ID, Previous, Current string
}

// TerminationProtectedError names an instance whose termination protection
// (disableApiTermination) refused a TerminateInstances.
type TerminationProtectedError struct{ ID string }

func (e *TerminationProtectedError) Error() string {
	return "store: instance " + e.ID + " is protected from termination"
}

// TerminateInstances moves an account's instances to shutting-down, all or
// none: an id the account does not have fails the call with a
// *MissingResourceError, an instance with termination protection with a
// *TerminationProtectedError. Instances shutting down or terminated
// already stay as they are. reason is EC2's transition reason.
func (s *Store) TerminateInstances(ctx context.Context, accountID string, ids []string, reason string) ([]InstanceTransition, error) {
	var out []InstanceTransition
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		for _, id := range ids {
			var state string
			var protected bool
			err := tx.QueryRowContext(ctx, `SELECT state, disable_api_termination FROM instances WHERE id = ? AND account_id = ?`, id, accountID).
				Scan(&state, &protected)
			if errors.Is(err, sql.ErrNoRows) {
				return &MissingResourceError{ID: id}
			}
			if err != nil {
				return err
			}
			if protected {
				return &TerminationProtectedError{ID: id}
			}
			t := InstanceTransition{ID: id, Previous: state, Current: state}
			switch state {
			case InstancePending, InstanceRunning, InstanceStopping, InstanceStopped:
				if _, err := setState(ctx, tx, id, []string{state}, StateChange{State: InstanceShuttingDown,
					ReasonCode: "Client.UserInitiatedShutdown", ReasonMessage: "Client.UserInitiatedShutdown: User initiated shutdown",
					TransitionReason: reason}); err != nil {
					return err
				}
				t.Current = InstanceShuttingDown
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// InstanceUpdate changes an instance's attributes; nil fields stay.
type InstanceUpdate struct {
	DisableAPITermination *bool
	DisableAPIStop        *bool
	ShutdownBehavior      *string
	SourceDestCheck       *bool
	EBSOptimized          *bool
	InstanceType          *string
	KernelID              *string
	RamdiskID             *string
	UserData              *[]byte // a nil slice removes the user data
	Groups                []GroupRef
}

// UpdateInstance applies u to one of an account's instances (ErrNotFound
// for anyone else's).
func (s *Store) UpdateInstance(ctx context.Context, accountID, id string, u InstanceUpdate) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM instances WHERE id = ? AND account_id = ?`, id, accountID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("instance %s: %w", id, ErrNotFound)
		}
		var sets []string
		var args []any
		add := func(col string, v any) { sets = append(sets, col+" = ?"); args = append(args, v) }
		if u.DisableAPITermination != nil {
			add("disable_api_termination", *u.DisableAPITermination)
		}
		if u.DisableAPIStop != nil {
			add("disable_api_stop", *u.DisableAPIStop)
		}
		if u.ShutdownBehavior != nil {
			add("shutdown_behavior", *u.ShutdownBehavior)
		}
		if u.SourceDestCheck != nil {
			add("source_dest_check", *u.SourceDestCheck)
		}
		if u.EBSOptimized != nil {
			add("ebs_optimized", *u.EBSOptimized)
		}
		if u.InstanceType != nil {
			add("instance_type", *u.InstanceType)
		}
		if u.KernelID != nil {
			add("kernel_id", *u.KernelID)
		}
		if u.RamdiskID != nil {
			add("ramdisk_id", *u.RamdiskID)
		}
		if u.UserData != nil {
			add("user_data", *u.UserData)
		}
		if len(sets) > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE instances SET `+strings.Join(sets, ", ")+` WHERE id = ?`, append(args, id)...); err != nil {
				return fmt.Errorf("store: update instance %s: %w", id, err)
			}
		}
		if u.Groups != nil {
			if _, err := tx.ExecContext(ctx, `DELETE FROM instance_groups WHERE instance_id = ?`, id); err != nil {
				return err
			}
			for i, g := range u.Groups {
				if _, err := tx.ExecContext(ctx, `INSERT INTO instance_groups (instance_id, group_id, group_name, position) VALUES (?, ?, ?, ?)`,
					id, g.ID, g.Name, i); err != nil {
					return conflict(err, "group "+g.ID+" of "+id)
				}
			}
		}
		return nil
	})
}

// DeleteTerminatedInstances removes the instances terminated before
// beforeMS, with their tags and emptied reservations, and returns their ids.
func (s *Store) DeleteTerminatedInstances(ctx context.Context, beforeMS int64) ([]string, error) {
	var ids []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM instances WHERE state = 'terminated' AND updated_ms < ?`, beforeMS)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		return deleteInstances(ctx, tx, ids)
	})
	return ids, err
}

// GroupInUse reports whether an instance that is not terminated is in the
// security group.
func (s *Store) GroupInUse(ctx context.Context, groupID string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM instance_groups g JOIN instances i ON i.id = g.instance_id
		WHERE g.group_id = ? AND i.state != 'terminated'`, groupID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: group %s in use: %w", groupID, err)
	}
	return n > 0, nil
}

// NetworkRules returns the rules, both ways (Egress set on the egress
// ones), of security groups of any account, by group id: what the zone's
// network enforces for the instances in them.
func (s *Store) NetworkRules(ctx context.Context, groupIDs []string) (map[string][]SecurityGroupRule, error) {
	out := map[string][]SecurityGroupRule{}
	if len(groupIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(groupIDs))
	for i, id := range groupIDs {
		args[i] = id
		out[id] = nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, group_id, egress, protocol, from_port, to_port, cidr_ipv4, cidr_ipv6, peer_group_id,
		peer_owner_id, prefix_list_id, description, created_ms FROM security_group_rules
		WHERE group_id IN (?`+strings.Repeat(`, ?`, len(groupIDs)-1)+`) ORDER BY created_ms, rowid`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: network rules: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r SecurityGroupRule
		if err := rows.Scan(&r.ID, &r.GroupID, &r.Egress, &r.Protocol, &r.FromPort, &r.ToPort, &r.CIDRIPv4, &r.CIDRIPv6, &r.PeerGroupID,
			&r.PeerOwnerID, &r.PrefixListID, &r.Description, &r.CreatedMS); err != nil {
			return nil, err
		}
		out[r.GroupID] = append(out[r.GroupID], r)
	}
	return out, rows.Err()
}

// SubnetByID returns a subnet of any account by id (without tags): the
// metadata service describes an instance's subnet to the instance.
func (s *Store) SubnetByID(ctx context.Context, id string) (Subnet, error) {
	var sn Subnet
	err := s.r.QueryRowContext(ctx, `SELECT id, account_id, vpc_id, zone, cidr, default_for_az, map_public_ip, created_ms, network_acl_association_id
		FROM subnets WHERE id = ?`, id).
		Scan(&sn.ID, &sn.AccountID, &sn.VPCID, &sn.Zone, &sn.CIDR, &sn.DefaultForAZ, &sn.MapPublicIP, &sn.CreatedMS, &sn.NetworkACLAssociationID)
	return sn, notFound(err, "subnet "+id)
}

// VPCByID returns a VPC of any account by id (without tags).
func (s *Store) VPCByID(ctx context.Context, id string) (VPC, error) {
	v, err := scanVPC(s.r.QueryRowContext(ctx, `SELECT `+vpcColumns+` FROM vpcs WHERE id = ?`, id))
	return v, notFound(err, "vpc "+id)
}
