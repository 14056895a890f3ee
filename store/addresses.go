package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// TypeElasticIP is the tag resource type of elastic IPs (their allocations).
const TypeElasticIP = "elastic-ip"

// Address domains, as EC2 names them: a VPC address (AllocationId-first
// calls) or an EC2-Classic one (PublicIp-first). Both work the same here;
// the domain says which way the account asked.
const (
	DomainVPC      = "vpc"
	DomainStandard = "standard"
)

// Address is an elastic IP an account allocated, with the instance it is
// associated with when it is.
type Address struct {
	AllocationID  string
	AccountID     string
	PublicIP      string
	Domain        string
	AssociationID string // "" when not associated
	InstanceID    string
	// Of the associated instance: its private address and interface.
	PrivateIP string
	ENIID     string
	Tags      []Tag
	CreatedMS int64
	// AccountName is the owner's name (Addresses with no account: the
	// administrator's view).
	AccountName string
	// DomainName is the reverse DNS name the account gave the address
	// (ModifyAddressAttribute), lower case without the final dot; "" when
	// it gave none.
	DomainName string
}

// ErrNoFreeAddress says that every address of the pool is in use.
var ErrNoFreeAddress = errors.New("store: no free public address in the pool")

// ErrAddressLimit says that the account holds as many allocations as it
// may.
var ErrAddressLimit = errors.New("store: the account holds its limit of elastic IPs")

// AlreadyAssociatedError refuses to associate an address associated with
// another instance unless reassociation is allowed.
type AlreadyAssociatedError struct{ AllocationID, AssociationID string }

func (e *AlreadyAssociatedError) Error() string {
	return "store: address " + e.AllocationID + " is associated already (" + e.AssociationID + ")"
}

// AddressInUseError refuses to release an address still associated.
type AddressInUseError struct{ PublicIP string }

func (e *AddressInUseError) Error() string { return "store: address " + e.PublicIP + " is associated" }

// InstanceStateError refuses an address for an instance that is going or gone.
type InstanceStateError struct{ ID, State string }

func (e *InstanceStateError) Error() string {
	return "store: instance " + e.ID + " is " + e.State
}

// AllocateAddress gives an account an address of pool: want when it is
// valid (ErrConflict when it is in use, a *MissingResourceError naming it
// when it is not in the pool), else the first free one (ErrNoFreeAddress
// when none is). a carries the allocation id, account, domain and tags.
// An account holding limit allocations already is refused with
// ErrAddressLimit (0: no limit), counted in the transaction, so that no
// account drains the pool the others share, even by concurrent calls.
func (s *Store) AllocateAddress(ctx context.Context, a Address, pool []netip.Addr, want netip.Addr, limit int) (Address, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if limit > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM addresses WHERE account_id = ?`, a.AccountID).Scan(&n); err != nil {
				return fmt.Errorf("store: addresses of %s: %w", a.AccountID, err)
			}
			if n >= limit {
				return fmt.Errorf("%s holds %d: %w", a.AccountID, n, ErrAddressLimit)
			}
		}
		used, err := usedPublic(ctx, tx)
		if err != nil {
			return err
		}
		switch {
		case want.IsValid() && !slices.Contains(pool, want):
			return &MissingResourceError{ID: want.String()}
		case want.IsValid() && used[want]:
			return fmt.Errorf("address %s: %w", want, ErrConflict)
		case want.IsValid():
			a.PublicIP = want.String()
		default:
			ip, ok := freePublic(pool, used)
			if !ok {
				return ErrNoFreeAddress
			}
			a.PublicIP = ip.String()
		}
		a.CreatedMS = now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO addresses (allocation_id, account_id, public_ip, domain, created_ms) VALUES (?, ?, ?, ?, ?)`,
			a.AllocationID, a.AccountID, a.PublicIP, a.Domain, a.CreatedMS); err != nil {
			return conflict(err, "address "+a.PublicIP)
		}
		return putTags(ctx, tx, a.AccountID, a.AllocationID, TypeElasticIP, a.Tags)
	})
	if err != nil {
		return Address{}, err
	}
	return a, nil
}

