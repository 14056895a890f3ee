package ec2api

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// Images: RegisterImage, CreateImage, DeregisterImage, DescribeImages,
// DescribeImageAttribute, ModifyImageAttribute, ResetImageAttribute.
// Images are instance-store images registered from bundles in Walrus
// (emi-, eki-, eri-), their root device named by the manifest, or
// EBS-backed machine images (RegisterImage without ImageLocation, or
// CreateImage of an EBS-backed instance), their root a volume made from a
// snapshot at each launch: paravirtual (the guest boots the image's kernel
// and ramdisk), Linux/UNIX.

// ImageService is the cloud controller's side of the image actions.
type ImageService interface {
	// RegisterImage registers the bundle whose manifest is at req.Location;
	// req carries the request's Name, Description, Architecture, KernelID,
	// RamdiskID, RootDeviceName, BlockDevices (a mapping with no Virtual
	// name removes the manifest's device) and Tags.
	RegisterImage(ctx context.Context, accountID string, req store.Image) (store.Image, error)
	// DeregisterImage removes an image of the account's.
	DeregisterImage(ctx context.Context, accountID, imageID string) error
	// DescribeImages lists the images the account may see, narrowed by
	// ids (each must exist), owners and executable-by.
	DescribeImages(ctx context.Context, accountID string, imageIDs, owners, executableBy []string) ([]store.Image, error)
	// DescribeImage returns one image the account may see; with ownerOnly,
	// only one it owns.
	DescribeImage(ctx context.Context, accountID, imageID string, ownerOnly bool) (store.Image, error)
	// ModifyImage changes an image the account owns.
	ModifyImage(ctx context.Context, accountID, imageID string, u store.ImageUpdate) error
	// CreateImage makes an EBS-backed image of an EBS-backed instance.
	CreateImage(ctx context.Context, accountID string, spec store.CreateImageSpec) (store.Image, error)
}

// What every image here is.
const (
	imageVirtualizationType = "paravirtual"
	imageHypervisor         = "xen"
	imagePlatformDetails    = "Linux/UNIX"
	imageUsageOperation     = "RunInstances"
	imageTimeFormat         = "2006-01-02T15:04:05.000Z"
)

// ---- RegisterImage

type registerImageResponse struct {
	Response
	ImageID string `xml:"imageId"`
}

// ephemeralName is a virtual device name of an instance-store mapping.
var ephemeralName = regexp.MustCompile(`^(ephemeral[0-9]+|swap)$`)

func (a *api) registerImage(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	// Without a manifest, the image is EBS-backed: its root device is a
	// volume made from a snapshot (BlockDeviceMapping, RootDeviceName).
	loc := p.String("ImageLocation")
	if loc == "" && !hasPrefixed(p, "BlockDeviceMapping") {
		return nil, awserr.MissingParameter("ImageLocation")
	}
	if loc == "" && p.String("Name") == "" {
		return nil, awserr.MissingParameter("Name")
	}
	switch vt := p.String("VirtualizationType"); vt {
	case "", imageVirtualizationType:
	case "hvm":
		return nil, awserr.InvalidParameterValue("Value (hvm) for parameter VirtualizationType is invalid. Images registered from bundles boot their kernel and ramdisk: paravirtual.")
	default:
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter VirtualizationType is invalid. Valid values: paravirtual.", vt)
	}
	if ena, err := p.Bool("EnaSupport"); err != nil {
		return nil, err
	} else if ena {
		return nil, awserr.InvalidParameterValue("ENA is not supported: instances have virtio network interfaces.")
	}
	for _, name := range []string{"SriovNetSupport", "BootMode", "TpmSupport", "UefiData", "ImdsSupport"} {
		if v := p.String(name); v != "" {
			return nil, awserr.InvalidParameterValue("Value (%s) for parameter %s is not supported for instance-store images.", v, name)
		}
	}
	if len(p.List("BillingProduct")) > 0 {
		return nil, awserr.InvalidParameterValue("Billing products are not supported.")
	}
	bdm, err := decodeBlockDevices(p, loc == "")
	if err != nil {
		return nil, err
	}
	tags, err := tagsFor(p.TagSpecifications(), store.TypeImage)
	if err != nil {
		return nil, err
	}
	im, err := a.cloud.RegisterImage(ctx, req.Caller.AccountID, store.Image{
		Location: loc, Name: p.String("Name"), Description: p.String("Description"), Architecture: p.String("Architecture"),
		KernelID: p.String("KernelId"), RamdiskID: p.String("RamdiskId"), RootDeviceName: p.String("RootDeviceName"),
		BlockDevices: bdm, Tags: tags,
	})
	if err != nil {
		return nil, err
	}
	return &registerImageResponse{ImageID: im.ID}, nil
}

