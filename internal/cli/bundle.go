package cli

// The image bundle commands, with the flags and environment of
// euca-bundle-image, euca-upload-bundle, euca-delete-bundle and
// euca-unbundle (euca2ools 3.x), so that a user who sourced eucarc can type
// what the Eucalyptus guides say with "euca " in front.

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/walrus/bundle"
	"github.com/euca-cloud/euca/walrus/bundle/s3client"
)

// BundleCommands are bundle-image, upload-bundle, delete-bundle and
// unbundle.
func BundleCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:  "bundle-image",
			Usage: "prepare an image for uploading to the cloud (euca-bundle-image)",
			Description: "Tars, compresses, encrypts and splits the image into DIR/PREFIX.part.NN and writes\n" +
				"DIR/PREFIX.manifest.xml, signed with your key. Credentials come from a sourced eucarc\n" +
				"(EC2_CERT, EC2_PRIVATE_KEY, EC2_USER_ID, EUCALYPTUS_CERT) unless given.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "image", Aliases: []string{"i"}, Required: true, Usage: "`FILE` containing the image to bundle (- for standard input, with --prefix and --image-size)"},
				&cli.StringFlag{Name: "prefix", Aliases: []string{"p"}, Usage: "file name prefix of the bundle's files (default: the image's file name)"},
				&cli.StringFlag{Name: "destination", Aliases: []string{"d"}, Usage: "`DIR` to write the bundle to (default: a new directory under $TMPDIR, $TEMP, $TMP or /var/tmp)"},
				&cli.StringFlag{Name: "arch", Aliases: []string{"r"}, Value: "x86_64", Usage: "the image's architecture: i386, x86_64, armhf, ppc, ppc64 or ppc64le"},
				&cli.StringFlag{Name: "privatekey", Aliases: []string{"k"}, EnvVars: []string{"EC2_PRIVATE_KEY", "EUCA_PRIVATE_KEY"}, Usage: "`FILE` with your private key, to sign the manifest"},
				&cli.StringFlag{Name: "cert", Aliases: []string{"c"}, EnvVars: []string{"EC2_CERT", "EUCA_CERT"}, Usage: "`FILE` with your X.509 certificate"},
				&cli.StringFlag{Name: "ec2cert", EnvVars: []string{"EUCALYPTUS_CERT"}, Usage: "`FILE` with the cloud's X.509 certificate"},
				&cli.StringFlag{Name: "user", Aliases: []string{"u"}, EnvVars: []string{"EC2_USER_ID"}, Usage: "your `ACCOUNT` id"},
				&cli.StringFlag{Name: "kernel", Usage: "`ID` of the kernel (eki-…) the machine image boots, or \"true\" to bundle a kernel image"},
				&cli.StringFlag{Name: "ramdisk", Usage: "`ID` of the ramdisk (eri-…) the machine image boots, or \"true\" to bundle a ramdisk image"},
				&cli.StringFlag{Name: "block-device-mappings", Aliases: []string{"B"}, Usage: "`VIRTUAL1=DEVICE1,…` default block device mapping of a machine image"},
				&cli.StringFlag{Name: "productcodes", Usage: "`CODE1,CODE2,…` product codes of a machine image"},
				&cli.StringFlag{Name: "image-size", Usage: "the image's `SIZE` (needed when bundling standard input)"},
				&cli.StringFlag{Name: "image-type", Value: bundle.TypeMachine, Hidden: true},
				&cli.StringFlag{Name: "part-size", Value: strconv.Itoa(bundle.DefaultPartSize), Hidden: true},
				&cli.BoolFlag{Name: "batch", Hidden: true},
				&cli.BoolFlag{Name: "no-progress", Usage: "do not show progress"},
			},
			Action: BundleImage,
		},
		{
			Name:  "upload-bundle",
			Usage: "upload a bundle made by bundle-image to the cloud (euca-upload-bundle)",
			Description: "Creates the bucket if needed, uploads the parts then the manifest with the canned ACL\n" +
				"(aws-exec-read: the cloud may read them to register the image). Credentials and endpoint\n" +
				"come from a sourced eucarc (S3_URL, EC2_ACCESS_KEY, EC2_SECRET_KEY) unless given.",
			Flags: append(s3Flags(),
				&cli.StringFlag{Name: "bucket", Aliases: []string{"b"}, Required: true, Usage: "`BUCKET[/PREFIX]` to upload the bundle to"},
				&cli.StringFlag{Name: "manifest", Aliases: []string{"m"}, Required: true, Usage: "the bundle's manifest `FILE`"},
				&cli.StringFlag{Name: "acl", Value: "aws-exec-read", Usage: "canned ACL of the bundle's objects: aws-exec-read, public-read or ec2-bundle-read"},
				&cli.StringFlag{Name: "directory", Aliases: []string{"d"}, Usage: "`DIR` holding the parts (default: the manifest's)"},
				&cli.IntFlag{Name: "part", Usage: "begin with part `N`, skipping those already uploaded"},
				&cli.StringFlag{Name: "location", Usage: "location constraint of a bucket to create"},
				&cli.BoolFlag{Name: "retry", Usage: "retry failed uploads up to 5 times"},
				&cli.BoolFlag{Name: "skipmanifest", Usage: "do not upload the manifest"},
				&cli.BoolFlag{Name: "no-progress", Usage: "do not show progress"},
			),
			Action: UploadBundle,
		},
		{
			Name:  "delete-bundle",
			Usage: "delete an uploaded bundle (euca-delete-bundle)",
			Flags: append(s3Flags(),
				&cli.StringFlag{Name: "bucket", Aliases: []string{"b"}, Required: true, Usage: "`BUCKET[/PREFIX]` holding the bundle"},
				&cli.StringFlag{Name: "manifest", Aliases: []string{"m"}, Usage: "a local manifest `FILE` naming what to delete"},
				&cli.StringFlag{Name: "prefix", Aliases: []string{"p"}, Usage: "delete the bundle whose manifest is `PREFIX`.manifest.xml in the bucket"},
				&cli.BoolFlag{Name: "clear", Usage: "delete the bucket as well, if it is then empty"},
			),
			Action: DeleteBundle,
		},
		{
			Name:  "unbundle",
			Usage: "recreate an image from its bundle (euca-unbundle)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "manifest", Aliases: []string{"m"}, Required: true, Usage: "the bundle's manifest `FILE`"},
				&cli.StringFlag{Name: "privatekey", Aliases: []string{"k"}, EnvVars: []string{"EC2_PRIVATE_KEY"}, Usage: "`FILE` with the private key the bundle was made for"},
				&cli.StringFlag{Name: "source", Aliases: []string{"s"}, Value: ".", Usage: "`DIR` holding the parts"},
				&cli.StringFlag{Name: "destination", Aliases: []string{"d"}, Value: ".", Usage: "`DIR` to write the image to"},
				&cli.BoolFlag{Name: "no-progress", Usage: "do not show progress"},
			},
			Action: Unbundle,
		},
	}
}

