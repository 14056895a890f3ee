// Package e2e drives a real euca binary with real clients that nobody here
// wrote: the AWS CLI and boto3 (and, for Walrus, s3cmd). Each test starts
// the binary on a free port with a throwaway EUCALYPTUS directory, takes the
// admin's credentials zip the way a user would (euca credentials, unzip,
// source eucarc), and runs the clients against it.
//
// Where a client is missing the tests skip with the reason; under CI (CI set
// in the environment) a missing client is a failure instead, so the suite
// can never pass by skipping.
package e2e

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds euca once per test run (static, as `make build` does).
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "euca-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "euca")
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Need skips the test when a client program is missing, or fails it under CI.
func Need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required under CI but not installed", p)
			}
			t.Skipf("%s not installed", p)
		}
	}
}

// Missing skips the test because of why, what the machine lacks for it, or
// fails it under CI, where nothing may be missing (as Need does for
// programs); an empty why lets it run.
func Missing(t testing.TB, why string) {
	t.Helper()
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("required under CI: %s", why)
	}
	t.Skip(why)
}

// Cloud is one running euca process.
type Cloud struct {
	Bin, Dir, Conf string
	Port           int
	MetadataPort   int
	Env            []string // the admin's eucarc, sourced
	cmd            *exec.Cmd
	log            *bytes.Buffer
	mu             sync.Mutex
}

// Start runs euca with the given roles and extra conf lines, waits until it
// listens, and loads the admin's credentials into c.Env.
func Start(t testing.TB, roles string, confLines ...string) *Cloud {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	port := freePort(t)
	c := &Cloud{Bin: bin, Dir: dir, Port: port, MetadataPort: freePort(t), Conf: filepath.Join(dir, "eucalyptus.conf"), log: &bytes.Buffer{}}
	// The storage controller's NBD port too: clouds of parallel tests
	// share the host's ports.
	conf := fmt.Sprintf("EUCALYPTUS=%q\nCLOUD_PORT=\"%d\"\nMETADATA_PORT=\"%d\"\nSC_NBD_PORT=\"%d\"\nLOGLEVEL=\"DEBUG\"\n%s\n",
		filepath.Join(dir, "euca"), port, c.MetadataPort, freePort(t), strings.Join(confLines, "\n"))
	if err := os.WriteFile(c.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(bin, "--roles="+roles, "--conf", c.Conf)
	c.cmd.Stdout = &lockedWriter{&c.mu, c.log}
	c.cmd.Stderr = &lockedWriter{&c.mu, c.log}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		if c.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("euca did not start listening on %d:\n%s", port, c.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Env = c.Credentials(t, "admin")
	return c
}

// Log is what the process has printed so far.
func (c *Cloud) Log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// Stop sends SIGTERM and waits; it fails the test if euca does not stop
// cleanly.
func (c *Cloud) Stop(t testing.TB) {
	if c.cmd == nil || c.cmd.Process == nil || c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("euca exited with %v after SIGINT:\n%s", err, c.Log())
		}
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
		t.Errorf("euca did not stop within 20s of SIGINT")
	}
}

// Euca runs an admin subcommand against this cloud's configuration.
func (c *Cloud) Euca(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(c.Bin, append([]string{"--conf", c.Conf}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Credentials writes an account's zip, unzips it and sources its eucarc
// with bash, returning the environment it exports.
func (c *Cloud) Credentials(t testing.TB, account string) []string {
	t.Helper()
	return credentialsFromZip(t, filepath.Join(c.Dir, "cred-"+account), func(zipPath string) (string, error) {
		return c.Euca(t, "credentials", "--account", account, "--zip", zipPath)
	})
}

// credentialsFromZip takes credentials as a user does: euca credentials
// writes a zip (makeZip runs it, on whichever host, with the zip's path
// under dir), which is unzipped into dir and its eucarc sourced with bash;
// it returns the environment eucarc exports.
func credentialsFromZip(t testing.TB, dir string, makeZip func(zipPath string) (string, error)) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	zipPath := filepath.Join(dir, "creds.zip")
	if out, err := makeZip(zipPath); err != nil {
		t.Fatalf("euca credentials: %v\n%s", err, out)
	}
	unzip(t, zipPath, dir)
	cmd := exec.Command("bash", "-c", "set -a; . ./eucarc; set +a; env -0")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("source eucarc: %v", err)
	}
	var env []string
	for _, kv := range strings.Split(string(out), "\x00") {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if strings.HasPrefix(k, "EC2_") || strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "S3_") ||
			strings.HasPrefix(k, "EUCA") || strings.HasPrefix(k, "EUARE") || strings.HasPrefix(k, "TOKEN_") {
			env = append(env, kv)
		}
	}
	return env
}

func unzip(t testing.TB, path, dir string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("credentials zip: %v", err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, err = buf.ReadFrom(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f.Name)), buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Getenv returns a variable of the sourced eucarc.
func Getenv(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Run runs a client program with the given credentials environment and
// returns its stdout; stderr is folded into the error.
func Run(t testing.TB, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// cleanEnv is the process environment without AWS settings of the machine
// (a developer's ~/.aws profile or region must not leak into the tests).
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "EC2_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true")
}

// AWS runs the AWS CLI against the cloud's EC2 endpoint as the given
// account environment.
func (c *Cloud) AWS(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	Need(t, "aws")
	return Run(t, env, "aws", append([]string{"--endpoint-url", Getenv(env, "EC2_URL"), "--output", "json"}, args...)...)
}

// Python runs a boto3 script with the credentials environment.
func (c *Cloud) Python(t testing.TB, env []string, script string) (string, error) {
	t.Helper()
	Need(t, "python3")
	return Run(t, env, "python3", "-c", script)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Lines splits output into non-empty lines.
func Lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