// imageSnapshotID is the form of a mapping's snapshot id.
var imageSnapshotID = idPattern("snap")

// decodeBlockDevices reads BlockDeviceMapping.N (RegisterImage,
// RunInstances, CreateImage): a device with VirtualName ephemeralN or
// swap, an EBS volume (Ebs.SnapshotId, Ebs.VolumeSize,
// Ebs.DeleteOnTermination, default true, Ebs.VolumeType), or NoDevice (a
// mapping with neither a virtual name nor EBS: the image's device of that
// name is dropped). ebs false refuses EBS mappings (images registered from
// bundles are instance-store). Device names are the cloud controller's to
// check.
func decodeBlockDevices(p queryapi.Params, ebs bool) ([]store.ImageBlockDevice, error) {
	members := p.Members("BlockDeviceMapping")
	if len(members) == 0 {
		return nil, nil
	}
	out := []store.ImageBlockDevice{}
	for _, m := range members {
		dev := m["DeviceName"]
		if dev == "" {
			return nil, awserr.MissingParameter("BlockDeviceMapping.DeviceName")
		}
		hasEBS := hasPrefixed(m, "Ebs")
		if hasEBS && !ebs {
			return nil, awserr.New("InvalidBlockDeviceMapping", "EBS block devices are not supported by instance-store images (device %s).", dev)
		}
		_, noDevice := m["NoDevice"]
		virtual := m["VirtualName"]
		switch {
		case noDevice && (virtual != "" || hasEBS):
			return nil, awserr.New("InvalidBlockDeviceMapping", "Device %s has NoDevice and a virtual name or an EBS volume.", dev)
		case noDevice:
			out = append(out, store.ImageBlockDevice{Device: dev})
		case hasEBS && virtual != "":
			return nil, awserr.New("InvalidBlockDeviceMapping", "Device %s has both a virtual name and an EBS volume.", dev)
		case hasEBS:
			b, err := decodeEBSDevice(m, dev)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		case !ephemeralName.MatchString(virtual):
			return nil, awserr.New("InvalidBlockDeviceMapping", "Device %s: VirtualName %q is not ephemeralN or swap.", dev, virtual)
		default:
			out = append(out, store.ImageBlockDevice{Virtual: virtual, Device: dev})
		}
	}
	return out, nil
}

// decodeEBSDevice reads one mapping's Ebs.* members.
func decodeEBSDevice(m queryapi.Params, dev string) (store.ImageBlockDevice, error) {
	b := store.ImageBlockDevice{Device: dev, EBS: true, DeleteOnTermination: true}
	if snap := m["Ebs.SnapshotId"]; snap != "" {
		if !imageSnapshotID.MatchString(snap) {
			return b, awserr.New("InvalidSnapshotID.Malformed", "Invalid id: \"%s\" (expecting \"snap-...\")", snap)
		}
		b.SnapshotID = snap
	}
	if n, ok, err := m.Int("Ebs.VolumeSize"); err != nil {
		return b, err
	} else if ok {
		if n < 1 || n > 65536 {
			return b, awserr.InvalidParameterValue("Value (%d) for parameter volumeSize of device %s is invalid.", n, dev)
		}
		b.VolumeSize = int(n)
	}
	if m.Has("Ebs.DeleteOnTermination") {
		v, err := m.Bool("Ebs.DeleteOnTermination")
		if err != nil {
			return b, err
		}
		b.DeleteOnTermination = v
	}
	if t := m["Ebs.VolumeType"]; t != "" {
		if !slices.Contains(volumeTypes, t) {
			return b, awserr.InvalidParameterValue("Value (%s) for parameter volumeType is invalid. Valid values: %s.", t, strings.Join(volumeTypes, ", "))
		}
		b.VolumeType = t
	}
	if enc, err := m.Bool("Ebs.Encrypted"); err != nil {
		return b, err
	} else if enc || m["Ebs.KmsKeyId"] != "" {
		return b, awserr.InvalidParameterValue("Encrypted volumes are not supported by this cloud (device %s).", dev)
	}
	for _, n := range []string{"Ebs.Iops", "Ebs.Throughput"} {
		if _, _, err := m.Int(n); err != nil {
			return b, err
		}
	}
	if b.SnapshotID == "" && b.VolumeSize == 0 {
		return b, awserr.New("InvalidBlockDeviceMapping", "The EBS volume of device %s needs a snapshot id or a volume size.", dev)
	}
	return b, nil
}