// usedPublic is every public address in use: allocated, or lent to a live
// instance.
func usedPublic(ctx context.Context, q queryer) (map[netip.Addr]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT public_ip FROM addresses
		UNION SELECT public_ip FROM instances WHERE public_ip != '' AND state != 'terminated'`)
	if err != nil {
		return nil, fmt.Errorf("store: public addresses in use: %w", err)
	}
	defer rows.Close()
	out := map[netip.Addr]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		if ip, err := netip.ParseAddr(s); err == nil {
			out[ip] = true
		}
	}
	return out, rows.Err()
}

func freePublic(pool []netip.Addr, used map[netip.Addr]bool) (netip.Addr, bool) {
	for _, ip := range pool {
		if !used[ip] {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

const addressCols = `a.allocation_id, a.account_id, a.public_ip, a.domain, a.association_id, a.instance_id,
	coalesce(i.private_ip, ''), coalesce(i.eni_id, ''), a.created_ms, coalesce(ac.name, ''), a.domain_name`

const addressFrom = ` FROM addresses a LEFT JOIN instances i ON i.id = a.instance_id
	LEFT JOIN accounts ac ON ac.id = a.account_id`

func addresses(ctx context.Context, q queryer, where string, args ...any) ([]Address, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+addressCols+addressFrom+` WHERE `+where+` ORDER BY a.created_ms, a.allocation_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: addresses: %w", err)
	}
	defer rows.Close()
	var out []Address
	for rows.Next() {
		var a Address
		if err := rows.Scan(&a.AllocationID, &a.AccountID, &a.PublicIP, &a.Domain, &a.AssociationID, &a.InstanceID,
			&a.PrivateIP, &a.ENIID, &a.CreatedMS, &a.AccountName, &a.DomainName); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Addresses lists an account's elastic IPs with their tags, oldest first;
// with accountID "" every account's (the administrator's view).
func (s *Store) Addresses(ctx context.Context, accountID string) ([]Address, error) {
	if accountID == "" {
		return addresses(ctx, s.r, `1`)
	}
	out, err := addresses(ctx, s.r, `a.account_id = ?`, accountID)
	if err != nil || len(out) == 0 {
		return out, err
	}
	tags, err := tagsByResource(ctx, s.r, accountID, TypeElasticIP)
	for i := range out {
		out[i].Tags = tags[out[i].AllocationID]
	}
	return out, err
}

// AddressByPublicIP returns the allocation of a public address, whoever's
// it is (ErrNotFound when no account holds it): the caller tells another
// account's address from no one's.
func (s *Store) AddressByPublicIP(ctx context.Context, ip string) (Address, error) {
	out, err := addresses(ctx, s.r, `a.public_ip = ?`, ip)
	if err != nil {
		return Address{}, err
	}
	if len(out) == 0 {
		return Address{}, fmt.Errorf("address %s: %w", ip, ErrNotFound)
	}
	return out[0], nil
}

// PublicAddressUse is one public address in use: by an allocation, an
// instance, or both (an associated elastic IP).
type PublicAddressUse struct {
	PublicIP     string
	AccountID    string
	AccountName  string
	AllocationID string // "" : lent to InstanceID from the pool, not allocated
	InstanceID   string
	Domain       string // of the allocation: DomainVPC or DomainStandard; "" when lent
}

// PublicAddressesInUse lists every public address in use, of any account:
// the administrator's view of the pool.
func (s *Store) PublicAddressesInUse(ctx context.Context) ([]PublicAddressUse, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a.public_ip, a.account_id, coalesce(ac.name, ''), a.allocation_id, a.instance_id, a.domain
		FROM addresses a LEFT JOIN accounts ac ON ac.id = a.account_id
		UNION ALL
		SELECT i.public_ip, i.account_id, coalesce(ac.name, ''), '', i.id, ''
		FROM instances i LEFT JOIN accounts ac ON ac.id = i.account_id
		WHERE i.public_ip != '' AND i.state != 'terminated' AND NOT EXISTS (SELECT 1 FROM addresses a WHERE a.instance_id = i.id AND a.instance_id != '')`)
	if err != nil {
		return nil, fmt.Errorf("store: public addresses in use: %w", err)
	}
	defer rows.Close()
	var out []PublicAddressUse
	for rows.Next() {
		var u PublicAddressUse
		if err := rows.Scan(&u.PublicIP, &u.AccountID, &u.AccountName, &u.AllocationID, &u.InstanceID, &u.Domain); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// AssociateAddress associates an account's allocation with one of its
// instances under associationID, and returns the address as it then is.
// The instance's public address becomes the elastic IP (one it was lent
// returns to the pool; an elastic IP it had is disassociated, still
// allocated). An address associated with another instance is a
// *AlreadyAssociatedError unless reassociate; associated with this one
// already, it is answered as it is. A missing allocation or instance is a
// *MissingResourceError naming it, an instance shutting down or terminated
// an *InstanceStateError.
func (s *Store) AssociateAddress(ctx context.Context, accountID, allocationID, instanceID, associationID string, reassociate bool) (Address, error) {
	var out Address
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, err := addressOf(ctx, tx, accountID, allocationID)
		if err != nil {
			return err
		}
		var state string
		err = tx.QueryRowContext(ctx, `SELECT state FROM instances WHERE id = ? AND account_id = ?`, instanceID, accountID).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return &MissingResourceError{ID: instanceID}
		}
		if err != nil {
			return err
		}
		if state == InstanceShuttingDown || state == InstanceTerminated {
			return &InstanceStateError{ID: instanceID, State: state}
		}
		switch {
		case a.InstanceID == instanceID:
			out = a
			return nil
		case a.InstanceID != "" && !reassociate:
			return &AlreadyAssociatedError{AllocationID: a.AllocationID, AssociationID: a.AssociationID}
		case a.InstanceID != "":
			// Taken from the instance it was on, which goes without.
			if err := disassociate(ctx, tx, a); err != nil {
				return err
			}
		}
		if err := dropAssociation(ctx, tx, instanceID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE addresses SET association_id = ?, instance_id = ? WHERE allocation_id = ?`,
			associationID, instanceID, a.AllocationID); err != nil {
			return conflict(err, "address "+a.PublicIP)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE instances SET public_ip = ? WHERE id = ?`, a.PublicIP, instanceID); err != nil {
			return conflict(err, "public address of "+instanceID)
		}
		out, err = addressOf(ctx, tx, accountID, allocationID)
		return err
	})
	return out, err
}

func addressOf(ctx context.Context, q queryer, accountID, allocationID string) (Address, error) {
	got, err := addresses(ctx, q, `a.allocation_id = ? AND a.account_id = ?`, allocationID, accountID)
	if err != nil {
		return Address{}, err
	}
	if len(got) == 0 {
		return Address{}, &MissingResourceError{ID: allocationID}
	}
	return got[0], nil
}

// dropAssociation disassociates whatever elastic IP an instance has; its
// public address is then none until FillPublicAddresses lends it one.
func dropAssociation(ctx context.Context, q queryer, instanceID string) error {
	got, err := addresses(ctx, q, `a.instance_id = ? AND a.instance_id != ''`, instanceID)
	if err != nil || len(got) == 0 {
		return err
	}
	return disassociate(ctx, q, got[0])
}

func disassociate(ctx context.Context, q queryer, a Address) error {
	if _, err := q.ExecContext(ctx, `UPDATE addresses SET association_id = '', instance_id = '' WHERE allocation_id = ?`, a.AllocationID); err != nil {
		return fmt.Errorf("store: disassociate %s: %w", a.PublicIP, err)
	}
	if _, err := q.ExecContext(ctx, `UPDATE instances SET public_ip = '' WHERE id = ? AND public_ip = ?`, a.InstanceID, a.PublicIP); err != nil {
		return fmt.Errorf("store: disassociate %s from %s: %w", a.PublicIP, a.InstanceID, err)
	}
	return nil
}

// SetAddressDomainName gives an account's allocation its reverse DNS name
// (name "" takes it away) and returns the address as it was before. A
// missing allocation is a *MissingResourceError. The name goes with the
// allocation: released, the address comes back to the pool without it.
func (s *Store) SetAddressDomainName(ctx context.Context, accountID, allocationID, name string) (Address, error) {
	return s.changeAddress(ctx, accountID, allocationID, func(tx *sql.Tx, a Address) error {
		if _, err := tx.ExecContext(ctx, `UPDATE addresses SET domain_name = ? WHERE allocation_id = ?`, name, allocationID); err != nil {
			return fmt.Errorf("store: domain name of %s: %w", a.PublicIP, err)
		}
		return nil
	})
}

// changeAddress runs change on an account's allocation in one transaction
// and returns the address as it was before (a *MissingResourceError when
// the account has no such allocation).
func (s *Store) changeAddress(ctx context.Context, accountID, allocationID string, change func(*sql.Tx, Address) error) (Address, error) {
	var out Address
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, err := addressOf(ctx, tx, accountID, allocationID)
		if err != nil {
			return err
		}
		out = a
		return change(tx, a)
	})
	return out, err
}

// DisassociateAddress ends the association of an account's address
// (*MissingResourceError naming associationID when the account has no such
// association), and returns the address as it was.
func (s *Store) DisassociateAddress(ctx context.Context, accountID, associationID string) (Address, error) {
	var out Address
	err := s.tx(ctx, func(tx *sql.Tx) error {
		got, err := addresses(ctx, tx, `a.association_id = ? AND a.account_id = ?`, associationID, accountID)
		if err != nil {
			return err
		}
		if len(got) == 0 || associationID == "" {
			return &MissingResourceError{ID: associationID}
		}
		out = got[0]
		return disassociate(ctx, tx, out)
	})
	return out, err
}

// ReleaseAddress gives an account's allocation back to the pool, with its
// tags. Associated, it is an *AddressInUseError unless disassociate says to
// end the association first (EC2-Classic's way). A missing allocation is a
// *MissingResourceError.
func (s *Store) ReleaseAddress(ctx context.Context, accountID, allocationID string, disassociateFirst bool) (Address, error) {
	return s.changeAddress(ctx, accountID, allocationID, func(tx *sql.Tx, a Address) error {
		if a.InstanceID != "" {
			if !disassociateFirst {
				return &AddressInUseError{PublicIP: a.PublicIP}
			}
			if err := disassociate(ctx, tx, a); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM addresses WHERE allocation_id = ?`, allocationID); err != nil {
			return fmt.Errorf("store: release %s: %w", a.PublicIP, err)
		}
		return deleteAllTags(ctx, tx, allocationID)
	})
}

