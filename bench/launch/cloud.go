package main

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/euca-cloud/euca/bench/internal/cloud"
)

// eucaCloud is one `euca --roles=all` process on a throwaway EUCALYPTUS, and the
// admin's credentials for it. Stop and start again keep the directory (the
// cold rounds restart it).
type eucaCloud struct {
	bin, dir, conf string
	instPath       string
	logPath        string
	port           int
	proc           *cloud.Process
	env            cloud.Env // the admin's eucarc, sourced
}

// newCloud writes the configuration: HYPERVISOR="qemu" (TCG: this kind of
// machine's KVM hangs stock guests), every port random, INSTANCE_PATH
// inside the directory so that the cold rounds can empty the NC's cache.
func newCloud(bin, dir string) (*eucaCloud, error) {
	c := &eucaCloud{bin: bin, dir: dir, conf: filepath.Join(dir, "eucalyptus.conf"),
		instPath: filepath.Join(dir, "instances"), logPath: filepath.Join(dir, "euca.log")}
	var err error
	if c.port, err = cloud.FreePort(); err != nil {
		return nil, err
	}
	mdPort, err := cloud.FreePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("EUCALYPTUS=%q\nCLOUD_PORT=\"%d\"\nMETADATA_PORT=\"%d\"\nLOGLEVEL=\"DEBUG\"\nHYPERVISOR=\"qemu\"\nINSTANCE_PATH=%q\n",
		filepath.Join(dir, "euca"), c.port, mdPort, c.instPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return c, os.WriteFile(c.conf, []byte(conf), 0o644)
}

// start runs euca and waits until it listens; the log is appended to
// euca.log, which the report reads for the launch's timeline.
func (c *eucaCloud) start() error {
	var err error
	c.proc, err = cloud.Start("euca", exec.Command(c.bin, "--roles=all", "--conf", c.conf), c.logPath, c.port)
	if err != nil {
		return err
	}
	if c.env == nil {
		return c.credentials()
	}
	return nil
}

// stop sends SIGINT to the process it started (by its PID) and waits; after
// 30 s it kills it.
func (c *eucaCloud) stop() {
	c.proc.Stop()
	c.proc = nil
}

// credentials takes the admin's zip as a user does (euca credentials,
// unzip, source eucarc) and keeps the environment it exports.
func (c *eucaCloud) credentials() error {
	d := filepath.Join(c.dir, "creds")
	zipPath := filepath.Join(d, "admin.zip")
	env, err := cloud.Credentials(exec.Command(c.bin, "--conf", c.conf, "credentials", "--account", "admin", "--zip", zipPath), zipPath, d)
	c.env = env
	return err
}

// clientEnv is this process's environment without a developer's own AWS
// settings, plus the eucarc's.
func (c *eucaCloud) clientEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "EC2_") {
			out = append(out, kv)
		}
	}
	out = append(out, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true")
	return append(out, c.env...)
}

// register bundles, uploads and registers the test guest's kernel, ramdisk
// and root disk as scripts/run.sh does (euca bundle-image and upload-bundle,
// then aws ec2 register-image), under names ending in suffix, and returns
// the machine image's id. Not timed.
func (c *eucaCloud) register(guest, suffix string) (string, error) {
	b := filepath.Join(c.dir, "bundles-"+suffix)
	if err := os.MkdirAll(b, 0o755); err != nil {
		return "", err
	}
	defer os.RemoveAll(b)
	run := func(name string, args ...string) (string, error) {
		cmd := exec.Command(name, args...)
		cmd.Env = c.clientEnv()
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr)
		}
		return strings.TrimSpace(string(out)), nil
	}
	one := func(file, prefix string, extra ...string) (string, error) {
		args := append([]string{"bundle-image", "-i", filepath.Join(guest, file), "-d", b, "-p", prefix}, extra...)
		if _, err := run(c.bin, args...); err != nil {
			return "", err
		}
		if _, err := run(c.bin, "upload-bundle", "-b", "bench-launch", "-m", filepath.Join(b, prefix+".manifest.xml")); err != nil {
			return "", err
		}
		return run("aws", "--endpoint-url", c.env.Get("EC2_URL"), "ec2", "register-image",
			"--image-location", "bench-launch/"+prefix+".manifest.xml", "--name", prefix, "--query", "ImageId", "--output", "text")
	}
	eki, err := one("vmlinuz", "bench-kernel-"+suffix, "--kernel", "true")
	if err != nil {
		return "", err
	}
	eri, err := one("initrd.img", "bench-ramdisk-"+suffix, "--ramdisk", "true")
	if err != nil {
		return "", err
	}
	return one("root.img", "bench-guest-"+suffix, "--kernel", eki, "--ramdisk", eri)
}

//go:embed client.py
var clientPy string

// ec2Client is the long-lived boto3 process of client.py.
type ec2Client struct {
	mu  sync.Mutex // one request on the pipe at a time
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func (c *eucaCloud) newClient() (*ec2Client, error) {
	cmd := exec.Command("python3", "-c", clientPy)
	cmd.Env = c.clientEnv()
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	cl := &ec2Client{cmd: cmd, in: in, out: bufio.NewReader(out)}
	var ready struct{ Ready bool }
	if err := cl.read(&ready); err != nil || !ready.Ready {
		cl.close()
		return nil, fmt.Errorf("boto3 client did not start: %v", err)
	}
	return cl, nil
}

func (cl *ec2Client) read(v any) error {
	line, err := cl.out.ReadBytes('\n')
	if err != nil {
		return err
	}
	var e struct{ Error string }
	_ = json.Unmarshal(line, &e)
	if err := json.Unmarshal(line, v); err != nil {
		return err
	}
	if e.Error != "" {
		return fmt.Errorf("%s", e.Error)
	}
	return nil
}

func (cl *ec2Client) call(req map[string]any, resp any) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	b, _ := json.Marshal(req)
	if _, err := cl.in.Write(append(b, '\n')); err != nil {
		return err
	}
	if resp == nil {
		resp = &struct{}{}
	}
	return cl.read(resp)
}

// close ends the client: stdin closed, then its PID waited for.
func (cl *ec2Client) close() {
	cl.in.Close()
	done := make(chan struct{})
	go func() { cl.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cl.cmd.Process.Kill()
		<-done
	}
}

type runCall struct {
	IDs  []string `json:"ids"`
	Sent float64  `json:"sent"`
	Done float64  `json:"done"`
}

// run makes `calls` RunInstances calls at once, each for count instances of
// m1.small, and returns every instance id (also on error: what started).
func (cl *ec2Client) run(image string, count, calls int) ([]string, []runCall, error) {
	var resp struct {
		Calls []runCall `json:"calls"`
	}
	err := cl.call(map[string]any{"op": "run", "image": image, "type": "m1.small", "count": count, "calls": calls}, &resp)
	var ids []string
	for _, c := range resp.Calls {
		ids = append(ids, c.IDs...)
	}
	return ids, resp.Calls, err
}

func (cl *ec2Client) terminate(ids []string) error {
	return cl.call(map[string]any{"op": "terminate", "ids": ids}, nil)
}

func (cl *ec2Client) states(ids []string) (map[string]string, error) {
	var resp struct {
		States map[string]string `json:"states"`
	}
	err := cl.call(map[string]any{"op": "states", "ids": ids}, &resp)
	return resp.States, err
}

// free is DescribeAvailabilityZones verbose's free and max m1.small.
func (cl *ec2Client) free() (free, max int, err error) {
	var resp struct{ Free, Max int }
	err = cl.call(map[string]any{"op": "free", "type": "m1.small"}, &resp)
	return resp.Free, resp.Max, err
}