// ---- CreateImage

type createImageResponse struct {
	Response
	ImageID string `xml:"imageId"`
}

func (a *api) createImage(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	id, err := instanceIDParam(p)
	if err != nil {
		return nil, err
	}
	name, err := p.Required("Name")
	if err != nil {
		return nil, err
	}
	noReboot, err := p.Bool("NoReboot")
	if err != nil {
		return nil, err
	}
	if loc := p.String("SnapshotLocation"); loc != "" && loc != "regional" {
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter SnapshotLocation is invalid. Snapshots are kept in the region.", loc)
	}
	bdm, err := decodeBlockDevices(p, true)
	if err != nil {
		return nil, err
	}
	tags, err := tagsForTypes(p.TagSpecifications(), store.TypeImage, "snapshot")
	if err != nil {
		return nil, err
	}
	im, err := a.cloud.CreateImage(ctx, req.Caller.AccountID, store.CreateImageSpec{InstanceID: id, Name: name,
		Description: p.String("Description"), NoReboot: noReboot, BlockDevices: bdm,
		ImageTags: tags[store.TypeImage], SnapshotTags: tags["snapshot"]})
	if err != nil {
		return nil, err
	}
	return &createImageResponse{ImageID: im.ID}, nil
}

// ---- DeregisterImage

func (a *api) deregisterImage(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	id, err := imageIDParam(p)
	if err != nil {
		return nil, err
	}
	if _, err := p.Bool("DeleteAssociatedSnapshots"); err != nil {
		return nil, err
	}
	if err := a.cloud.DeregisterImage(ctx, req.Caller.AccountID, id); err != nil {
		return nil, err
	}
	return ok()
}

// imageIDParam reads a required, well-formed ImageId.
func imageIDParam(p queryapi.Params) (string, error) {
	id, err := p.Required("ImageId")
	if err != nil {
		return "", err
	}
	if !imageIDPattern.MatchString(id) {
		return "", awserr.New("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", id)
	}
	return id, nil
}

// imageAttributeParams are the Attribute and ImageId of the calls that read
// or reset one attribute of an image, in the order they are checked.
func imageAttributeParams(p queryapi.Params) (attr, id string, err error) {
	if attr, err = p.Required("Attribute"); err != nil {
		return "", "", err
	}
	if id, err = imageIDParam(p); err != nil {
		return "", "", err
	}
	return attr, id, nil
}

// ---- DescribeImages

type productCodeItem struct {
	ProductCode string `xml:"productCode"`
	Type        string `xml:"type"`
}

// ebsBlockDeviceXML is botocore's EbsBlockDevice (of an image's mapping).
type ebsBlockDeviceXML struct {
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	SnapshotID          string `xml:"snapshotId,omitempty"`
	VolumeSize          int    `xml:"volumeSize,omitempty"`
	VolumeType          string `xml:"volumeType,omitempty"`
	Encrypted           bool   `xml:"encrypted"`
}

type blockDeviceItem struct {
	DeviceName  string             `xml:"deviceName"`
	VirtualName string             `xml:"virtualName,omitempty"`
	Ebs         *ebsBlockDeviceXML `xml:"ebs,omitempty"`
}

