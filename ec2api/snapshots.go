package ec2api

import (
	"context"
	"strconv"
	"unicode/utf8"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// EBS snapshots: CreateSnapshot, DeleteSnapshot, DescribeSnapshots,
// CopySnapshot and the snapshot attributes (createVolumePermission, in both
// the CreateVolumePermission.Add/Remove form and the older OperationType +
// UserId.N + UserGroup.N form euca2ools sends; productCodes, always none).

// SnapshotService is the cloud controller's side of the snapshot actions.
type SnapshotService interface {
	// CreateSnapshot starts a snapshot of the account's volume (pending).
	CreateSnapshot(ctx context.Context, accountID, volumeID, description string, tags []store.Tag) (store.Snapshot, error)
	// CopySnapshot starts a copy of a snapshot the account may use.
	CopySnapshot(ctx context.Context, accountID, sourceID, description string, tags []store.Tag) (store.Snapshot, error)
	// DeleteSnapshot deletes one of the account's snapshots.
	DeleteSnapshot(ctx context.Context, accountID, snapshotID string) error
	// DescribeSnapshots lists the snapshots the account may see (its own,
	// public ones, those shared with it), or exactly those named.
	DescribeSnapshots(ctx context.Context, accountID string, snapshotIDs []string) ([]store.Snapshot, error)
	// OwnSnapshot is one of the account's own snapshots.
	OwnSnapshot(ctx context.Context, accountID, snapshotID string) (store.Snapshot, error)
	// ModifySnapshotPermissions changes the createVolumePermission of one
	// of the account's snapshots.
	ModifySnapshotPermissions(ctx context.Context, accountID, snapshotID string, u store.SnapshotPermissionUpdate) error
}

var snapshotIDPattern = idPattern("snap")

// maxDescription is the longest snapshot description EC2 takes.
const maxDescription = 255

// ---- shapes

// snapshotItem is botocore's Snapshot shape.
type snapshotItem struct {
	SnapshotID     string          `xml:"snapshotId"`
	VolumeID       string          `xml:"volumeId"`
	Status         string          `xml:"status"`
	StatusMessage  string          `xml:"statusMessage,omitempty"`
	StartTime      string          `xml:"startTime"`
	Progress       string          `xml:"progress"`
	OwnerID        string          `xml:"ownerId"`
	VolumeSize     int             `xml:"volumeSize"`
	Description    string          `xml:"description"`
	Encrypted      bool            `xml:"encrypted"`
	Tags           *setOf[tagItem] `xml:"tagSet,omitempty"`
	StorageTier    string          `xml:"storageTier"`
	CompletionTime string          `xml:"completionTime,omitempty"`
	tags           []store.Tag
	public         bool
	permissions    []string
}

func snapshotView(s store.Snapshot) snapshotItem {
	it := snapshotItem{SnapshotID: s.ID, VolumeID: s.VolumeID, Status: s.State, StatusMessage: s.Error,
		StartTime: ec2Time(s.StartMS), Progress: strconv.Itoa(s.Progress) + "%", OwnerID: s.AccountID,
		VolumeSize: s.VolumeSizeGiB, Description: s.Description, StorageTier: "standard",
		tags: s.Tags, public: s.Public, permissions: s.Permissions}
	if it.VolumeID == "" {
		// EC2 shows snapshots not made from a volume of this region
		// (copies, registered ones) with this volume id.
		it.VolumeID = "vol-ffffffff"
	}
	if s.CompletedMS != 0 {
		it.CompletionTime = ec2Time(s.CompletedMS)
	}
	if len(s.Tags) > 0 {
		ts := tagSetOf(s.Tags)
		it.Tags = &ts
	}
	return it
}

// snapshotIDParam is a required SnapshotId, well formed.
func snapshotIDParam(p queryapi.Params, name string) (string, error) {
	id, err := p.Required(name)
	if err != nil {
		return "", err
	}
	return id, checkSnapshotIDs([]string{id})
}

func checkSnapshotIDs(ids []string) error {
	for _, id := range ids {
		if !snapshotIDPattern.MatchString(id) {
			return awserr.New("InvalidSnapshotID.Malformed", "Invalid id: \"%s\" (expecting \"snap-...\")", id)
		}
	}
	return nil
}

func descriptionParam(p queryapi.Params) (string, error) {
	d := p.String("Description")
	if !utf8.ValidString(d) || utf8.RuneCountInString(d) > maxDescription {
		return "", awserr.InvalidParameterValue("Value for parameter description is invalid: at most %d characters.", maxDescription)
	}
	return d, nil
}

// ---- CreateSnapshot and CopySnapshot

type createSnapshotResponse struct {
	Response
	snapshotItem
}

func (a *api) createSnapshot(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	volumeID, err := volumeIDParam(p)
	if err != nil {
		return nil, err
	}
	desc, err := descriptionParam(p)
	if err != nil {
		return nil, err
	}
	if loc := p.String("Location"); loc != "" && loc != "regional" {
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter location is invalid: snapshots here are regional.", loc)
	}
	if p.String("OutpostArn") != "" {
		return nil, awserr.InvalidParameterValue("The Outpost ARN '%s' is not valid: this cloud has no Outposts.", p.String("OutpostArn"))
	}
	tags, err := tagsFor(p.TagSpecifications(), store.TypeSnapshot)
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	s, err := a.cloud.CreateSnapshot(ctx, req.Caller.AccountID, volumeID, desc, tags)
	if err != nil {
		return nil, err
	}
	return &createSnapshotResponse{snapshotItem: snapshotView(s)}, nil
}

type copySnapshotResponse struct {
	Response
	SnapshotID string          `xml:"snapshotId"`
	Tags       *setOf[tagItem] `xml:"tagSet,omitempty"`
}

func (a *api) copySnapshot(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	region, err := p.Required("SourceRegion")
	if err != nil {
		return nil, err
	}
	src, err := snapshotIDParam(p, "SourceSnapshotId")
	if err != nil {
		return nil, err
	}
	desc, err := descriptionParam(p)
	if err != nil {
		return nil, err
	}
	here := a.cloud.Region()
	if region != here {
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter SourceRegion is invalid: this cloud has one region, %s.", region, here)
	}
	if d := p.String("DestinationRegion"); d != "" && d != here {
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter DestinationRegion is invalid: this cloud has one region, %s.", d, here)
	}
	enc, err := p.Bool("Encrypted")
	if err != nil {
		return nil, err
	}
	if enc || p.String("KmsKeyId") != "" {
		return nil, awserr.InvalidParameterValue("Encrypted snapshots are not supported by this cloud.")
	}
	if p.String("DestinationOutpostArn") != "" {
		return nil, awserr.InvalidParameterValue("This cloud has no Outposts.")
	}
	tags, err := tagsFor(p.TagSpecifications(), store.TypeSnapshot)
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	s, err := a.cloud.CopySnapshot(ctx, req.Caller.AccountID, src, desc, tags)
	if err != nil {
		return nil, err
	}
	return &copySnapshotResponse{SnapshotID: s.ID, Tags: snapshotView(s).Tags}, nil
}

// ---- DeleteSnapshot

func (a *api) deleteSnapshot(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	id, err := snapshotIDParam(p, "SnapshotId")
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if err := a.cloud.DeleteSnapshot(ctx, req.Caller.AccountID, id); err != nil {
		return nil, err
	}
	return ok()
}

// ---- DescribeSnapshots

type describeSnapshotsResponse struct {
	Response
	Snapshots setOf[snapshotItem] `xml:"snapshotSet"`
	NextToken string              `xml:"nextToken,omitempty"`
}

func snapshotField(f func(snapshotItem) string) func(snapshotItem) []string {
	return func(it snapshotItem) []string { return optValue(f(it)) }
}

// snapshotFilters are DescribeSnapshots' filters as AWS documents them.
var snapshotFilters = filterFields[snapshotItem]{
	"description":   snapshotField(func(it snapshotItem) string { return it.Description }),
	"encrypted":     snapshotField(func(it snapshotItem) string { return boolString(it.Encrypted) }),
	"owner-alias":   snapshotField(func(snapshotItem) string { return "" }),
	"owner-id":      snapshotField(func(it snapshotItem) string { return it.OwnerID }),
	"progress":      snapshotField(func(it snapshotItem) string { return it.Progress }),
	"snapshot-id":   snapshotField(func(it snapshotItem) string { return it.SnapshotID }),
	"start-time":    snapshotField(func(it snapshotItem) string { return it.StartTime }),
	"status":        snapshotField(func(it snapshotItem) string { return it.Status }),
	"storage-tier":  snapshotField(func(it snapshotItem) string { return it.StorageTier }),
	"transfer-type": snapshotField(func(snapshotItem) string { return "" }),
	"volume-id":     snapshotField(func(it snapshotItem) string { return it.VolumeID }),
	"volume-size":   snapshotField(func(it snapshotItem) string { return strconv.Itoa(it.VolumeSize) }),
}

// restorableBy says whether account (or, for "all", everyone) may make
// volumes of a snapshot.
func (it snapshotItem) restorableBy(who, caller string) bool {
	switch who {
	case "all":
		return it.public
	case "self":
		who = caller
	}
	if it.OwnerID == who || it.public {
		return true
	}
	for _, p := range it.permissions {
		if p == who {
			return true
		}
	}
	return false
}

func (a *api) describeSnapshots(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	caller := req.Caller.AccountID
	ids, owners, restorable := p.List("SnapshotId"), p.List("Owner"), p.List("RestorableBy")
	page, next, err := describe(p, describeCall[snapshotItem]{
		fields: snapshotFilters, tags: func(it snapshotItem) []store.Tag { return it.tags }, filterNamesFirst: true,
		check: func() error {
			if err := checkSnapshotIDs(ids); err != nil {
				return err
			}
			for _, o := range owners {
				if o != "self" && o != "amazon" && o != "aws-marketplace" && !accountIDPattern.MatchString(o) {
					return awserr.InvalidParameterValue("Value (%s) for parameter Owner is invalid.", o)
				}
			}
			for _, r := range restorable {
				if r != "self" && r != "all" && !accountIDPattern.MatchString(r) {
					return awserr.InvalidParameterValue("Value (%s) for parameter RestorableBy is invalid.", r)
				}
			}
			return nil
		},
		fetch: func() ([]snapshotItem, error) {
			all, err := viewsOf(snapshotView)(a.cloud.DescribeSnapshots(ctx, caller, ids))
			if err != nil {
				return nil, err
			}
			var out []snapshotItem
			for _, it := range all {
				if len(owners) > 0 && !ownedBy(it, owners, caller) {
					continue
				}
				if len(restorable) > 0 {
					keep := false
					for _, r := range restorable {
						keep = keep || it.restorableBy(r, caller)
					}
					if !keep {
						continue
					}
				}
				out = append(out, it)
			}
			return out, nil
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeSnapshotsResponse{Snapshots: setOf[snapshotItem]{page}, NextToken: next}, nil
}

// ownedBy says whether one of owners (self, an account id; amazon owns
// nothing here) owns the snapshot.
func ownedBy(it snapshotItem, owners []string, caller string) bool {
	for _, o := range owners {
		if o == "self" {
			o = caller
		}
		if it.OwnerID == o {
			return true
		}
	}
	return false
}

// ---- snapshot attributes

type createVolumePermissionItem struct {
	Group  string `xml:"group,omitempty"`
	UserID string `xml:"userId,omitempty"`
}

type describeSnapshotAttributeResponse struct {
	Response
	SnapshotID             string                             `xml:"snapshotId"`
	CreateVolumePermission *setOf[createVolumePermissionItem] `xml:"createVolumePermission"`
	ProductCodes           *setOf[productCodeItem]            `xml:"productCodes"`
}

func snapshotAttribute(p queryapi.Params) (string, error) {
	attr, err := p.Required("Attribute")
	if err != nil {
		return "", err
	}
	if attr != "createVolumePermission" && attr != "productCodes" {
		return "", awserr.InvalidParameterValue("Value (%s) for parameter attribute is invalid. Valid values: productCodes, createVolumePermission.", attr)
	}
	return attr, nil
}

func (a *api) describeSnapshotAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	attr, err := snapshotAttribute(p)
	if err != nil {
		return nil, err
	}
	id, err := snapshotIDParam(p, "SnapshotId")
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	s, err := a.cloud.OwnSnapshot(ctx, req.Caller.AccountID, id)
	if err != nil {
		return nil, err
	}
	resp := &describeSnapshotAttributeResponse{SnapshotID: s.ID}
	if attr == "productCodes" {
		resp.ProductCodes = &setOf[productCodeItem]{}
		return resp, nil
	}
	perms := &setOf[createVolumePermissionItem]{}
	if s.Public {
		perms.Items = append(perms.Items, createVolumePermissionItem{Group: "all"})
	}
	for _, who := range s.Permissions {
		perms.Items = append(perms.Items, createVolumePermissionItem{UserID: who})
	}
	resp.CreateVolumePermission = perms
	return resp, nil
}

// volumePermissionChanges adds a list of createVolumePermission entries to
// u: userIds to Add or Remove, the group all to Public.
func volumePermissionChanges(perms []queryapi.Params, userIDs, groups []string, add bool, u *store.SnapshotPermissionUpdate) error {
	for _, m := range perms {
		if v, ok := m["UserId"]; ok {
			userIDs = append(userIDs, v)
		}
		if v, ok := m["Group"]; ok {
			groups = append(groups, v)
		}
	}
	for _, g := range groups {
		if g != "all" {
			return awserr.InvalidParameterValue("Value (%s) for parameter group is invalid. Valid values: all.", g)
		}
		pub := add
		u.Public = &pub
	}
	for _, id := range userIDs {
		if !accountIDPattern.MatchString(id) {
			return awserr.New("InvalidUserID.Malformed", "User ID '%s' is invalid", id)
		}
	}
	if add {
		u.Add = append(u.Add, userIDs...)
	} else {
		u.Remove = append(u.Remove, userIDs...)
	}
	return nil
}

func (a *api) modifySnapshotAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	id, err := snapshotIDParam(p, "SnapshotId")
	if err != nil {
		return nil, err
	}
	switch attr := p.String("Attribute"); attr {
	case "", "createVolumePermission":
	case "productCodes":
		return nil, awserr.InvalidParameterValue("Product codes cannot be added to snapshots here.")
	default:
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter attribute is invalid. Valid values: productCodes, createVolumePermission.", attr)
	}
	var u store.SnapshotPermissionUpdate
	changed, err := permissionChanges(p, "CreateVolumePermission", func(perms []queryapi.Params, users, groups []string, add bool) error {
		return volumePermissionChanges(perms, users, groups, add, &u)
	})
	if err != nil {
		return nil, err
	}
	if !changed {
		return nil, awserr.MissingParameter("CreateVolumePermission or OperationType")
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if err := a.cloud.ModifySnapshotPermissions(ctx, req.Caller.AccountID, id, u); err != nil {
		return nil, err
	}
	return ok()
}

func (a *api) resetSnapshotAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	attr, err := snapshotAttribute(p)
	if err != nil {
		return nil, err
	}
	id, err := snapshotIDParam(p, "SnapshotId")
	if err != nil {
		return nil, err
	}
	if attr != "createVolumePermission" {
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter attribute is invalid. Only createVolumePermission can be reset.", attr)
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if err := a.cloud.ModifySnapshotPermissions(ctx, req.Caller.AccountID, id, store.SnapshotPermissionUpdate{Reset: true}); err != nil {
		return nil, err
	}
	return ok()
}