// BundleImage is euca bundle-image.
func BundleImage(c *cli.Context) error {
	o := bundle.Options{Arch: c.String("arch"), ImageType: c.String("image-type"), BundlerName: "euca", BundlerVersion: c.App.Version}
	switch o.Arch {
	case "i386", "x86_64", "armhf", "ppc", "ppc64", "ppc64le":
	default:
		return fmt.Errorf("argument -r/--arch: invalid choice %q (choose from i386, x86_64, armhf, ppc, ppc64, ppc64le)", o.Arch)
	}
	var err error
	if o.PartSize, err = parseSize(c.String("part-size")); err != nil || o.PartSize < 1 {
		return fmt.Errorf("argument --part-size: %q is not a size", c.String("part-size"))
	}
	// --kernel true and --ramdisk true bundle a kernel or a ramdisk, as in
	// euca-bundle-image.
	kernel, ramdisk := c.String("kernel"), c.String("ramdisk")
	switch {
	case kernel == "true":
		o.ImageType = bundle.TypeKernel
	case ramdisk == "true":
		o.ImageType = bundle.TypeRamdisk
	}
	switch o.ImageType {
	case bundle.TypeKernel:
		if ramdisk != "" {
			return errors.New("argument --ramdisk: not compatible with image type 'kernel'")
		}
		if kernel != "" && kernel != "true" {
			return errors.New("argument --kernel: not compatible with image type 'kernel'")
		}
	case bundle.TypeRamdisk:
		if kernel != "" {
			return errors.New("argument --kernel: not compatible with image type 'ramdisk'")
		}
		if ramdisk != "" && ramdisk != "true" {
			return errors.New("argument --ramdisk: not compatible with image type 'ramdisk'")
		}
	case bundle.TypeMachine:
		o.KernelID, o.RamdiskID = kernel, ramdisk
	default:
		return fmt.Errorf("argument --image-type: invalid choice %q", o.ImageType)
	}
	if s := c.String("block-device-mappings"); s != "" {
		if o.ImageType != bundle.TypeMachine {
			return fmt.Errorf("argument -B/--block-device-mappings: not compatible with image type '%s'", o.ImageType)
		}
		if o.BlockDeviceMappings, err = parseMappings(s); err != nil {
			return err
		}
	}
	for _, pc := range strings.Split(c.String("productcodes"), ",") {
		if pc = strings.TrimSpace(pc); pc != "" {
			o.ProductCodes = append(o.ProductCodes, pc)
		}
	}

	// Credentials: flags, else the eucarc environment.
	o.UserID = strings.ReplaceAll(c.String("user"), "-", "")
	if o.UserID == "" {
		return errors.New("missing account ID; please supply one with --user (or source eucarc: EC2_USER_ID)")
	}
	if o.UserCert, err = loadCert(c.String("cert"), "certificate", "-c", "EC2_CERT"); err != nil {
		return err
	}
	if o.UserKey, err = loadKey(c.String("privatekey"), "-k", "EC2_PRIVATE_KEY"); err != nil {
		return err
	}
	if o.CloudCert, err = loadCert(c.String("ec2cert"), "cloud certificate", "--ec2cert", "EUCALYPTUS_CERT"); err != nil {
		return err
	}

	dest := c.String("destination")
	if dest == "" {
		base := firstEnv("TMPDIR", "TEMP", "TMP")
		if base == "" {
			base = "/var/tmp"
		}
		if dest, err = os.MkdirTemp(base, "bundle-"); err != nil {
			return err
		}
	} else if st, err := os.Stat(dest); err == nil && !st.IsDir() {
		return fmt.Errorf("argument -d/--destination: '%s' is not a directory", dest)
	}

	ctx := background(c)
	prog := newProgress(c, "Bundling image")
	o.Progress = prog.update
	o.Prefix = c.String("prefix")
	var res *bundle.Result
	if image := c.String("image"); image == "-" {
		if o.Prefix == "" || c.String("image-size") == "" {
			return errors.New("arguments --prefix and --image-size are required when bundling standard input")
		}
		size, err := parseSize(c.String("image-size"))
		if err != nil {
			return fmt.Errorf("argument --image-size: %q is not a size", c.String("image-size"))
		}
		res, err = bundle.CreateFrom(ctx, os.Stdin, size, dest, o)
		prog.done()
		if err != nil {
			return err
		}
	} else {
		res, err = bundle.CreateResult(ctx, image, dest, o)
		prog.done()
		if err != nil {
			return err
		}
	}
	fmt.Fprintln(c.App.Writer, "Wrote manifest", res.ManifestPath)
	return nil
}

