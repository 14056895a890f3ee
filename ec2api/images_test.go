package ec2api

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/store"
	wfs "github.com/euca-cloud/euca/walrus/backend/fs"
	"github.com/euca-cloud/euca/walrus/bundle"
	"github.com/euca-cloud/euca/walrus/images"
)

// imageAPI is the EC2 API over a cloud controller with Walrus's image
// service, and a kernel and a machine image of alice's registered from
// bundles in her bucket.
type imageAPI struct {
	*catFixture
	bob             string
	kernel, machine string
}

func newImageAPI(t *testing.T) *imageAPI {
	t.Helper()
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.WalrusBucketsPath = filepath.Join(cfg.Home, "buckets")
	c, st, ids := newTestCloud(t, cfg, clc.AdminAccount, "alice", "bob")
	admin, alice, bob := ids[0], ids[1], ids[2]
	src, err := images.New(ctx, images.Options{Conf: cfg, Store: st, CloudKey: c.CA().Key})
	if err != nil {
		t.Fatal(err)
	}
	c.SetBundleSource(src)
	cred, err := c.Credentials(ctx, "alice", clc.Endpoints{})
	if err != nil {
		t.Fatal(err)
	}
	userCert, err := pki.ParseCertPEM(cred.UserCertPEM)
	if err != nil {
		t.Fatal(err)
	}
	userKey, err := pki.ParseRSAKeyPEM(cred.UserKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	be, err := wfs.New(cfg.WalrusBucketsPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateWalrusBucket(ctx, store.WalrusBucket{Name: "imgs", AccountID: alice, Location: cfg.Region}, 0); err != nil {
		t.Fatal(err)
	}
	if err := be.CreateBucket(ctx, "imgs"); err != nil {
		t.Fatal(err)
	}
	put := func(path string) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		blob, err := be.Write(ctx, "imgs", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		acl := []store.WalrusGrant{{Type: "CanonicalUser", ID: alice, Permission: "FULL_CONTROL"}, {Type: "CanonicalUser", ID: "eucalyptus", Permission: "READ"}}
		if _, err := st.PutWalrusObject(ctx, store.WalrusObject{Bucket: "imgs", Key: filepath.Base(path), Blob: blob.ID, Size: blob.Size,
			ETag: "e", OwnerID: alice, ACL: acl, Headers: map[string]string{}}, store.WalrusPutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []struct{ prefix, typ string }{{"vmlinuz", bundle.TypeKernel}, {"debian.img", bundle.TypeMachine}} {
		data := bytes.Repeat([]byte(b.prefix), 5000)
		res, err := bundle.CreateFrom(ctx, bytes.NewReader(data), int64(len(data)), t.TempDir(), bundle.Options{
			Prefix: b.prefix, Arch: "x86_64", ImageType: b.typ, UserCert: userCert, UserKey: userKey, CloudCert: c.CA().Cert,
			UserID: alice, BlockDeviceMappings: []bundle.Mapping{{Virtual: "ami", Device: "sda1"}, {Virtual: "ephemeral0", Device: "sda2"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range append(res.PartPaths, res.ManifestPath) {
			put(p)
		}
	}
	f := &imageAPI{catFixture: &catFixture{a: &api{cloud: c}, st: st, admin: admin, alice: alice}, bob: bob}
	r, err := f.call(alice, "RegisterImage", queryapi.Params{"ImageLocation": "imgs/vmlinuz.manifest.xml"})
	if err != nil {
		t.Fatal(err)
	}
	f.kernel = r.(*registerImageResponse).ImageID
	r, err = f.call(alice, "RegisterImage", queryapi.Params{"ImageLocation": "imgs/debian.img.manifest.xml", "Name": "debian-12",
		"Description": "Debian", "KernelId": f.kernel, "TagSpecification.1.ResourceType": "image",
		"TagSpecification.1.Tag.1.Key": "Name", "TagSpecification.1.Tag.1.Value": "deb"})
	if err != nil {
		t.Fatal(err)
	}
	f.machine = r.(*registerImageResponse).ImageID
	return f
}

// change runs an action of alice's that answers only <return>true</return>
// (botocore's model has no output shape for it).
func (f *imageAPI) change(t *testing.T, action string, params queryapi.Params) {
	t.Helper()
	r, err := f.call(f.alice, action, params)
	if err != nil {
		t.Fatalf("%s %v: %v", action, params, err)
	}
	if rr, ok := r.(*returnResponse); !ok || !rr.Return {
		t.Fatalf("%s: %#v", action, r)
	}
}

func imagesWith(check func(t *testing.T, ims []map[string]any)) func(t *testing.T, r map[string]any) {
	return func(t *testing.T, r map[string]any) {
		t.Helper()
		check(t, catList(t, r, "Images"))
	}
}

func imageIDs(ims []map[string]any) []string {
	var out []string
	for _, im := range ims {
		out = append(out, im["ImageId"].(string))
	}
	return out
}

func TestRegisterImageParams(t *testing.T) {
	f := newImageAPI(t)
	loc := "imgs/debian.img.manifest.xml"
	f.run(t, "RegisterImage", []catCase{
		{name: "no location", params: queryapi.Params{"Name": "x"}, code: "MissingParameter"},
		{name: "hvm", params: queryapi.Params{"ImageLocation": loc, "VirtualizationType": "hvm"}, code: "InvalidParameterValue"},
		{name: "ena", params: queryapi.Params{"ImageLocation": loc, "EnaSupport": "true"}, code: "InvalidParameterValue"},
		{name: "ebs mapping", params: queryapi.Params{"ImageLocation": loc, "BlockDeviceMapping.1.DeviceName": "/dev/sdb",
			"BlockDeviceMapping.1.Ebs.VolumeSize": "8"}, code: "InvalidBlockDeviceMapping"},
		{name: "bad virtual name", params: queryapi.Params{"ImageLocation": loc, "BlockDeviceMapping.1.DeviceName": "/dev/sdb",
			"BlockDeviceMapping.1.VirtualName": "disk"}, code: "InvalidBlockDeviceMapping"},
		{name: "bad tag type", params: queryapi.Params{"ImageLocation": loc, "TagSpecification.1.ResourceType": "instance",
			"TagSpecification.1.Tag.1.Key": "a"}, code: "InvalidParameterValue"},
		{name: "dry run", params: queryapi.Params{"ImageLocation": loc, "DryRun": "true"}, code: "DryRunOperation"},
		{name: "duplicate", params: queryapi.Params{"ImageLocation": loc, "Name": "debian-12"}, code: "InvalidAMIName.Duplicate"},
		{name: "not a kernel", params: queryapi.Params{"ImageLocation": loc, "Name": "deb2", "KernelId": f.machine}, code: "InvalidKernelId.Malformed"},
		{name: "registered", account: f.alice, params: queryapi.Params{"ImageLocation": loc, "Name": "deb3",
			"BlockDeviceMapping.1.DeviceName": "sdb", "BlockDeviceMapping.1.VirtualName": "ephemeral1"}, check: func(t *testing.T, r map[string]any) {
			if id, _ := r["ImageId"].(string); len(id) != 21 {
				t.Fatalf("ImageId %v", r["ImageId"])
			}
		}},
	})
}

func TestDescribeImages(t *testing.T) {
	f := newImageAPI(t)
	f.run(t, "DescribeImages", []catCase{
		{name: "own", account: f.alice, check: imagesWith(func(t *testing.T, ims []map[string]any) {
			if len(ims) != 2 {
				t.Fatalf("%d images", len(ims))
			}
			m := ims[1]
			want := map[string]any{"ImageId": f.machine, "ImageLocation": "imgs/debian.img.manifest.xml", "State": "available",
				"OwnerId": f.alice, "Public": false, "Architecture": "x86_64", "ImageType": "machine", "KernelId": f.kernel,
				"Name": "debian-12", "Description": "Debian", "RootDeviceType": "instance-store", "VirtualizationType": "paravirtual",
				"Hypervisor": "xen", "PlatformDetails": "Linux/UNIX", "UsageOperation": "RunInstances"}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %v, want %v", k, m[k], v)
				}
			}
			if tags := m["Tags"].([]any); len(tags) != 1 {
				t.Errorf("tags %v", tags)
			}
			if ims[0]["ImageType"] != "kernel" || ims[0]["ImageId"] != f.kernel {
				t.Errorf("kernel %v", ims[0])
			}
			if _, ok := m["CreationDate"].(string); !ok {
				t.Errorf("no creation date")
			}
		})},
		{name: "by id", account: f.alice, params: queryapi.Params{"ImageId.1": f.kernel}, check: catLen("Images", 1)},
		{name: "others see nothing", account: f.bob, check: catLen("Images", 0)},
		{name: "others by id", account: f.bob, params: queryapi.Params{"ImageId.1": f.machine}, code: "InvalidAMIID.NotFound"},
		{name: "malformed", params: queryapi.Params{"ImageId.1": "emi-12"}, code: "InvalidAMIID.Malformed"},
		{name: "owner self", account: f.alice, params: queryapi.Params{"Owner.1": "self"}, check: catLen("Images", 2)},
		{name: "owner amazon", account: f.alice, params: queryapi.Params{"Owner.1": "amazon"}, check: catLen("Images", 0)},
		{name: "owner id", account: f.alice, params: queryapi.Params{"Owner.1": f.alice}, check: catLen("Images", 2)},
		{name: "bad owner", account: f.alice, params: queryapi.Params{"Owner.1": "nobody-at-all"}, code: "InvalidUserID.Malformed"},
		{name: "executable by all", account: f.alice, params: queryapi.Params{"ExecutableBy.1": "all"}, check: catLen("Images", 0)},
		{name: "name wildcard", account: f.alice, params: queryapi.Params{"Filter.1.Name": "name", "Filter.1.Value.1": "deb*"},
			check: imagesWith(func(t *testing.T, ims []map[string]any) {
				if ids := imageIDs(ims); len(ids) != 1 || ids[0] != f.machine {
					t.Fatalf("%v", ids)
				}
			})},
		{name: "image type", account: f.alice, params: queryapi.Params{"Filter.1.Name": "image-type", "Filter.1.Value.1": "kernel"},
			check: imagesWith(func(t *testing.T, ims []map[string]any) {
				if ids := imageIDs(ims); len(ids) != 1 || ids[0] != f.kernel {
					t.Fatalf("%v", ids)
				}
			})},
		{name: "kernel id", account: f.alice, params: queryapi.Params{"Filter.1.Name": "kernel-id", "Filter.1.Value.1": f.kernel}, check: catLen("Images", 1)},
		{name: "tag", account: f.alice, params: queryapi.Params{"Filter.1.Name": "tag:Name", "Filter.1.Value.1": "deb"}, check: catLen("Images", 1)},
		{name: "is-public", account: f.alice, params: queryapi.Params{"Filter.1.Name": "is-public", "Filter.1.Value.1": "false",
			"Filter.2.Name": "root-device-type", "Filter.2.Value.1": "instance-store", "Filter.3.Name": "state", "Filter.3.Value.1": "available"},
			check: catLen("Images", 2)},
		{name: "manifest location", account: f.alice, params: queryapi.Params{"Filter.1.Name": "manifest-location", "Filter.1.Value.1": "imgs/vmlinuz*"}, check: catLen("Images", 1)},
		{name: "unknown filter", account: f.alice, params: queryapi.Params{"Filter.1.Name": "color", "Filter.1.Value.1": "x"}, code: "InvalidParameterValue"},
		{name: "page", account: f.alice, params: queryapi.Params{"MaxResults": "1"}, check: func(t *testing.T, r map[string]any) {
			if len(catList(t, r, "Images")) != 1 || r["NextToken"] == nil {
				t.Fatalf("%v", r)
			}
		}},
	})
}

func TestImageAttributes(t *testing.T) {
	f := newImageAPI(t)
	f.change(t, "ModifyImageAttribute", queryapi.Params{"ImageId": f.machine, "LaunchPermission.Add.1.UserId": f.bob})
	f.change(t, "ModifyImageAttribute", queryapi.Params{"ImageId": f.kernel, "Attribute": "launchPermission", "OperationType": "add", "UserId.1": f.bob})
	f.change(t, "ModifyImageAttribute", queryapi.Params{"ImageId": f.machine, "Description.Value": "Debian 12"})
	f.run(t, "ModifyImageAttribute", []catCase{
		{name: "bad group", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "LaunchPermission.Add.1.Group": "everyone"}, code: "InvalidAMIAttributeItemValue"},
		{name: "bad user", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "LaunchPermission.Add.1.UserId": "bob"}, code: "InvalidAMIAttributeItemValue"},
		{name: "no operation", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "UserId.1": f.bob}, code: "MissingParameter"},
		{name: "nothing", account: f.alice, params: queryapi.Params{"ImageId": f.machine}, code: "MissingParameter"},
		{name: "unknown attribute", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "Attribute": "kernel", "Value": "x"}, code: "InvalidParameterValue"},
		{name: "not the owner", account: f.bob, params: queryapi.Params{"ImageId": f.machine, "LaunchPermission.Add.1.Group": "all"}, code: "AuthFailure"},
		{name: "not visible", account: f.admin, params: queryapi.Params{"ImageId": f.machine, "LaunchPermission.Add.1.Group": "all"}, code: "InvalidAMIID.NotFound"},
	})
	launch := func(want ...map[string]any) func(t *testing.T, r map[string]any) {
		return func(t *testing.T, r map[string]any) {
			got := catList(t, r, "LaunchPermissions")
			if len(got) != len(want) {
				t.Fatalf("launch permissions %v, want %v", got, want)
			}
			for i := range want {
				for k, v := range want[i] {
					if got[i][k] != v {
						t.Fatalf("launch permissions %v, want %v", got, want)
					}
				}
			}
		}
	}
	f.run(t, "DescribeImageAttribute", []catCase{
		{name: "launch", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "Attribute": "launchPermission"}, check: launch(map[string]any{"UserId": f.bob})},
		{name: "launch by another", account: f.bob, params: queryapi.Params{"ImageId": f.machine, "Attribute": "launchPermission"}, code: "AuthFailure"},
		{name: "description by another", account: f.bob, params: queryapi.Params{"ImageId": f.machine, "Attribute": "description"},
			check: func(t *testing.T, r map[string]any) {
				if d := r["Description"].(map[string]any); d["Value"] != "Debian 12" {
					t.Fatalf("%v", r)
				}
			}},
		{name: "kernel", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "Attribute": "kernel"}, check: func(t *testing.T, r map[string]any) {
			if k := r["KernelId"].(map[string]any); k["Value"] != f.kernel {
				t.Fatalf("%v", r)
			}
		}},
		{name: "block devices", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "Attribute": "blockDeviceMapping"}},
		{name: "product codes", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "Attribute": "productCodes"}},
		{name: "deregistration protection", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "Attribute": "deregistrationProtection"}},
		{name: "unknown", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "Attribute": "color"}, code: "InvalidParameterValue"},
		{name: "no attribute", account: f.alice, params: queryapi.Params{"ImageId": f.machine}, code: "MissingParameter"},
		{name: "not visible", account: f.admin, params: queryapi.Params{"ImageId": f.machine, "Attribute": "description"}, code: "InvalidAMIID.NotFound"},
	})
	f.run(t, "DescribeImages", []catCase{
		{name: "bob sees both", account: f.bob, check: catLen("Images", 2)},
		{name: "bob executable self", account: f.bob, params: queryapi.Params{"ExecutableBy.1": "self"}, check: catLen("Images", 2)},
	})
	f.change(t, "ModifyImageAttribute", queryapi.Params{"ImageId": f.machine, "LaunchPermission.Add.1.Group": "all", "LaunchPermission.Remove.1.UserId": f.bob})
	f.run(t, "DescribeImageAttribute", []catCase{
		{name: "public", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "Attribute": "launchPermission"}, check: launch(map[string]any{"Group": "all"})},
	})
	f.run(t, "DescribeImages", []catCase{
		{name: "admin sees the public one", account: f.admin, params: queryapi.Params{"ExecutableBy.1": "all"}, check: catLen("Images", 1)},
	})
	f.run(t, "ResetImageAttribute", []catCase{
		{name: "other attribute", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "Attribute": "description"}, code: "InvalidParameterValue"},
		{name: "not the owner", account: f.bob, params: queryapi.Params{"ImageId": f.kernel, "Attribute": "launchPermission"}, code: "AuthFailure"},
	})
	f.change(t, "ResetImageAttribute", queryapi.Params{"ImageId": f.machine, "Attribute": "launchPermission"})
	f.run(t, "DescribeImages", []catCase{
		{name: "admin sees nothing again", account: f.admin, check: catLen("Images", 0)},
	})
	f.run(t, "DeregisterImage", []catCase{
		{name: "malformed", account: f.alice, params: queryapi.Params{"ImageId": "debian"}, code: "InvalidAMIID.Malformed"},
		{name: "not the owner", account: f.bob, params: queryapi.Params{"ImageId": f.kernel}, code: "AuthFailure"},
		{name: "dry run", account: f.alice, params: queryapi.Params{"ImageId": f.machine, "DryRun": "true"}, code: "DryRunOperation"},
		{name: "deregister", account: f.alice, params: queryapi.Params{"ImageId": f.machine}, check: func(t *testing.T, r map[string]any) {
			if r["Return"] != true {
				t.Fatalf("%v", r)
			}
		}},
		{name: "again", account: f.alice, params: queryapi.Params{"ImageId": f.machine}, code: "InvalidAMIID.NotFound"},
	})
}
