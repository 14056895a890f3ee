package clc

// Images: RegisterImage from a bundle in Walrus, DeregisterImage,
// DescribeImages, and the image attributes (launch permissions,
// description).
//
// Registration reads the manifest as the caller (who must be able to read
// it), verifies its signature against the caller's certificates, and only
// then has Walrus decrypt the bundle's key with the cloud's and unbundle
// it, checking every part and the image: an image is recorded, available,
// with its plain image's SHA-256 and size, or nothing is recorded.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus/bundle"
	"github.com/euca-cloud/euca/walrus/images"
)

// BundleSource is Walrus as registration needs it: *images.Service, the
// storage side, which also keeps the decrypted images.
type BundleSource interface {
	// Manifest returns the manifest object bucket/key if accountID may
	// read it; an error wrapping images.ErrAccess when it does not exist
	// or may not be read.
	Manifest(ctx context.Context, accountID, bucket, key string) ([]byte, error)
	// Unbundle decrypts the bundle of a verified manifest with the cloud's
	// key into the image cache, checking every part and the image, and
	// returns the plain image's SHA-256 (hex) and size. Errors wrap the
	// bundle package's check errors or the images package's.
	Unbundle(ctx context.Context, accountID, bucket, manifestKey string, m *bundle.Manifest) (sha256 string, size int64, err error)
}

// SetBundleSource connects Walrus's storage side: until it is called,
// RegisterImage answers that the service is unavailable.
func (c *Cloud) SetBundleSource(b BundleSource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bundles = b
}

func (c *Cloud) bundleSource() BundleSource {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bundles
}

// Image id prefixes by kind, as Eucalyptus named them.
var imagePrefixes = map[string]string{
	store.ImageMachine: "emi",
	store.ImageKernel:  "eki",
	store.ImageRamdisk: "eri",
}

var (
	// imageName is EC2's rule for AMI names: 3 to 128 of letters, digits
	// and ( ) [ ] . / - ' @ _ and space.
	imageName   = regexp.MustCompile(`^[A-Za-z0-9()\[\]./\-'@_ ]{3,128}$`)
	kernelID    = regexp.MustCompile(`^(eki|aki)-([0-9a-fA-F]{8}|[0-9a-fA-F]{17})$`)
	ramdiskID   = regexp.MustCompile(`^(eri|ari)-([0-9a-fA-F]{8}|[0-9a-fA-F]{17})$`)
	accountIDRe = regexp.MustCompile(`^[0-9]{12}$`)
)

// architectures are the values EC2 and the bundlers use.
var architectures = []string{"i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac", "armhf", "ppc", "ppc64", "ppc64le"}

const maxImageDescription = 255

func imageNotFound(ids ...string) *awserr.Error {
	return awserr.New("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", strings.Join(ids, ", "))
}

func notAuthorized(id string) *awserr.Error {
	return awserr.New("AuthFailure", "Not authorized for image:%s", id)
}

// canLaunch reports whether an account may see and launch an image.
func canLaunch(im store.Image, accountID string) bool {
	return im.AccountID == accountID || im.Public || slices.Contains(im.LaunchPermissions, accountID)
}

func checkImageName(name string) error {
	if !imageName.MatchString(name) {
		return awserr.New("InvalidAMIName.Malformed", "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, spaces and ( ) [ ] . / - ' @ _ (got %q)", name)
	}
	return nil
}

