package ec2api

import (
	"context"
	"math"
	"regexp"
	"strconv"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// EBS volumes: CreateVolume, DeleteVolume, DescribeVolumes,
// DescribeVolumeStatus, DescribeVolumeAttribute, AttachVolume,
// DetachVolume, ModifyVolume and DescribeVolumesModifications. Parameters
// are checked here (formats, ranges, what AWS refuses outright); whether a
// volume, instance or snapshot exists and may be used is the cloud
// controller's answer, as are the states.

// VolumeService is the cloud controller's side of the volume actions.
type VolumeService interface {
	// CreateVolume records a volume and has the zone's storage controller
	// make it (state creating); a retried client token returns the first.
	CreateVolume(ctx context.Context, accountID string, spec store.VolumeSpec) (store.Volume, error)
	// DeleteVolume deletes a volume (VolumeInUse while attached).
	DeleteVolume(ctx context.Context, accountID, volumeID string) error
	// DescribeVolumes lists the account's volumes, or exactly those named.
	DescribeVolumes(ctx context.Context, accountID string, volumeIDs []string) ([]store.Volume, error)
	// AttachVolume starts attaching a volume to an instance on device.
	AttachVolume(ctx context.Context, accountID, volumeID, instanceID, device string) (store.VolumeAttachment, error)
	// DetachVolume starts detaching a volume; instanceID and device, when
	// not "", must name its attachment.
	DetachVolume(ctx context.Context, accountID, volumeID, instanceID, device string, force bool) (store.VolumeAttachment, error)
	// ModifyVolume grows a volume or changes its type, IOPS, throughput.
	ModifyVolume(ctx context.Context, accountID, volumeID string, target store.VolumeModification) (store.Volume, error)
}

// volumeTypes are EC2's volume types.
var volumeTypes = []string{"standard", "io1", "io2", "gp2", "sc1", "st1", "gp3"}

// ebsDevice are the device names EC2 accepts for an EBS volume on a Linux
// instance: /dev/sd[a-z] (with a partition number 1-15, as the root's
// sda1), /dev/xvd[a-z] and /dev/xvd[a-z][a-z], /dev/hd[a-z]; the same
// without /dev/ (xvdf, as Windows instances name them). The cloud
// controller checks the same names (clc.ValidDevice).
var ebsDevice = regexp.MustCompile(`^(?:/dev/)?(?:sd[a-z](?:[1-9]|1[0-5])?|xvd[a-z]{1,2}|hd[a-z])$`)

func validDevice(name string) bool { return ebsDevice.MatchString(name) }

// ---- shapes

// volumeAttachmentItem is botocore's VolumeAttachment shape.
type volumeAttachmentItem struct {
	VolumeID            string `xml:"volumeId"`
	InstanceID          string `xml:"instanceId"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

// volumeItem is botocore's Volume shape.
type volumeItem struct {
	VolumeID           string                      `xml:"volumeId"`
	Size               int                         `xml:"size"`
	SnapshotID         string                      `xml:"snapshotId"`
	AvailabilityZone   string                      `xml:"availabilityZone"`
	AvailabilityZoneID string                      `xml:"availabilityZoneId,omitempty"`
	Status             string                      `xml:"status"`
	CreateTime         string                      `xml:"createTime"`
	Attachments        setOf[volumeAttachmentItem] `xml:"attachmentSet"`
	Tags               *setOf[tagItem]             `xml:"tagSet,omitempty"`
	VolumeType         string                      `xml:"volumeType"`
	Iops               int                         `xml:"iops,omitempty"`
	Throughput         int                         `xml:"throughput,omitempty"`
	Encrypted          bool                        `xml:"encrypted"`
	MultiAttachEnabled bool                        `xml:"multiAttachEnabled"`
	tags               []store.Tag
}

func attachmentView(a store.VolumeAttachment) volumeAttachmentItem {
	return volumeAttachmentItem{VolumeID: a.VolumeID, InstanceID: a.InstanceID, Device: a.Device, Status: a.State,
		AttachTime: ec2Time(a.AttachMS), DeleteOnTermination: a.DeleteOnTermination}
}

func (a *api) volumeView(v store.Volume) volumeItem {
	it := volumeItem{VolumeID: v.ID, Size: v.SizeGiB, SnapshotID: v.SnapshotID, AvailabilityZone: v.Zone,
		AvailabilityZoneID: a.cloud.ZoneID(v.Zone), Status: v.EC2State(), CreateTime: ec2Time(v.CreatedMS),
		VolumeType: v.Type, Iops: volumeIops(v.Type, v.SizeGiB, v.Iops), Throughput: volumeThroughput(v.Type, v.Throughput), tags: v.Tags}
	if len(v.Tags) > 0 {
		ts := tagSetOf(v.Tags)
		it.Tags = &ts
	}
	if v.Attachment != nil {
		it.Attachments.Items = []volumeAttachmentItem{attachmentView(*v.Attachment)}
	}
	return it
}

// volumeIops is the IOPS EC2 reports for a volume: 3 per GiB for gp2 (100
// to 16000), 3000 by default for gp3, as given for io1 and io2.
func volumeIops(typ string, size, iops int) int {
	switch typ {
	case "gp2":
		return min(max(3*size, 100), 16000)
	case "gp3":
		if iops == 0 {
			return 3000
		}
	}
	return iops
}

// volumeThroughput is a gp3 volume's throughput in MiB/s (125 by default).
func volumeThroughput(typ string, throughput int) int {
	if typ != "gp3" {
		return 0
	}
	if throughput == 0 {
		return 125
	}
	return throughput
}

// ---- CreateVolume

type createVolumeResponse struct {
	Response
	volumeItem
}

// intParam reads an optional integer parameter within [lo, hi].
func intParam(p queryapi.Params, name string, lo, hi int64) (int, bool, error) {
	n, set, err := p.Int(name)
	if err != nil || !set {
		return 0, set, err
	}
	if n < lo || n > hi {
		return 0, true, awserr.InvalidParameterValue("Value (%d) for parameter %s is invalid. It must be between %d and %d.", n, name, lo, hi)
	}
	return int(n), true, nil
}

// volumeTypeParam is VolumeType, checked against EC2's types ("" when not
// given).
func volumeTypeParam(p queryapi.Params) (string, error) {
	t := p.String("VolumeType")
	if t == "" {
		return "", nil
	}
	for _, v := range volumeTypes {
		if v == t {
			return t, nil
		}
	}
	return "", awserr.InvalidParameterValue("Value (%s) for parameter volumeType is invalid. Valid values: standard, io1, io2, gp2, sc1, st1, gp3.", t)
}

// performanceParams are Iops and Throughput, accepted where EC2 accepts
// them (Iops for io1, io2 and gp3, required for io1 and io2; Throughput
// for gp3), within EC2's ranges.
func performanceParams(p queryapi.Params, typ string) (iops, throughput int, err error) {
	iopsRange := map[string][2]int64{"io1": {100, 64000}, "io2": {100, 256000}, "gp3": {3000, 80000}}
	r, iopsOK := iopsRange[typ]
	if !iopsOK {
		r = [2]int64{0, math.MaxInt32}
	}
	iops, iopsSet, err := intParam(p, "Iops", r[0], r[1])
	if err != nil {
		return 0, 0, err
	}
	switch {
	case iopsSet && !iopsOK:
		return 0, 0, awserr.New("InvalidParameterCombination", "The parameter iops is not supported for %s volumes.", typ)
	case !iopsSet && (typ == "io1" || typ == "io2"):
		return 0, 0, awserr.MissingParameter("iops")
	}
	throughput, tputSet, err := intParam(p, "Throughput", 125, 2000)
	if err != nil {
		return 0, 0, err
	}
	if tputSet && typ != "gp3" {
		return 0, 0, awserr.New("InvalidParameterCombination", "The parameter throughput is not supported for %s volumes.", typ)
	}
	return iops, throughput, nil
}

// refuseEncryption refuses what this cloud does not do to volumes:
// encryption with a KMS key, multi-attach, Outposts.
func refuseUnsupported(p queryapi.Params) error {
	enc, err := p.Bool("Encrypted")
	if err != nil {
		return err
	}
	if enc || p.String("KmsKeyId") != "" {
		return awserr.New("InvalidParameterValue", "Encrypted volumes are not supported by this cloud.")
	}
	multi, err := p.Bool("MultiAttachEnabled")
	if err != nil {
		return err
	}
	if multi {
		return awserr.New("InvalidParameterCombination", "Multi-Attach is not supported by this cloud.")
	}
	if p.String("OutpostArn") != "" {
		return awserr.InvalidParameterValue("The Outpost ARN '%s' is not valid: this cloud has no Outposts.", p.String("OutpostArn"))
	}
	return nil
}

func (a *api) createVolume(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	zone := p.String("AvailabilityZone")
	if id := p.String("AvailabilityZoneId"); id != "" && zone == "" {
		for _, z := range a.cloud.Zones() {
			if a.cloud.ZoneID(z) == id {
				zone = z
			}
		}
		if zone == "" {
			return nil, awserr.InvalidParameterValue("Invalid availability zone ID: [%s]", id)
		}
	}
	if zone == "" {
		return nil, awserr.MissingParameter("AvailabilityZone")
	}
	size, sizeSet, err := intParam(p, "Size", 1, 65536)
	if err != nil {
		return nil, err
	}
	snap := p.String("SnapshotId")
	if snap != "" && !snapshotIDPattern.MatchString(snap) {
		return nil, awserr.New("InvalidSnapshotID.Malformed", "Invalid id: \"%s\" (expecting \"snap-...\")", snap)
	}
	if !sizeSet && snap == "" {
		return nil, awserr.MissingParameter("size or snapshotId")
	}
	typ, err := volumeTypeParam(p)
	if err != nil {
		return nil, err
	}
	effType := typ
	if effType == "" {
		effType = "gp2"
	}
	iops, throughput, err := performanceParams(p, effType)
	if err != nil {
		return nil, err
	}
	if err := refuseUnsupported(p); err != nil {
		return nil, err
	}
	if _, _, err := intParam(p, "VolumeInitializationRate", 100, 300); err != nil {
		return nil, err
	}
	tags, err := tagsFor(p.TagSpecifications(), store.TypeVolume)
	if err != nil {
		return nil, err
	}
	if len(p.String("ClientToken")) > 64 {
		return nil, awserr.New("InvalidParameterValue", "The client token must be at most 64 characters.")
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	v, err := a.cloud.CreateVolume(ctx, req.Caller.AccountID, store.VolumeSpec{Zone: zone, SizeGiB: size, SnapshotID: snap,
		Type: typ, Iops: iops, Throughput: throughput, ClientToken: p.String("ClientToken"), Tags: tags})
	if err != nil {
		return nil, err
	}
	return &createVolumeResponse{volumeItem: a.volumeView(v)}, nil
}

// ---- DeleteVolume

// volumeIDParam is a required VolumeId, well formed.
func volumeIDParam(p queryapi.Params) (string, error) {
	id, err := p.Required("VolumeId")
	if err != nil {
		return "", err
	}
	return id, checkVolumeIDs([]string{id})
}

func checkVolumeIDs(ids []string) error {
	for _, id := range ids {
		if !volumeIDPattern.MatchString(id) {
			return awserr.New("InvalidVolumeID.Malformed", "Invalid id: \"%s\" (expecting \"vol-...\")", id)
		}
	}
	return nil
}

func (a *api) deleteVolume(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	id, err := volumeIDParam(p)
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if err := a.cloud.DeleteVolume(ctx, req.Caller.AccountID, id); err != nil {
		return nil, err
	}
	return ok()
}

// ---- DescribeVolumes

type describeVolumesResponse struct {
	Response
	Volumes   setOf[volumeItem] `xml:"volumeSet"`
	NextToken string            `xml:"nextToken,omitempty"`
}

func volumeField(f func(volumeItem) string) func(volumeItem) []string {
	return func(it volumeItem) []string { return optValue(f(it)) }
}

func volumeAttachmentField(f func(volumeAttachmentItem) string) func(volumeItem) []string {
	return func(it volumeItem) []string {
		var out []string
		for _, a := range it.Attachments.Items {
			out = append(out, optValue(f(a))...)
		}
		return out
	}
}

// volumeFilters are DescribeVolumes' filters as AWS documents them.
var volumeFilters = filterFields[volumeItem]{
	"attachment.attach-time": volumeAttachmentField(func(a volumeAttachmentItem) string { return a.AttachTime }),
	"attachment.delete-on-termination": volumeAttachmentField(func(a volumeAttachmentItem) string {
		return boolString(a.DeleteOnTermination)
	}),
	"attachment.device":      volumeAttachmentField(func(a volumeAttachmentItem) string { return a.Device }),
	"attachment.instance-id": volumeAttachmentField(func(a volumeAttachmentItem) string { return a.InstanceID }),
	"attachment.status":      volumeAttachmentField(func(a volumeAttachmentItem) string { return a.Status }),
	"availability-zone":      volumeField(func(it volumeItem) string { return it.AvailabilityZone }),
	"availability-zone-id":   volumeField(func(it volumeItem) string { return it.AvailabilityZoneID }),
	"create-time":            volumeField(func(it volumeItem) string { return it.CreateTime }),
	"encrypted":              volumeField(func(it volumeItem) string { return boolString(it.Encrypted) }),
	"fast-restored":          volumeField(func(volumeItem) string { return "false" }),
	"multi-attach-enabled":   volumeField(func(it volumeItem) string { return boolString(it.MultiAttachEnabled) }),
	"operator.managed":       volumeField(func(volumeItem) string { return "false" }),
	"operator.principal":     volumeField(func(volumeItem) string { return "" }),
	"size":                   volumeField(func(it volumeItem) string { return strconv.Itoa(it.Size) }),
	"snapshot-id":            volumeField(func(it volumeItem) string { return it.SnapshotID }),
	"status":                 volumeField(func(it volumeItem) string { return it.Status }),
	"volume-id":              volumeField(func(it volumeItem) string { return it.VolumeID }),
	"volume-type":            volumeField(func(it volumeItem) string { return it.VolumeType }),
}

// describedVolumes is the volumes a Describe call names, checked.
func describedVolumes(p queryapi.Params) ([]string, error) {
	if _, err := p.Bool("IncludeManagedResources"); err != nil {
		return nil, err
	}
	ids := p.List("VolumeId")
	return ids, checkVolumeIDs(ids)
}

func (a *api) describeVolumes(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	var ids []string
	page, next, err := describe(p, describeCall[volumeItem]{
		fields: volumeFilters, tags: func(it volumeItem) []store.Tag { return it.tags }, filterNamesFirst: true,
		check: func() (err error) { ids, err = describedVolumes(p); return err },
		fetch: func() ([]volumeItem, error) {
			return viewsOf(a.volumeView)(a.cloud.DescribeVolumes(ctx, req.Caller.AccountID, ids))
		},
		// EC2 returns at most 500 volumes a page but takes any larger
		// MaxResults (the AWS CLI sends 1000).
		minResults: 5, maxResults: math.MaxInt32,
	})
	if err != nil {
		return nil, err
	}
	return &describeVolumesResponse{Volumes: setOf[volumeItem]{page}, NextToken: next}, nil
}

// ---- DescribeVolumeStatus

type volumeStatusDetail struct {
	Name   string `xml:"name"`
	Status string `xml:"status"`
}

type volumeStatusInfo struct {
	Details setOf[volumeStatusDetail] `xml:"details"`
	Status  string                    `xml:"status"`
}

type volumeStatusAttachment struct {
	InstanceID    string `xml:"instanceId"`
	IoPerformance string `xml:"ioPerformance"`
}

type volumeStatusItem struct {
	VolumeID           string                        `xml:"volumeId"`
	AvailabilityZone   string                        `xml:"availabilityZone"`
	AvailabilityZoneID string                        `xml:"availabilityZoneId,omitempty"`
	VolumeStatus       volumeStatusInfo              `xml:"volumeStatus"`
	Events             setOf[struct{}]               `xml:"eventsSet"`
	Actions            setOf[struct{}]               `xml:"actionsSet"`
	AttachmentStatuses setOf[volumeStatusAttachment] `xml:"attachmentStatuses"`
}

type describeVolumeStatusResponse struct {
	Response
	VolumeStatuses setOf[volumeStatusItem] `xml:"volumeStatusSet"`
	NextToken      string                  `xml:"nextToken,omitempty"`
}

func volumeStatusField(f func(volumeStatusItem) []string) func(volumeStatusItem) []string { return f }

// volumeStatusFilters are DescribeVolumeStatus' filters. No volume here
// has events or actions: those filters match nothing.
var volumeStatusFilters = filterFields[volumeStatusItem]{
	"action.code":        volumeStatusField(func(volumeStatusItem) []string { return nil }),
	"action.description": volumeStatusField(func(volumeStatusItem) []string { return nil }),
	"action.event-id":    volumeStatusField(func(volumeStatusItem) []string { return nil }),
	"availability-zone":  volumeStatusField(func(it volumeStatusItem) []string { return optValue(it.AvailabilityZone) }),
	"event.description":  volumeStatusField(func(volumeStatusItem) []string { return nil }),
	"event.event-id":     volumeStatusField(func(volumeStatusItem) []string { return nil }),
	"event.event-type":   volumeStatusField(func(volumeStatusItem) []string { return nil }),
	"event.not-after":    volumeStatusField(func(volumeStatusItem) []string { return nil }),
	"event.not-before":   volumeStatusField(func(volumeStatusItem) []string { return nil }),
	"volume-status.details-name": volumeStatusField(func(it volumeStatusItem) []string {
		var out []string
		for _, d := range it.VolumeStatus.Details.Items {
			out = append(out, d.Name)
		}
		return out
	}),
	"volume-status.details-status": volumeStatusField(func(it volumeStatusItem) []string {
		var out []string
		for _, d := range it.VolumeStatus.Details.Items {
			out = append(out, d.Status)
		}
		return out
	}),
	"volume-status.status": volumeStatusField(func(it volumeStatusItem) []string { return optValue(it.VolumeStatus.Status) }),
}

// volumeStatusView is a volume's status: ok once it exists (its storage
// controller serves it), impaired when making it failed, and
// insufficient-data while it is being made or deleted.
func (a *api) volumeStatusView(v store.Volume) volumeStatusItem {
	it := volumeStatusItem{VolumeID: v.ID, AvailabilityZone: v.Zone, AvailabilityZoneID: a.cloud.ZoneID(v.Zone)}
	status, detail := "ok", "passed"
	switch v.State {
	case store.VolumeError:
		status, detail = "impaired", "failed"
	case store.VolumeCreating, store.VolumeDeleting:
		status, detail = "insufficient-data", "insufficient-data"
	}
	it.VolumeStatus = volumeStatusInfo{Status: status, Details: setOf[volumeStatusDetail]{[]volumeStatusDetail{
		{Name: "io-enabled", Status: detail}, {Name: "io-performance", Status: "not-applicable"}}}}
	if v.Attachment != nil {
		it.AttachmentStatuses.Items = []volumeStatusAttachment{{InstanceID: v.Attachment.InstanceID}}
	}
	return it
}

func (a *api) describeVolumeStatus(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	var ids []string
	page, next, err := describe(p, describeCall[volumeStatusItem]{
		fields: volumeStatusFilters, filterNamesFirst: true,
		check: func() (err error) { ids, err = describedVolumes(p); return err },
		fetch: func() ([]volumeStatusItem, error) {
			return viewsOf(a.volumeStatusView)(a.cloud.DescribeVolumes(ctx, req.Caller.AccountID, ids))
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeVolumeStatusResponse{VolumeStatuses: setOf[volumeStatusItem]{page}, NextToken: next}, nil
}

// ---- DescribeVolumeAttribute

type attributeBool struct {
	Value bool `xml:"value"`
}

type describeVolumeAttributeResponse struct {
	Response
	VolumeID     string                  `xml:"volumeId"`
	AutoEnableIO *attributeBool          `xml:"autoEnableIO"`
	ProductCodes *setOf[productCodeItem] `xml:"productCodes"`
}

func (a *api) describeVolumeAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	id, err := volumeIDParam(p)
	if err != nil {
		return nil, err
	}
	attr, err := p.Required("Attribute")
	if err != nil {
		return nil, err
	}
	resp := &describeVolumeAttributeResponse{VolumeID: id}
	switch attr {
	case "autoEnableIO":
		// I/O is never suspended on this cloud's volumes.
		resp.AutoEnableIO = &attributeBool{}
	case "productCodes":
		resp.ProductCodes = &setOf[productCodeItem]{}
	default:
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter attribute is invalid. Valid values: autoEnableIO, productCodes.", attr)
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if _, err := a.cloud.DescribeVolumes(ctx, req.Caller.AccountID, []string{id}); err != nil {
		return nil, err
	}
	return resp, nil
}

// ---- AttachVolume and DetachVolume

type volumeAttachmentResponse struct {
	Response
	volumeAttachmentItem
}

func (a *api) attachVolume(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	device, err := p.Required("Device")
	if err != nil {
		return nil, err
	}
	instanceID, err := p.Required("InstanceId")
	if err != nil {
		return nil, err
	}
	volumeID, err := volumeIDParam(p)
	if err != nil {
		return nil, err
	}
	if !instanceIDPattern.MatchString(instanceID) {
		return nil, awserr.New("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", instanceID)
	}
	if _, set, err := p.Int("EbsCardIndex"); err != nil || (set && p.String("EbsCardIndex") != "0") {
		if err != nil {
			return nil, err
		}
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter EbsCardIndex is invalid: instances here have one EBS card.", p.String("EbsCardIndex"))
	}
	if !validDevice(device) {
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter device is invalid. %s is not a valid EBS device name.", device, device)
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	att, err := a.cloud.AttachVolume(ctx, req.Caller.AccountID, volumeID, instanceID, device)
	if err != nil {
		return nil, err
	}
	return &volumeAttachmentResponse{volumeAttachmentItem: attachmentView(att)}, nil
}

func (a *api) detachVolume(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	volumeID, err := volumeIDParam(p)
	if err != nil {
		return nil, err
	}
	instanceID := p.String("InstanceId")
	if instanceID != "" && !instanceIDPattern.MatchString(instanceID) {
		return nil, awserr.New("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", instanceID)
	}
	force, err := p.Bool("Force")
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	att, err := a.cloud.DetachVolume(ctx, req.Caller.AccountID, volumeID, instanceID, p.String("Device"), force)
	if err != nil {
		return nil, err
	}
	return &volumeAttachmentResponse{volumeAttachmentItem: attachmentView(att)}, nil
}

// ---- ModifyVolume and DescribeVolumesModifications

// volumeModificationItem is botocore's VolumeModification shape.
type volumeModificationItem struct {
	VolumeID                   string `xml:"volumeId"`
	ModificationState          string `xml:"modificationState"`
	StatusMessage              string `xml:"statusMessage,omitempty"`
	TargetSize                 int    `xml:"targetSize"`
	TargetIops                 int    `xml:"targetIops,omitempty"`
	TargetVolumeType           string `xml:"targetVolumeType"`
	TargetThroughput           int    `xml:"targetThroughput,omitempty"`
	TargetMultiAttachEnabled   bool   `xml:"targetMultiAttachEnabled"`
	OriginalSize               int    `xml:"originalSize"`
	OriginalIops               int    `xml:"originalIops,omitempty"`
	OriginalVolumeType         string `xml:"originalVolumeType"`
	OriginalThroughput         int    `xml:"originalThroughput,omitempty"`
	OriginalMultiAttachEnabled bool   `xml:"originalMultiAttachEnabled"`
	Progress                   int    `xml:"progress"`
	StartTime                  string `xml:"startTime"`
	EndTime                    string `xml:"endTime,omitempty"`
}

func modificationView(v store.Volume) volumeModificationItem {
	m := v.Mod
	it := volumeModificationItem{VolumeID: v.ID, ModificationState: m.State, StatusMessage: m.Message,
		TargetSize: m.TargetSize, TargetIops: volumeIops(m.TargetType, m.TargetSize, m.TargetIops), TargetVolumeType: m.TargetType,
		TargetThroughput: volumeThroughput(m.TargetType, m.TargetThroughput),
		OriginalSize:     m.OrigSize, OriginalIops: volumeIops(m.OrigType, m.OrigSize, m.OrigIops), OriginalVolumeType: m.OrigType,
		OriginalThroughput: volumeThroughput(m.OrigType, m.OrigThroughput), StartTime: ec2Time(m.StartMS)}
	switch m.State {
	case "completed":
		it.Progress = 100
	case "failed":
		it.Progress = 0
	}
	if m.EndMS != 0 {
		it.EndTime = ec2Time(m.EndMS)
	}
	return it
}

type modifyVolumeResponse struct {
	Response
	VolumeModification volumeModificationItem `xml:"volumeModification"`
}

func (a *api) modifyVolume(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	id, err := volumeIDParam(p)
	if err != nil {
		return nil, err
	}
	size, _, err := intParam(p, "Size", 1, 65536)
	if err != nil {
		return nil, err
	}
	typ, err := volumeTypeParam(p)
	if err != nil {
		return nil, err
	}
	iops, _, err := intParam(p, "Iops", 100, 256000)
	if err != nil {
		return nil, err
	}
	throughput, _, err := intParam(p, "Throughput", 125, 2000)
	if err != nil {
		return nil, err
	}
	if multi, err := p.Bool("MultiAttachEnabled"); err != nil || multi {
		if err != nil {
			return nil, err
		}
		return nil, awserr.New("InvalidParameterCombination", "Multi-Attach is not supported by this cloud.")
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	v, err := a.cloud.ModifyVolume(ctx, req.Caller.AccountID, id, store.VolumeModification{TargetSize: size, TargetType: typ,
		TargetIops: iops, TargetThroughput: throughput})
	if err != nil {
		return nil, err
	}
	return &modifyVolumeResponse{VolumeModification: modificationView(v)}, nil
}

type describeVolumesModificationsResponse struct {
	Response
	Modifications setOf[volumeModificationItem] `xml:"volumeModificationSet"`
	NextToken     string                        `xml:"nextToken,omitempty"`
}

func modField(f func(volumeModificationItem) string) func(volumeModificationItem) []string {
	return func(it volumeModificationItem) []string { return optValue(f(it)) }
}

// modificationFilters are DescribeVolumesModifications' filters.
var modificationFilters = filterFields[volumeModificationItem]{
	"modification-state":   modField(func(it volumeModificationItem) string { return it.ModificationState }),
	"original-iops":        modField(func(it volumeModificationItem) string { return itoaOpt(it.OriginalIops) }),
	"original-size":        modField(func(it volumeModificationItem) string { return strconv.Itoa(it.OriginalSize) }),
	"original-volume-type": modField(func(it volumeModificationItem) string { return it.OriginalVolumeType }),
	"originalMultiAttachEnabled": modField(func(it volumeModificationItem) string {
		return boolString(it.OriginalMultiAttachEnabled)
	}),
	"start-time":         modField(func(it volumeModificationItem) string { return it.StartTime }),
	"target-iops":        modField(func(it volumeModificationItem) string { return itoaOpt(it.TargetIops) }),
	"target-size":        modField(func(it volumeModificationItem) string { return strconv.Itoa(it.TargetSize) }),
	"target-volume-type": modField(func(it volumeModificationItem) string { return it.TargetVolumeType }),
	"targetMultiAttachEnabled": modField(func(it volumeModificationItem) string {
		return boolString(it.TargetMultiAttachEnabled)
	}),
	"volume-id": modField(func(it volumeModificationItem) string { return it.VolumeID }),
}

func itoaOpt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func (a *api) describeVolumesModifications(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	var ids []string
	page, next, err := describe(p, describeCall[volumeModificationItem]{
		fields: modificationFilters, filterNamesFirst: true,
		check: func() (err error) { ids, err = describedVolumes(p); return err },
		fetch: func() ([]volumeModificationItem, error) {
			vols, err := a.cloud.DescribeVolumes(ctx, req.Caller.AccountID, ids)
			if err != nil {
				return nil, err
			}
			var out []volumeModificationItem
			for _, v := range vols {
				if v.Mod.State == "" {
					if len(ids) > 0 {
						return nil, awserr.New("InvalidVolumeModification.NotFound", "Modification for volume '%s' does not exist.", v.ID)
					}
					continue
				}
				out = append(out, modificationView(v))
			}
			return out, nil
		},
		minResults: 5, maxResults: 500,
	})
	if err != nil {
		return nil, err
	}
	return &describeVolumesModificationsResponse{Modifications: setOf[volumeModificationItem]{page}, NextToken: next}, nil
}