// UploadBundle is euca upload-bundle.
func UploadBundle(c *cli.Context) error {
	client, err := s3FromFlags(c)
	if err != nil {
		return err
	}
	bucket, prefix := splitBucket(c.String("bucket"))
	switch acl := c.String("acl"); acl {
	case "aws-exec-read", "public-read", "ec2-bundle-read":
	default:
		return fmt.Errorf("argument --acl: invalid choice %q (choose from public-read, aws-exec-read, ec2-bundle-read)", acl)
	}
	manifestPath := c.String("manifest")
	m, err := readManifest(manifestPath)
	if err != nil {
		return err
	}
	dir := c.String("directory")
	if dir == "" {
		dir = filepath.Dir(manifestPath)
	}
	// All parts must be there before anything is sent.
	var paths []string
	for _, p := range m.Parts[min(max(c.Int("part"), 0), len(m.Parts)):] {
		path := filepath.Join(dir, p.Filename)
		if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("bundle part %s is missing", path)
		}
		paths = append(paths, path)
	}
	ctx := background(c)
	exists, err := client.HeadBucket(ctx, bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	if !exists {
		if err := client.CreateBucket(ctx, bucket, c.String("location")); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucket, err)
		}
	}
	tries := 1
	if c.Bool("retry") {
		tries = 5
	}
	upload := func(path string) error {
		key := prefix + filepath.Base(path)
		prog := newProgress(c, filepath.Base(path))
		defer prog.done()
		var err error
		for try := 1; try <= tries; try++ {
			if err = client.PutFile(ctx, bucket, key, path, c.String("acl"), prog.update); err == nil || ctx.Err() != nil {
				break
			}
			if try < tries {
				fmt.Fprintf(os.Stderr, "upload of %s failed (%v); retrying\n", path, err)
				time.Sleep(time.Duration(try) * time.Second)
			}
		}
		if err != nil {
			return fmt.Errorf("upload %s to %s/%s: %w", path, bucket, key, err)
		}
		return nil
	}
	for _, path := range paths {
		if err := upload(path); err != nil {
			return err
		}
	}
	if !c.Bool("skipmanifest") {
		if err := upload(manifestPath); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.App.Writer, "Uploaded %s/%s%s\n", bucket, prefix, filepath.Base(manifestPath))
	return nil
}