// RegisterImage registers the image of the bundle whose manifest is at
// req.Location (bucket/path/x.manifest.xml). req may set Name (default:
// the manifest's image name), Description, Architecture (must be the
// manifest's when it has one), KernelID and RamdiskID (override the
// manifest's; must name kernel and ramdisk images the account may launch),
// RootDeviceName, BlockDevices and Tags.
func (c *Cloud) RegisterImage(ctx context.Context, accountID string, req store.Image) (store.Image, error) {
	if req.Location == "" && (len(req.BlockDevices) > 0 || req.RootDeviceName != "") {
		// No manifest: an EBS-backed image (images_ebs.go).
		return c.registerEBSImage(ctx, accountID, req)
	}
	src := c.bundleSource()
	if src == nil {
		return store.Image{}, awserr.NewStatus(503, "Unavailable", "Images cannot be registered: Walrus does not run with this cloud controller.")
	}
	if req.Location == "" {
		return store.Image{}, awserr.MissingParameter("ImageLocation")
	}
	bucket, key, ok := images.SplitLocation(req.Location)
	if !ok {
		return store.Image{}, awserr.InvalidParameterValue("Value (%s) for parameter ImageLocation is invalid. Expected bucket/path/to/image.manifest.xml.", req.Location)
	}
	if req.Name != "" {
		if err := checkImageName(req.Name); err != nil {
			return store.Image{}, err
		}
		if err := c.checkNameFree(ctx, accountID, req.Name); err != nil {
			return store.Image{}, err
		}
	}
	if len(req.Description) > maxImageDescription {
		return store.Image{}, awserr.InvalidParameterValue("Value for parameter Description is invalid. Length exceeds maximum of %d.", maxImageDescription)
	}
	if req.Architecture != "" && !slices.Contains(architectures, req.Architecture) {
		return store.Image{}, awserr.InvalidParameterValue("Value (%s) for parameter Architecture is invalid. Valid values: %s.", req.Architecture, strings.Join(architectures, ", "))
	}
	if req.KernelID != "" && !kernelID.MatchString(req.KernelID) {
		return store.Image{}, awserr.New("InvalidKernelId.Malformed", "Invalid id: %q (expecting \"eki-...\")", req.KernelID)
	}
	if req.RamdiskID != "" && !ramdiskID.MatchString(req.RamdiskID) {
		return store.Image{}, awserr.New("InvalidRamDiskId.Malformed", "Invalid id: %q (expecting \"eri-...\")", req.RamdiskID)
	}

	// The manifest, as the caller may read it, then its signature by one of
	// the caller's certificates: nothing else of the bundle is trusted, or
	// even decrypted, before that.
	raw, err := src.Manifest(ctx, accountID, bucket, key)
	if errors.Is(err, images.ErrAccess) {
		return store.Image{}, awserr.New("InvalidManifest", "Cannot read the manifest %s: it does not exist or you may not read it.", req.Location).WithCause(err)
	}
	if err != nil {
		return store.Image{}, fmt.Errorf("register image: read manifest %s: %w", req.Location, err)
	}
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		return store.Image{}, c.refuse(ctx, accountID, req.Location, err)
	}
	certs, err := c.userCertificates(ctx, accountID)
	if err != nil {
		return store.Image{}, err
	}
	if err := m.VerifySignature(certs); err != nil {
		return store.Image{}, c.refuse(ctx, accountID, req.Location, err)
	}

	im := store.Image{
		AccountID: accountID, Kind: m.Kind(), Name: req.Name, Description: req.Description, Location: bucket + "/" + key,
		Architecture: req.Architecture, KernelID: req.KernelID, RamdiskID: req.RamdiskID, State: store.ImageAvailable,
		Tags: req.Tags, RootDeviceName: req.RootDeviceName, BlockDevices: req.BlockDevices, ProductCodes: m.ProductCodes,
	}
	im.ID = ids.New(imagePrefixes[im.Kind])
	if im.Name == "" {
		im.Name = m.Name
		if err := checkImageName(im.Name); err != nil {
			return store.Image{}, err
		}
		if err := c.checkNameFree(ctx, accountID, im.Name); err != nil {
			return store.Image{}, err
		}
	}
	switch {
	case m.Arch == "" && im.Architecture == "":
		im.Architecture = "x86_64"
	case im.Architecture == "":
		im.Architecture = m.Arch
	case m.Arch != "" && m.Arch != im.Architecture:
		return store.Image{}, awserr.InvalidParameterValue("Architecture %s does not match the manifest's, %s.", im.Architecture, m.Arch)
	}
	if err := c.resolveKernelRamdisk(ctx, accountID, &im, m); err != nil {
		return store.Image{}, err
	}
	if im.Kind == store.ImageMachine {
		manifestDevices(&im, m)
	} else {
		im.RootDeviceName, im.BlockDevices = "", nil
	}

	sum, size, err := src.Unbundle(ctx, accountID, bucket, key, m)
	if err != nil {
		return store.Image{}, c.refuse(ctx, accountID, req.Location, err)
	}
	im.SHA256, im.SizeBytes = sum, size
	if err := c.store.CreateImage(ctx, im); errors.Is(err, store.ErrConflict) {
		return store.Image{}, nameTaken(im.Name)
	} else if err != nil {
		return store.Image{}, fmt.Errorf("register image: %w", err)
	}
	c.log.InfoContext(ctx, "registered image", "account", accountID, "image", im.ID, "kind", im.Kind, "location", im.Location, "sha256", sum, "size", size)
	return c.imageFor(ctx, accountID, im.ID)
}

func nameTaken(name string) *awserr.Error {
	return awserr.New("InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI of this account", name)
}