// FillPublicAddresses brings the public addresses lent from the pool in
// line with it: every live instance that takes one (MapPublicIP) and has no
// address is lent the next free one while the pool has any, and an address
// lent that is no longer in the pool is taken back. Elastic IPs are left as
// they are. It returns the zones whose instances changed, to hand their
// networks on. Harmless to call again: the launch, each disassociation and
// the reconcile loop call it.
func (s *Store) FillPublicAddresses(ctx context.Context, pool []netip.Addr) (zones []string, err error) {
	// Most calls find nothing to do: they look first without the writer.
	todo, free, err := lendable(ctx, s.r, pool)
	if err != nil || len(todo) == 0 || !free && !slices.ContainsFunc(todo, func(l lent) bool { return l.ip != "" }) {
		return nil, err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		zones = zones[:0]
		todo, _, err := lendable(ctx, tx, pool)
		if err != nil {
			return err
		}
		used, err := usedPublic(ctx, tx)
		if err != nil {
			return err
		}
		for _, l := range todo {
			next, ok := freePublic(pool, used)
			if !ok && l.ip == "" {
				continue
			}
			v := ""
			if ok {
				v = next.String()
				used[next] = true
			}
			if _, err := tx.ExecContext(ctx, `UPDATE instances SET public_ip = ? WHERE id = ?`, v, l.id); err != nil {
				return conflict(err, "public address of "+l.id)
			}
			if !slices.Contains(zones, l.zone) {
				zones = append(zones, l.zone)
			}
		}
		return nil
	})
	return zones, err
}