// imageItem is botocore's Image shape.
type imageItem struct {
	ImageID            string                 `xml:"imageId"`
	ImageLocation      string                 `xml:"imageLocation"`
	ImageState         string                 `xml:"imageState"`
	ImageOwnerID       string                 `xml:"imageOwnerId"`
	CreationDate       string                 `xml:"creationDate"`
	IsPublic           bool                   `xml:"isPublic"`
	ProductCodes       []productCodeItem      `xml:"productCodes>item"`
	Architecture       string                 `xml:"architecture"`
	ImageType          string                 `xml:"imageType"`
	KernelID           string                 `xml:"kernelId,omitempty"`
	RamdiskID          string                 `xml:"ramdiskId,omitempty"`
	Name               string                 `xml:"name"`
	Description        string                 `xml:"description,omitempty"`
	RootDeviceType     string                 `xml:"rootDeviceType"`
	RootDeviceName     string                 `xml:"rootDeviceName,omitempty"`
	BlockDeviceMapping setOf[blockDeviceItem] `xml:"blockDeviceMapping"`
	VirtualizationType string                 `xml:"virtualizationType"`
	Tags               setOf[tagItem]         `xml:"tagSet"`
	Hypervisor         string                 `xml:"hypervisor"`
	PlatformDetails    string                 `xml:"platformDetails"`
	UsageOperation     string                 `xml:"usageOperation"`
	DeregProtection    string                 `xml:"deregistrationProtection"`
}

func imageItemOf(im store.Image) imageItem {
	it := imageItem{
		ImageID: im.ID, ImageLocation: im.Location, ImageState: im.State, ImageOwnerID: im.AccountID,
		CreationDate: store.Time(im.CreatedMS).Format(imageTimeFormat), IsPublic: im.Public,
		Architecture: im.Architecture, ImageType: im.Kind, KernelID: im.KernelID, RamdiskID: im.RamdiskID,
		Name: im.Name, Description: im.Description, RootDeviceType: im.RootDeviceType, RootDeviceName: im.RootDeviceName,
		BlockDeviceMapping: setOf[blockDeviceItem]{blockDeviceItems(im)}, VirtualizationType: imageVirtualizationType,
		Tags: tagSetOf(im.Tags), Hypervisor: imageHypervisor, PlatformDetails: imagePlatformDetails,
		UsageOperation: imageUsageOperation, DeregProtection: "disabled",
	}
	for _, pc := range im.ProductCodes {
		it.ProductCodes = append(it.ProductCodes, productCodeItem{ProductCode: pc, Type: "marketplace"})
	}
	if it.ImageLocation == "" {
		// An EBS-backed image has no manifest: EC2 shows owner/name.
		it.ImageLocation = im.AccountID + "/" + im.Name
	}
	return it
}

func blockDeviceItems(im store.Image) []blockDeviceItem {
	var out []blockDeviceItem
	for _, b := range im.BlockDevices {
		it := blockDeviceItem{DeviceName: b.Device, VirtualName: b.Virtual}
		if b.EBS {
			it.Ebs = &ebsBlockDeviceXML{DeleteOnTermination: b.DeleteOnTermination, SnapshotID: b.SnapshotID,
				VolumeSize: b.VolumeSize, VolumeType: b.VolumeType}
		}
		out = append(out, it)
	}
	return out
}

// ebsField is a filter on a field of an image's EBS mappings.
func ebsField(f func(store.ImageBlockDevice) string) func(store.Image) []string {
	return func(im store.Image) []string {
		var out []string
		for _, b := range im.BlockDevices {
			if b.EBS {
				out = append(out, f(b))
			}
		}
		return out
	}
}

type describeImagesResponse struct {
	Response
	Images    setOf[imageItem] `xml:"imagesSet"`
	NextToken string           `xml:"nextToken,omitempty"`
}

func none(store.Image) []string { return nil }