func (c *Cloud) checkNameFree(ctx context.Context, accountID, name string) error {
	taken, err := c.store.ImageNameTaken(ctx, accountID, name)
	if err != nil {
		return err
	}
	if taken {
		return nameTaken(name)
	}
	return nil
}

// userCertificates are the account's active certificates, those a
// manifest may be signed by.
func (c *Cloud) userCertificates(ctx context.Context, accountID string) ([]*x509.Certificate, error) {
	ucs, err := c.store.UserCerts(ctx, accountID)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, uc := range ucs {
		cert, err := pki.ParseCertPEM([]byte(uc.CertPEM))
		if err != nil {
			c.log.WarnContext(ctx, "unreadable user certificate", "account", accountID, "fingerprint", uc.Fingerprint, "err", err)
			continue
		}
		out = append(out, cert)
	}
	return out, nil
}

// resolveKernelRamdisk settles a machine image's kernel and ramdisk (the
// request's, else the manifest's) and checks that each is a kernel or
// ramdisk image the account may launch; kernel and ramdisk images have
// neither.
func (c *Cloud) resolveKernelRamdisk(ctx context.Context, accountID string, im *store.Image, m *bundle.Manifest) error {
	if im.Kind != store.ImageMachine {
		if im.KernelID != "" || im.RamdiskID != "" {
			return awserr.New("InvalidParameterCombination", "KernelId and RamdiskId apply to machine images; the manifest at %s is of a %s image.", im.Location, im.Kind)
		}
		return nil
	}
	from := func(param, manifest string) (string, string) {
		if param != "" {
			return param, ""
		}
		return manifest, " (named by the manifest)"
	}
	kid, kwhere := from(im.KernelID, m.ImageKernelID())
	rid, rwhere := from(im.RamdiskID, m.ImageRamdiskID())
	if kid != "" {
		if !kernelID.MatchString(kid) {
			return awserr.New("InvalidKernelId.Malformed", "Invalid id: %q%s (expecting \"eki-...\")", kid, kwhere)
		}
		if err := c.checkLaunchable(ctx, accountID, kid, store.ImageKernel, kwhere); err != nil {
			return err
		}
	}
	if rid != "" {
		if !ramdiskID.MatchString(rid) {
			return awserr.New("InvalidRamDiskId.Malformed", "Invalid id: %q%s (expecting \"eri-...\")", rid, rwhere)
		}
		if err := c.checkLaunchable(ctx, accountID, rid, store.ImageRamdisk, rwhere); err != nil {
			return err
		}
	}
	im.KernelID, im.RamdiskID = kid, rid
	return nil
}

func (c *Cloud) checkLaunchable(ctx context.Context, accountID, id, kind, where string) error {
	im, err := c.store.ImageByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!canLaunch(im, accountID) || im.State != store.ImageAvailable)) {
		return awserr.New("InvalidAMIID.NotFound", "The %s image id '[%s]'%s does not exist", kind, id, where)
	}
	if err != nil {
		return err
	}
	if im.Kind != kind {
		return awserr.InvalidParameterValue("Image %s%s is a %s image, not a %s image.", id, where, im.Kind, kind)
	}
	return nil
}

// manifestDevices settles a machine image's root device and block device
// mappings: the manifest's, where the ami and root mappings name the root
// device and the others (ephemeral0, swap) are the image's mappings, then
// the request's on top: its root device name, and its mappings replacing
// the manifest's of the same device (one without a virtual name, NoDevice,
// removing it).
func manifestDevices(im *store.Image, m *bundle.Manifest) {
	var bdm []store.ImageBlockDevice
	root := ""
	for _, mp := range m.BlockDeviceMappings {
		switch mp.Virtual {
		case "root":
			root = devPath(mp.Device)
		case "ami":
			if root == "" {
				root = devPath(mp.Device)
			}
		default:
			bdm = append(bdm, store.ImageBlockDevice{Virtual: mp.Virtual, Device: mp.Device})
		}
	}
	if im.RootDeviceName == "" {
		im.RootDeviceName = root
		if root == "" {
			im.RootDeviceName = "/dev/sda1"
		}
	}
	for _, r := range im.BlockDevices {
		bdm = slices.DeleteFunc(bdm, func(b store.ImageBlockDevice) bool { return devPath(b.Device) == devPath(r.Device) })
		if r.Virtual != "" {
			bdm = append(bdm, r)
		}
	}
	im.BlockDevices = bdm
}

