// Package cloud starts the processes a benchmark measures (euca, moto_server)
// on ports of their own, stops them by their PID only, and takes euca's
// admin credentials as a user does (euca credentials, unzip, source eucarc).
// bench/ec2 and bench/launch both start their clouds with it.
package cloud

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

// Within is how long Start waits for a process to listen.
const Within = 90 * time.Second

// Process is one started process under test.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// FreePort is a loopback TCP port nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs cmd with its output appended to logPath (a restarted cloud
// keeps one log) and waits until port accepts connections on loopback.
func Start(name string, cmd *exec.Cmd, logPath string, port int) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(Within)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited at start (%s): %s", name, logPath, Tail(logPath))
		default:
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s did not listen on %d within %v (%s): %s", name, port, Within, logPath, Tail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGINT to the process Start started and waits; after 30 s it
// kills it. A nil Process is already stopped.
func (p *Process) Stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Tail is the end of a log, for an error message.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// Env is the environment the admin's eucarc exports (EC2_*, AWS_*, S3_*,
// EUCA*), as KEY=VALUE.
type Env []string

// Get is key's value, or "".
func (e Env) Get(key string) string {
	for _, kv := range e {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Credentials runs credentials, an `euca credentials --account admin --zip
// zipPath` the caller builds (so that it can run it as another user), unzips
// the zip into dir and sources its eucarc there in a clean shell, keeping
// what it exports.
func Credentials(credentials *exec.Cmd, zipPath, dir string) (Env, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if out, err := credentials.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("euca credentials: %v: %s", err, out)
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f.Name)), b, 0o600); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command("bash", "-c", "set -a; . ./eucarc; set +a; env -0")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("source eucarc: %w", err)
	}
	var env Env
	for _, kv := range strings.Split(string(out), "\x00") {
		k, _, ok := strings.Cut(kv, "=")
		if ok && (strings.HasPrefix(k, "EC2_") || strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "S3_") || strings.HasPrefix(k, "EUCA")) {
			env = append(env, kv)
		}
	}
	return env, nil
}
