package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/euca-cloud/euca/bench/internal/cloud"
)

// nobody is the unprivileged user euca runs as when the benchmark runs as
// root: without root the cluster controller sets up no network (no bridge,
// taps, nftables or DHCP for 10,000 simulated instances), so the figures
// are the API's, the store's and the controllers', and a benchmark on a
// shared host cannot touch another cloud's bridge.
const nobody = 65534

// startMoto runs moto's server (moto_server -p PORT) and returns it with an
// endpoint for it. moto accepts any key; its region is us-east-1.
func startMoto(dir string, conns int) (*cloud.Process, *endpoint, error) {
	port, err := cloud.FreePort()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command("moto_server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s, err := cloud.Start("moto", cmd, filepath.Join(dir, "moto.log"), port)
	if err != nil {
		return nil, nil, err
	}
	ep, err := newEndpoint("moto", fmt.Sprintf("http://127.0.0.1:%d/", port), "AKIABENCHMOTO0000000", "bench-moto-secret", "us-east-1", conns)
	if err != nil {
		s.Stop()
		return nil, nil, err
	}
	return s, ep, nil
}

// euca is one `euca --roles=all --driver sim` on a throwaway EUCALYPTUS.
type euca struct {
	*cloud.Process
	bin, dir, conf string
	env            cloud.Env // the admin's eucarc, sourced
}

// startEuca writes a configuration sized for instances m1.small (MAX_CORES,
// MAX_MEM and MAX_DISK size the simulated host), starts euca with every
// role over the sim driver and takes the admin's credentials as a user does.
func startEuca(bin, dir string, instances, conns int) (*euca, *endpoint, error) {
	port, err := cloud.FreePort()
	if err != nil {
		return nil, nil, err
	}
	mdPort, err := cloud.FreePort()
	if err != nil {
		return nil, nil, err
	}
	// --roles=all includes the storage controller, whose NBD listener would
	// otherwise take SC_NBD_PORT's default beside any other cloud here.
	nbdPort, err := cloud.FreePort()
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	// Room for the instances and the ones a Run/Terminate cell has in
	// flight; m1.small is 1 core, 128 MiB, 2 GiB.
	room := instances + 1000
	e := &euca{bin: bin, dir: dir, conf: filepath.Join(dir, "eucalyptus.conf")}
	conf := fmt.Sprintf(`EUCALYPTUS=%q
CLOUD_PORT="%d"
METADATA_PORT="%d"
SC_NBD_PORT="%d"
LOGLEVEL="WARN"
INSTANCE_PATH=%q
MAX_CORES="%d"
MAX_MEM="%d"
MAX_DISK="%d"
`, filepath.Join(dir, "euca"), port, mdPort, nbdPort, filepath.Join(dir, "instances"), room, room*128, room*2)
	if err := os.WriteFile(e.conf, []byte(conf), 0o644); err != nil {
		return nil, nil, err
	}
	if os.Geteuid() == 0 {
		if err := chownTree(dir, nobody, nobody); err != nil {
			return nil, nil, err
		}
	}
	cmd := e.command("--roles=all", "--driver", "sim", "--conf", e.conf)
	if e.Process, err = cloud.Start("euca", cmd, filepath.Join(dir, "euca.log"), port); err != nil {
		return nil, nil, err
	}
	if err := e.credentials(); err != nil {
		e.Stop()
		return nil, nil, err
	}
	ep, err := newEndpoint("euca", e.env.Get("EC2_URL"), e.env.Get("AWS_ACCESS_KEY_ID"), e.env.Get("AWS_SECRET_ACCESS_KEY"), e.env.Get("AWS_DEFAULT_REGION"), conns)
	if err != nil {
		e.Stop()
		return nil, nil, err
	}
	return e, ep, nil
}

// command is euca with args, as nobody when this process is root.
func (e *euca) command(args ...string) *exec.Cmd {
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = e.dir
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		cmd.Env = append(os.Environ(), "HOME="+e.dir)
	}
	return cmd
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// credentials takes the admin's zip (euca credentials, as nobody when
// this process is root), unzips it and keeps the environment its eucarc
// exports.
func (e *euca) credentials() error {
	zipPath := filepath.Join(e.dir, "admin.zip")
	env, err := cloud.Credentials(e.command("--conf", e.conf, "credentials", "--account", "admin", "--zip", zipPath), zipPath, filepath.Join(e.dir, "creds"))
	if err != nil {
		return err
	}
	if env.Get("EC2_URL") == "" || env.Get("AWS_ACCESS_KEY_ID") == "" {
		return fmt.Errorf("the admin's eucarc exports no EC2_URL or AWS_ACCESS_KEY_ID")
	}
	e.env = env
	return nil
}

// bundleImage bundles a small file as a machine image, uploads the
// bundle to Walrus (euca bundle-image and upload-bundle, the Eucalyptus
// way) and returns the manifest's location for RegisterImage. The sim
// driver never reads the image, but the node fetches and verifies it
// through the image cache as for a real guest.
func (e *euca) bundleImage() (string, error) {
	img := filepath.Join(e.dir, "bench.img")
	if err := os.WriteFile(img, bytes.Repeat([]byte{0}, 1<<20), 0o644); err != nil {
		return "", err
	}
	b := filepath.Join(e.dir, "bundle")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.dir}
	for _, kv := range e.env {
		env = append(env, kv)
	}
	for _, args := range [][]string{
		{"bundle-image", "-i", img, "-d", b, "-p", "bench"},
		{"upload-bundle", "-b", "bench", "-m", filepath.Join(b, "bench.manifest.xml")},
	} {
		cmd := exec.Command(e.bin, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("euca %s: %v: %s", args[0], err, out)
		}
	}
	return "bench/bench.manifest.xml", nil
}