// DeleteBundle is euca delete-bundle.
func DeleteBundle(c *cli.Context) error {
	client, err := s3FromFlags(c)
	if err != nil {
		return err
	}
	bucket, prefix := splitBucket(c.String("bucket"))
	local, named := c.String("manifest"), c.String("prefix")
	if (local == "") == (named == "") {
		return errors.New("one of the arguments -m/--manifest -p/--prefix is required")
	}
	ctx := background(c)
	exists, err := client.HeadBucket(ctx, bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	if !exists {
		return fmt.Errorf("bucket %s does not exist", bucket)
	}
	var m *bundle.Manifest
	var manifestKey string
	if local != "" {
		if m, err = readManifest(local); err != nil {
			return err
		}
		manifestKey = prefix + filepath.Base(local)
	} else {
		manifestKey = prefix + named + ".manifest.xml"
		raw, err := client.Get(ctx, bucket, manifestKey, bundle.MaxManifestSize)
		if s3client.IsCode(err, "NoSuchKey") {
			return fmt.Errorf("manifest file '%s' does not exist in bucket '%s'", manifestKey, bucket)
		}
		if err != nil {
			return err
		}
		if m, err = bundle.ParseManifest(raw); err != nil {
			return fmt.Errorf("%s/%s: %w", bucket, manifestKey, err)
		}
	}
	for _, p := range m.Parts {
		if err := client.Delete(ctx, bucket, prefix+p.Filename); err != nil {
			return fmt.Errorf("delete %s/%s%s: %w", bucket, prefix, p.Filename, err)
		}
	}
	if err := client.Delete(ctx, bucket, manifestKey); err != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, manifestKey, err)
	}
	if c.Bool("clear") {
		if err := client.DeleteBucket(ctx, bucket); err != nil {
			return fmt.Errorf("delete bucket %s: %w", bucket, err)
		}
	}
	return nil
}

