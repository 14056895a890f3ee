package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one process under test (euca or moto_server) on a port of its
// own, stopped by its PID only.
type server struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

// nobody is the unprivileged user euca runs as when the benchmark runs as
// root: without root the cluster controller sets up no network (no bridge,
// taps, nftables or DHCP for 10,000 simulated instances), so the figures
// are the API's, the store's and the controllers', and a benchmark on a
// shared host cannot touch another cloud's bridge.
const nobody = 65534

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer runs cmd with its output in logPath and waits until port
// accepts connections.
func startServer(name string, cmd *exec.Cmd, logPath string, port int) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("%s exited at start: %s", name, tail(logPath))
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s did not listen on %d within 90s: %s", name, port, tail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGINT to the process it started and waits; after 30 s it
// kills it.
func (s *server) stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// tail is the end of a log, for an error message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// startMoto runs moto's server (moto_server -p PORT) and returns it with an
// endpoint for it. moto accepts any key; its region is us-east-1.
func startMoto(dir string, conns int) (*server, *endpoint, error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command("moto_server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s, err := startServer("moto", cmd, filepath.Join(dir, "moto.log"), port)
	if err != nil {
		return nil, nil, err
	}
	ep, err := newEndpoint("moto", fmt.Sprintf("http://127.0.0.1:%d/", port), "AKIABENCHMOTO0000000", "bench-moto-secret", "us-east-1", conns)
	if err != nil {
		s.stop()
		return nil, nil, err
	}
	return s, ep, nil
}

// euca is one `euca --roles=all --driver sim` on a throwaway EUCALYPTUS.
type euca struct {
	*server
	bin, dir, conf string
	env            []string // the admin's eucarc, sourced
}

// startEuca writes a configuration sized for instances m1.small (MAX_CORES,
// MAX_MEM and MAX_DISK size the simulated host), starts euca with every
// role over the sim driver and takes the admin's credentials as a user does.
func startEuca(bin, dir string, instances, conns int) (*euca, *endpoint, error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	mdPort, err := freePort()
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
LOGLEVEL="WARN"
INSTANCE_PATH=%q
MAX_CORES="%d"
MAX_MEM="%d"
MAX_DISK="%d"
`, filepath.Join(dir, "euca"), port, mdPort, filepath.Join(dir, "instances"), room, room*128, room*2)
	if err := os.WriteFile(e.conf, []byte(conf), 0o644); err != nil {
		return nil, nil, err
	}
	if os.Geteuid() == 0 {
		if err := chownTree(dir, nobody, nobody); err != nil {
			return nil, nil, err
		}
	}
	cmd := e.command("--roles=all", "--driver", "sim", "--conf", e.conf)
	if e.server, err = startServer("euca", cmd, filepath.Join(dir, "euca.log"), port); err != nil {
		return nil, nil, err
	}
	if err := e.credentials(); err != nil {
		e.stop()
		return nil, nil, err
	}
	ep, err := newEndpoint("euca", e.getenv("EC2_URL"), e.getenv("AWS_ACCESS_KEY_ID"), e.getenv("AWS_SECRET_ACCESS_KEY"), e.getenv("AWS_DEFAULT_REGION"), conns)
	if err != nil {
		e.stop()
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

// credentials takes the admin's zip (euca credentials), unzips it and
// keeps the environment its eucarc exports.
func (e *euca) credentials() error {
	zipPath := filepath.Join(e.dir, "admin.zip")
	if out, err := e.command("--conf", e.conf, "credentials", "--account", "admin", "--zip", zipPath).CombinedOutput(); err != nil {
		return fmt.Errorf("euca credentials: %v: %s", err, out)
	}
	d := filepath.Join(e.dir, "creds")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, filepath.Base(f.Name)), b, 0o600); err != nil {
			return err
		}
	}
	cmd := exec.Command("bash", "-c", "set -a; . ./eucarc; set +a; env -0")
	cmd.Dir = d
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("source eucarc: %w", err)
	}
	for _, kv := range strings.Split(string(out), "\x00") {
		k, _, ok := strings.Cut(kv, "=")
		if ok && (strings.HasPrefix(k, "EC2_") || strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "S3_") || strings.HasPrefix(k, "EUCA")) {
			e.env = append(e.env, kv)
		}
	}
	if e.getenv("EC2_URL") == "" || e.getenv("AWS_ACCESS_KEY_ID") == "" {
		return fmt.Errorf("the admin's eucarc exports no EC2_URL or AWS_ACCESS_KEY_ID")
	}
	return nil
}

func (e *euca) getenv(key string) string {
	for _, kv := range e.env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
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