func devPath(d string) string {
	if d == "" || strings.HasPrefix(d, "/dev/") {
		return d
	}
	return "/dev/" + d
}

// refuse turns a failed check of a bundle into the client's error: which
// check failed, in words that say what to fix. Failures after the
// signature check that depend on the key (the key itself, the padding, the
// compression, the archive, the image digest or size) get one message:
// telling them apart would let a caller probe the cloud's RSA key with
// manifests of its own (a PKCS#1 v1.5 padding oracle). The detail is
// logged.
func (c *Cloud) refuse(ctx context.Context, accountID, location string, err error) error {
	check, e := refusal(err)
	if e == nil {
		return fmt.Errorf("register image %s: %w", location, err)
	}
	c.log.InfoContext(ctx, "register image refused", "account", accountID, "location", location, "check", check, "err", err)
	return e.WithCause(err)
}

func refusal(err error) (string, *awserr.Error) {
	invalid := func(format string, a ...any) *awserr.Error { return awserr.New("InvalidManifest", format, a...) }
	switch {
	case errors.Is(err, bundle.ErrManifest):
		return "manifest", invalid("The manifest is not a valid bundle manifest: %s", strings.TrimPrefix(err.Error(), bundle.ErrManifest.Error()+": "))
	case errors.Is(err, bundle.ErrSignature):
		return "signature", invalid("The manifest's signature does not verify with any of your certificates (was the bundle made with your current credentials?).")
	case errors.Is(err, bundle.ErrPartMissing):
		return "part missing", invalid("The bundle is incomplete: %s. Upload every part (euca upload-bundle).", strings.TrimPrefix(err.Error(), bundle.ErrPartMissing.Error()+": "))
	case errors.Is(err, bundle.ErrPartDigest):
		return "part digest", invalid("A bundle part is damaged: %s.", strings.TrimPrefix(err.Error(), bundle.ErrPartDigest.Error()+": "))
	case images.PartsSize(err):
		return "parts size", invalid("The bundle's parts are not the size the manifest says: %s.", strings.TrimPrefix(err.Error(), bundle.ErrSize.Error()+": "))
	case errors.Is(err, images.ErrAccess):
		return "part access", invalid("A bundle part cannot be read by the cloud: %s. Upload the bundle with the canned ACL aws-exec-read.", partName(err))
	case errors.Is(err, images.ErrTooLarge):
		return "size", invalid("The image is too large to register here: %s.", strings.TrimPrefix(err.Error(), images.ErrTooLarge.Error()+": "))
	case errors.Is(err, images.ErrNoSpace):
		return "disk space", awserr.NewStatus(503, "Unavailable", "There is not enough free space to unbundle the image now; try again later.")
	case errors.Is(err, bundle.ErrKeyDecrypt), errors.Is(err, bundle.ErrPadding), errors.Is(err, bundle.ErrCompression),
		errors.Is(err, bundle.ErrArchive), errors.Is(err, bundle.ErrImageDigest), errors.Is(err, bundle.ErrSize):
		return "decrypt", invalid("The bundle's key or contents could not be decrypted (was the bundle made for this cloud's certificate, cloud-cert.pem of your credentials?).")
	}
	return "", nil
}

// partName digs the object name out of an access error ("read part NAME:
// bucket/key: not found or not readable").
func partName(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "+images.ErrAccess.Error()); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// imageFor returns an image the account may see, or InvalidAMIID.NotFound.
func (c *Cloud) imageFor(ctx context.Context, accountID, id string) (store.Image, error) {
	im, err := c.store.ImageByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!canLaunch(im, accountID) || im.State == store.ImageDeregistered)) {
		return store.Image{}, imageNotFound(id)
	}
	if err != nil {
		return store.Image{}, err
	}
	if im.AccountID != accountID {
		im.Tags = nil // tags are their owner's
	}
	return im, nil
}

// DescribeImage returns one image the account may see. With ownerOnly, an
// image of another account is refused as EC2 refuses it (AuthFailure).
func (c *Cloud) DescribeImage(ctx context.Context, accountID, imageID string, ownerOnly bool) (store.Image, error) {
	im, err := c.imageFor(ctx, accountID, imageID)
	if err != nil {
		return store.Image{}, err
	}
	if ownerOnly && im.AccountID != accountID {
		return store.Image{}, notAuthorized(imageID)
	}
	return im, nil
}