// Unbundle is euca unbundle: the image back from a bundle on disk, with the
// user's key (or the cloud's, for an administrator).
func Unbundle(c *cli.Context) error {
	m, err := readManifest(c.String("manifest"))
	if err != nil {
		return err
	}
	priv, err := loadKey(c.String("privatekey"), "-k", "EC2_PRIVATE_KEY")
	if err != nil {
		return err
	}
	key, iv, err := m.DecryptUserKey(priv)
	if err != nil {
		if key, iv, err = m.DecryptKey(priv); err != nil {
			return err
		}
	}
	if strings.ContainsAny(m.Name, `/\`) || m.Name == "." || m.Name == ".." {
		return fmt.Errorf("the manifest names the image %q, which is not a file name", m.Name)
	}
	dest := c.String("destination")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	out := filepath.Join(dest, m.Name)
	tmp, err := os.CreateTemp(dest, ".unbundle-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	src := c.String("source")
	prog := newProgress(c, "Unbundling image")
	var read int64
	open := func(name string) (io.ReadCloser, error) {
		f, err := os.Open(filepath.Join(src, name))
		if err != nil {
			return nil, err
		}
		return &countingReadCloser{f, func(n int) { read += int64(n); prog.update(read, m.BundledSize) }}, nil
	}
	_, _, err = bundle.Unbundle(background(c), m, key, iv, open, tmp)
	prog.done()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, "Wrote", out)
	return nil
}

type countingReadCloser struct {
	io.ReadCloser
	fn func(int)
}

func (r *countingReadCloser) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.fn(n)
	return n, err
}

// s3Flags are the connection flags of euca2ools' Walrus commands, with the
// eucarc variables as defaults.
func s3Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "url", Aliases: []string{"U"}, EnvVars: []string{"S3_URL", "AWS_ENDPOINT_URL_S3"}, Usage: "object storage service `URL`"},
		&cli.StringFlag{Name: "access-key-id", Aliases: []string{"I"}, EnvVars: []string{"EC2_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"}, Usage: "access key `ID`"},
		&cli.StringFlag{Name: "secret-key", Aliases: []string{"S"}, EnvVars: []string{"EC2_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"}, Usage: "secret `KEY`"},
		&cli.StringFlag{Name: "security-token", EnvVars: []string{"AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"}, Usage: "session `TOKEN` of temporary credentials"},
		&cli.StringFlag{Name: "region", EnvVars: []string{"AWS_DEFAULT_REGION", "AWS_REGION"}, Usage: "`REGION` to sign requests for"},
	}
}

func s3FromFlags(c *cli.Context) (*s3client.Client, error) {
	if c.String("url") == "" {
		return nil, errors.New("no object storage URL; supply one with -U/--url (or source eucarc: S3_URL)")
	}
	if c.String("access-key-id") == "" || c.String("secret-key") == "" {
		return nil, errors.New("no credentials; supply -I/--access-key-id and -S/--secret-key (or source eucarc)")
	}
	return s3client.New(c.String("url"), c.String("access-key-id"), c.String("secret-key"), c.String("security-token"), c.String("region"))
}

// splitBucket splits BUCKET[/PREFIX] into the bucket and a key prefix that
// is empty or ends in a slash.
func splitBucket(s string) (bucket, prefix string) {
	bucket, prefix, _ = strings.Cut(strings.TrimPrefix(s, "/"), "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return bucket, prefix
}

func readManifest(path string) (*bundle.Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, bundle.MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func loadCert(path, what, flag, env string) (*x509.Certificate, error) {
	if path == "" {
		return nil, fmt.Errorf("missing %s; please supply one with %s (or source eucarc: %s)", what, flag, env)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s file: %w", what, err)
	}
	cert, err := pki.ParseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s file %s: %w", what, path, err)
	}
	return cert, nil
}

func loadKey(path, flag, env string) (*rsa.PrivateKey, error) {
	if path == "" {
		return nil, fmt.Errorf("missing private key; please supply one with %s (or source eucarc: %s)", flag, env)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("private key file: %w", err)
	}
	key, err := pki.ParseRSAKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("private key file %s: %w", path, err)
	}
	return key, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// parseSize reads a size as euca2ools does: a number of bytes with an
// optional k, m, g or t (powers of 1024) and an optional b.
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "b")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("kmgt", t[n-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return v * mult, nil
}

// parseMappings reads VIRTUAL1=DEVICE1,VIRTUAL2=DEVICE2.
func parseMappings(s string) ([]bundle.Mapping, error) {
	var out []bundle.Mapping
	for _, m := range strings.Split(s, ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		v, d, ok := strings.Cut(m, "=")
		if !ok || strings.Contains(d, "=") || strings.TrimSpace(v) == "" || strings.TrimSpace(d) == "" {
			return nil, fmt.Errorf("argument -B/--block-device-mappings: invalid device mapping '%s' (must have format 'VIRTUAL=DEVICE')", m)
		}
		out = append(out, bundle.Mapping{Virtual: strings.TrimSpace(v), Device: strings.TrimSpace(d)})
	}
	return out, nil
}

// progress draws a progress line on a terminal's stderr, and nothing when
// stderr is a file or pipe (a log would fill with carriage returns).
type progress struct {
	label string
	on    bool
	last  time.Time
	shown bool
}

func newProgress(c *cli.Context, label string) *progress {
	p := &progress{label: label}
	if !c.Bool("no-progress") {
		if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	return p
}

func (p *progress) update(done, total int64) {
	if !p.on || (time.Since(p.last) < 200*time.Millisecond && done != total) {
		return
	}
	p.last = time.Now()
	pct := 100
	if total > 0 {
		pct = int(done * 100 / total)
	}
	fmt.Fprintf(os.Stderr, "\r%s %3d%% %s / %s ", p.label, pct, humanBytes(done), humanBytes(total))
	p.shown = true
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(os.Stderr)
		p.shown = false
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