// imageFilters are DescribeImages' filters: every name of the model, those
// about features images here never have matching nothing.
var imageFilters = filterFields[store.Image]{
	"architecture": func(im store.Image) []string { return optValue(im.Architecture) },
	"block-device-mapping.device-name": func(im store.Image) []string {
		var out []string
		for _, b := range im.BlockDevices {
			out = append(out, b.Device)
		}
		return out
	},
	"block-device-mapping.delete-on-termination": ebsField(func(b store.ImageBlockDevice) string { return boolString(b.DeleteOnTermination) }),
	"block-device-mapping.snapshot-id":           ebsField(func(b store.ImageBlockDevice) string { return b.SnapshotID }),
	"block-device-mapping.volume-size":           ebsField(func(b store.ImageBlockDevice) string { return strconv.Itoa(b.VolumeSize) }),
	"block-device-mapping.volume-type":           ebsField(func(b store.ImageBlockDevice) string { return b.VolumeType }),
	"block-device-mapping.encrypted":             ebsField(func(store.ImageBlockDevice) string { return "false" }),
	"creation-date":                              func(im store.Image) []string { return optValue(store.Time(im.CreatedMS).Format(imageTimeFormat)) },
	"description":                                func(im store.Image) []string { return optValue(im.Description) },
	"ena-support":                                func(store.Image) []string { return []string{"false"} },
	"free-tier-eligible":                         func(store.Image) []string { return []string{"false"} },
	"hypervisor":                                 func(store.Image) []string { return []string{imageHypervisor} },
	"image-allowed":                              func(store.Image) []string { return []string{"true"} },
	"image-id":                                   func(im store.Image) []string { return optValue(im.ID) },
	"image-type":                                 func(im store.Image) []string { return optValue(im.Kind) },
	"is-public":                                  func(im store.Image) []string { return []string{boolString(im.Public)} },
	"kernel-id":                                  func(im store.Image) []string { return optValue(im.KernelID) },
	"manifest-location":                          func(im store.Image) []string { return optValue(im.Location) },
	"name":                                       func(im store.Image) []string { return optValue(im.Name) },
	"owner-alias":                                none,
	"owner-id":                                   func(im store.Image) []string { return optValue(im.AccountID) },
	"platform":                                   none,
	"product-code":                               func(im store.Image) []string { return im.ProductCodes },
	"product-code.type": func(im store.Image) []string {
		if len(im.ProductCodes) > 0 {
			return []string{"marketplace"}
		}
		return nil
	},
	"ramdisk-id":           func(im store.Image) []string { return optValue(im.RamdiskID) },
	"root-device-name":     func(im store.Image) []string { return optValue(im.RootDeviceName) },
	"root-device-type":     func(im store.Image) []string { return optValue(im.RootDeviceType) },
	"source-image-id":      none,
	"source-image-region":  none,
	"source-instance-id":   none,
	"state":                func(im store.Image) []string { return optValue(im.State) },
	"state-reason-code":    none,
	"state-reason-message": none,
	"sriov-net-support":    none,
	"virtualization-type":  func(store.Image) []string { return []string{imageVirtualizationType} },
}