// DeregisterImage removes an account's image. Its decrypted image stays in
// Walrus's cache until evicted (another image may share it).
func (c *Cloud) DeregisterImage(ctx context.Context, accountID, imageID string) error {
	if _, err := c.DescribeImage(ctx, accountID, imageID, true); err != nil {
		return err
	}
	if err := c.store.DeleteImage(ctx, accountID, imageID); errors.Is(err, store.ErrNotFound) {
		return imageNotFound(imageID)
	} else if err != nil {
		return fmt.Errorf("deregister image %s: %w", imageID, err)
	}
	c.log.InfoContext(ctx, "deregistered image", "account", accountID, "image", imageID)
	return nil
}

// ModifyImage changes an account's image: description, public launch
// permission, and the accounts that may launch it.
func (c *Cloud) ModifyImage(ctx context.Context, accountID, imageID string, u store.ImageUpdate) error {
	if _, err := c.DescribeImage(ctx, accountID, imageID, true); err != nil {
		return err
	}
	if u.Description != nil && len(*u.Description) > maxImageDescription {
		return awserr.InvalidParameterValue("Value for parameter Description is invalid. Length exceeds maximum of %d.", maxImageDescription)
	}
	for _, a := range append(slices.Clone(u.AddLaunch), u.RemoveLaunch...) {
		if !accountIDRe.MatchString(a) {
			return awserr.New("InvalidAMIAttributeItemValue", "Invalid attribute item value \"%s\" for userId item type.", a)
		}
	}
	if err := c.store.UpdateImage(ctx, accountID, imageID, u); errors.Is(err, store.ErrNotFound) {
		return imageNotFound(imageID)
	} else if err != nil {
		return fmt.Errorf("modify image %s: %w", imageID, err)
	}
	return nil
}

// Owner aliases of AWS's own images: valid, and matching nothing here.
var awsOwnerAliases = []string{"amazon", "aws-marketplace", "aws-backup-vault"}

// DescribeImages lists the images an account may see (its own, public ones
// and those shared with it), narrowed by ids (each must be visible),
// owners (self, all, an account id or name, or one of AWS's aliases, which
// own nothing here) and executableBy (self, all, or an account id: images
// that account was given launch permission on, or public ones for all).
func (c *Cloud) DescribeImages(ctx context.Context, accountID string, imageIDs, owners, executableBy []string) ([]store.Image, error) {
	ownerSet, anyOwner, err := c.imageOwners(ctx, accountID, owners)
	if err != nil {
		return nil, err
	}
	execSet, public := map[string]bool{}, false
	for _, e := range executableBy {
		switch {
		case e == "self":
			execSet[accountID] = true
		case e == "all":
			public = true
		case accountIDRe.MatchString(e):
			execSet[e] = true
		default:
			return nil, awserr.New("InvalidUserID.Malformed", "Invalid user id: \"%s\"", e)
		}
	}
	all, err := c.store.ImagesVisibleTo(ctx, accountID)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]bool, len(all))
	for _, im := range all {
		byID[im.ID] = true
	}
	wanted := map[string]bool{}
	var missing []string
	for _, id := range imageIDs {
		if !byID[id] {
			missing = append(missing, id)
		}
		wanted[id] = true
	}
	if len(missing) > 0 {
		return nil, imageNotFound(missing...)
	}
	var out []store.Image
	for _, im := range all {
		if len(imageIDs) > 0 && !wanted[im.ID] {
			continue
		}
		if len(owners) > 0 && !anyOwner && !ownerSet[im.AccountID] {
			continue
		}
		if len(executableBy) > 0 && !(public && im.Public) && !slices.ContainsFunc(im.LaunchPermissions, func(a string) bool { return execSet[a] }) {
			continue
		}
		if im.AccountID != accountID {
			im.Tags = nil
		}
		out = append(out, im)
	}
	return out, nil
}

// imageOwners resolves DescribeImages' Owner.N.
func (c *Cloud) imageOwners(ctx context.Context, accountID string, owners []string) (set map[string]bool, anyOwner bool, err error) {
	set = map[string]bool{}
	for _, o := range owners {
		switch {
		case o == "self":
			set[accountID] = true
		case o == "all":
			anyOwner = true
		case slices.Contains(awsOwnerAliases, o):
		case accountIDRe.MatchString(o):
			set[o] = true
		default:
			// Eucalyptus let an account be named by its name (its alias).
			a, err := c.store.AccountByName(ctx, o)
			if errors.Is(err, store.ErrNotFound) {
				return nil, false, awserr.New("InvalidUserID.Malformed", "Invalid user id: \"%s\"", o)
			}
			if err != nil {
				return nil, false, err
			}
			set[a.ID] = true
		}
	}
	return set, anyOwner, nil
}