// lent is a live instance that takes a public address from the pool.
type lent struct{ id, zone, ip string }

// lendable lists the instances that take a public address from the pool
// and have none, or one the pool no longer holds, oldest first, and says
// whether the pool has a free address.
func lendable(ctx context.Context, q queryer, pool []netip.Addr) ([]lent, bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT i.id, i.zone, i.public_ip FROM instances i
		WHERE i.state NOT IN ('terminated', 'shutting-down', 'stopping', 'stopped') AND i.map_public_ip = 1
		AND NOT EXISTS (SELECT 1 FROM addresses a WHERE a.instance_id = i.id AND a.instance_id != '')
		ORDER BY i.created_ms, i.reservation_id, i.launch_index`)
	if err != nil {
		return nil, false, fmt.Errorf("store: instances lent addresses: %w", err)
	}
	var out []lent
	for rows.Next() {
		var l lent
		if err := rows.Scan(&l.id, &l.zone, &l.ip); err != nil {
			rows.Close()
			return nil, false, err
		}
		if ip, err := netip.ParseAddr(l.ip); l.ip == "" || err != nil || !slices.Contains(pool, ip) {
			out = append(out, l)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return nil, false, err
	}
	used, err := usedPublic(ctx, q)
	if err != nil {
		return nil, false, err
	}
	_, free := freePublic(pool, used)
	return out, free, nil
}

// InstanceZone is the zone of an instance of any account (ErrNotFound when
// there is none).
func (s *Store) InstanceZone(ctx context.Context, id string) (string, error) {
	var zone string
	err := s.r.QueryRowContext(ctx, `SELECT zone FROM instances WHERE id = ?`, id).Scan(&zone)
	return zone, notFound(err, "instance "+id)
}