func (a *api) describeImages(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	// DescribeImages answers a dry run before it reads anything else.
	if err := dryRun(p); err != nil {
		return nil, err
	}
	for _, b := range []string{"IncludeDeprecated", "IncludeDisabled"} {
		if _, err := p.Bool(b); err != nil {
			return nil, err
		}
	}
	ids := p.List("ImageId")
	page, next, err := describe(p, describeCall[store.Image]{
		fields: imageFilters, tags: func(im store.Image) []store.Tag { return im.Tags },
		filterNamesFirst: true,
		check: func() error {
			for _, id := range ids {
				if !imageIDPattern.MatchString(id) {
					return awserr.New("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", id)
				}
			}
			return nil
		},
		fetch: func() ([]store.Image, error) {
			return a.cloud.DescribeImages(ctx, req.Caller.AccountID, ids, p.List("Owner"), p.List("ExecutableBy"))
		},
		minResults: 1, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	items := make([]imageItem, len(page))
	for i, im := range page {
		items[i] = imageItemOf(im)
	}
	return &describeImagesResponse{Images: setOf[imageItem]{items}, NextToken: next}, nil
}

// ---- DescribeImageAttribute

type attributeValue struct {
	Value string `xml:"value,omitempty"`
}

type launchPermissionItem struct {
	Group  string `xml:"group,omitempty"`
	UserID string `xml:"userId,omitempty"`
}

// describeImageAttributeResponse is botocore's ImageAttribute shape: the
// attribute asked for is present, the others absent.
type describeImageAttributeResponse struct {
	Response
	ImageID                  string                       `xml:"imageId"`
	LaunchPermission         *setOf[launchPermissionItem] `xml:"launchPermission"`
	ProductCodes             *setOf[productCodeItem]      `xml:"productCodes"`
	BlockDeviceMapping       *setOf[blockDeviceItem]      `xml:"blockDeviceMapping"`
	Description              *attributeValue              `xml:"description"`
	Kernel                   *attributeValue              `xml:"kernel"`
	Ramdisk                  *attributeValue              `xml:"ramdisk"`
	SriovNetSupport          *attributeValue              `xml:"sriovNetSupport"`
	BootMode                 *attributeValue              `xml:"bootMode"`
	TpmSupport               *attributeValue              `xml:"tpmSupport"`
	UefiData                 *attributeValue              `xml:"uefiData"`
	LastLaunchedTime         *attributeValue              `xml:"lastLaunchedTime"`
	ImdsSupport              *attributeValue              `xml:"imdsSupport"`
	DeregistrationProtection *attributeValue              `xml:"deregistrationProtection"`
}

func launchPermissionItems(im store.Image) []launchPermissionItem {
	var out []launchPermissionItem
	if im.Public {
		out = append(out, launchPermissionItem{Group: "all"})
	}
	for _, a := range im.LaunchPermissions {
		out = append(out, launchPermissionItem{UserID: a})
	}
	return out
}

func (a *api) describeImageAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	attr, id, err := imageAttributeParams(p)
	if err != nil {
		return nil, err
	}
	resp := &describeImageAttributeResponse{ImageID: id}
	empty := &attributeValue{}
	switch attr {
	case "launchPermission", "description", "kernel", "ramdisk", "productCodes", "blockDeviceMapping":
	case "sriovNetSupport":
		resp.SriovNetSupport = empty
	case "bootMode":
		resp.BootMode = empty
	case "tpmSupport":
		resp.TpmSupport = empty
	case "uefiData":
		resp.UefiData = empty
	case "lastLaunchedTime":
		resp.LastLaunchedTime = empty
	case "imdsSupport":
		resp.ImdsSupport = empty
	case "deregistrationProtection":
		resp.DeregistrationProtection = &attributeValue{Value: "disabled"}
	default:
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)
	}
	// Who may launch an image is its owner's business.
	im, err := a.cloud.DescribeImage(ctx, req.Caller.AccountID, id, attr == "launchPermission")
	if err != nil {
		return nil, err
	}
	switch attr {
	case "launchPermission":
		resp.LaunchPermission = &setOf[launchPermissionItem]{launchPermissionItems(im)}
	case "description":
		resp.Description = &attributeValue{Value: im.Description}
	case "kernel":
		resp.Kernel = &attributeValue{Value: im.KernelID}
	case "ramdisk":
		resp.Ramdisk = &attributeValue{Value: im.RamdiskID}
	case "productCodes":
		resp.ProductCodes = &setOf[productCodeItem]{imageItemOf(im).ProductCodes}
	case "blockDeviceMapping":
		resp.BlockDeviceMapping = &setOf[blockDeviceItem]{blockDeviceItems(im)}
	}
	return resp, nil
}

// ---- ModifyImageAttribute and ResetImageAttribute

// launchChanges adds the accounts and groups of a list of launch
// permissions to u: userIds to the accounts, the group "all" to Public.
// permissionChanges reads a Modify*Attribute request's permission changes,
// in either of the forms EC2 takes: <kind>.Add.N / <kind>.Remove.N (UserId,
// Group), or the older OperationType with UserId.N and UserGroup.N
// (euca2ools). apply records one set of changes; changed says whether the
// request held any.
func permissionChanges(p queryapi.Params, kind string, apply func(perms []queryapi.Params, users, groups []string, add bool) error) (changed bool, err error) {
	adds, removes := p.Members(kind+".Add"), p.Members(kind+".Remove")
	if len(adds)+len(removes) > 0 {
		if err := apply(adds, nil, nil, true); err != nil {
			return false, err
		}
		if err := apply(removes, nil, nil, false); err != nil {
			return false, err
		}
		changed = true
	}
	users, groups := p.List("UserId"), p.List("UserGroup")
	if op := p.String("OperationType"); op != "" || len(users)+len(groups) > 0 {
		switch {
		case op == "":
			return false, awserr.MissingParameter("OperationType")
		case op != "add" && op != "remove":
			return false, awserr.InvalidParameterValue("Value (%s) for parameter OperationType is invalid. Valid values: add, remove.", op)
		case len(users)+len(groups) == 0:
			return false, awserr.MissingParameter("UserId or UserGroup")
		}
		if err := apply(nil, users, groups, op == "add"); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

func launchChanges(perms []queryapi.Params, userIDs, groups []string, add bool, u *store.ImageUpdate) error {
	for _, m := range perms {
		if v, ok := m["UserId"]; ok {
			userIDs = append(userIDs, v)
		}
		if v, ok := m["Group"]; ok {
			groups = append(groups, v)
		}
		for k := range m {
			if k == "OrganizationArn" || k == "OrganizationalUnitArn" {
				return awserr.InvalidParameterValue("Launch permissions for organizations are not supported.")
			}
		}
	}
	for _, g := range groups {
		if g != "all" {
			return awserr.New("InvalidAMIAttributeItemValue", "Invalid attribute item value \"%s\" for group item type.", g)
		}
		pub := add
		u.Public = &pub
	}
	for _, id := range userIDs {
		if !accountIDPattern.MatchString(id) {
			return awserr.New("InvalidAMIAttributeItemValue", "Invalid attribute item value \"%s\" for userId item type.", id)
		}
	}
	if add {
		u.AddLaunch = append(u.AddLaunch, userIDs...)
	} else {
		u.RemoveLaunch = append(u.RemoveLaunch, userIDs...)
	}
	return nil
}

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

func (a *api) modifyImageAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	id, err := imageIDParam(p)
	if err != nil {
		return nil, err
	}
	attr := p.String("Attribute")
	var u store.ImageUpdate
	changed := false

	// Description: Description.Value, or Attribute=description with Value.
	switch {
	case p.Has("Description.Value"):
		d := p.String("Description.Value")
		u.Description, changed = &d, true
	case attr == "description":
		d, ok := p["Value"]
		if !ok {
			return nil, awserr.MissingParameter("Value")
		}
		u.Description, changed = &d, true
	}

	// Launch permissions: LaunchPermission.Add.N / .Remove.N, or the older
	// OperationType with UserId.N and UserGroup.N.
	perms, err := permissionChanges(p, "LaunchPermission", func(perms []queryapi.Params, users, groups []string, add bool) error {
		return launchChanges(perms, users, groups, add, &u)
	})
	if err != nil {
		return nil, err
	}
	changed = changed || perms

	if len(p.List("ProductCode")) > 0 {
		return nil, awserr.InvalidParameterValue("Product codes cannot be added to images here.")
	}
	if len(p.List("OrganizationArn"))+len(p.List("OrganizationalUnitArn")) > 0 {
		return nil, awserr.InvalidParameterValue("Launch permissions for organizations are not supported.")
	}
	if p.Has("ImdsSupport.Value") || attr == "imdsSupport" {
		return nil, awserr.InvalidParameterValue("imdsSupport cannot be set: the metadata service answers both IMDSv1 and IMDSv2.")
	}
	switch attr {
	case "", "description", "launchPermission":
	case "productCodes":
		return nil, awserr.InvalidParameterValue("Product codes cannot be added to images here.")
	default:
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter attribute is invalid. Valid values: description, launchPermission.", attr)
	}
	if !changed {
		return nil, awserr.MissingParameter("LaunchPermission, Description or Attribute")
	}
	if err := a.cloud.ModifyImage(ctx, req.Caller.AccountID, id, u); err != nil {
		return nil, err
	}
	return ok()
}

func (a *api) resetImageAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	attr, id, err := imageAttributeParams(p)
	if err != nil {
		return nil, err
	}
	if attr != "launchPermission" {
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter attribute is invalid. Only launchPermission can be reset.", attr)
	}
	private := false
	if err := a.cloud.ModifyImage(ctx, req.Caller.AccountID, id, store.ImageUpdate{ResetLaunch: true, Public: &private}); err != nil {
		return nil, err
	}
	return ok()
}
