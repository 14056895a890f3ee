package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/logbuf"
)

// TestMakeRun: `make run` as a new user meets it, on a terminal (script(1)
// gives it one), with the roles that need no root and a stand-in guest of
// random bytes (registration bundles any bytes; nothing boots). The banner
// tells the README's commands; Ctrl-C stops the cloud and make exits 0.
// Then scripts/run.sh without a terminal, stopped by SIGTERM: exit 0.
func TestMakeRun(t *testing.T) {
	Need(t, "make", "script", "aws", "unzip")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	guest := t.TempDir()
	for name, size := range map[string]int{"vmlinuz": 64 << 10, "initrd.img": 64 << 10, "root.img": 256 << 10} {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i * 7)
		}
		os.WriteFile(filepath.Join(guest, name), b, 0o644)
	}
	rundir := t.TempDir()
	port, mdport := freePort(t), freePort(t)
	vars := fmt.Sprintf("RUNDIR=%s PORT=%d METADATA_PORT=%d ROLES=clc,walrus GUEST=%s", rundir, port, mdport, guest)
	t.Cleanup(func() {
		// Whatever happened, no cloud is left running.
		if b, err := os.ReadFile(filepath.Join(rundir, "euca.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})

	// On a terminal, through make.
	var out logbuf.Buffer
	cmd := exec.Command("script", "-qefc", "make run "+vars, "/dev/null")
	cmd.Dir = root
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = &out, &out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	banner := waitFor(t, &out, done, "aws ec2 get-console-output", 8*time.Minute)
	for _, cmdName := range []string{"aws ec2 create-key-pair", "aws ec2 run-instances"} {
		got := lineWith(banner, cmdName)
		got = regexp.MustCompile(`emi-[0-9a-f]+`).ReplaceAllString(got, "emi-...")
		if want := lineWith(string(readme), cmdName); got == "" || got != want {
			t.Errorf("the banner's %s line differs from the README's:\nbanner %q\nREADME %q", cmdName, got, want)
		}
	}
	if strings.Contains(banner, "Bundling image") || strings.Contains(banner, "level=INFO") {
		t.Errorf("progress bars or log lines on the terminal around the banner:\n%s", banner)
	}
	io.WriteString(stdin, "\x03") // Ctrl-C
	select {
	case err := <-done:
		if err != nil || strings.Contains(out.String(), "make: ***") {
			t.Fatalf("make run after Ctrl-C: %v\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("make run did not end after Ctrl-C:\n%s", out.String())
	}
	if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
		c.Close()
		t.Fatalf("the cloud still listens after Ctrl-C:\n%s", out.String())
	}

	// Without a terminal (a service manager, a CI job), SIGTERM.
	var out2 logbuf.Buffer
	run := exec.Command("scripts/run.sh")
	run.Dir = root
	run.Env = append(cleanEnv(), "BIN=bin/euca", "RUNDIR="+rundir, "PORT="+strconv.Itoa(port), "ROLES=clc,walrus", "GUEST="+guest)
	run.Stdout, run.Stderr = &out2, &out2
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	done2 := make(chan error, 1)
	go func() { done2 <- run.Wait() }()
	waitFor(t, &out2, done2, "The cloud is up", 5*time.Minute)
	run.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done2:
		if err != nil {
			t.Fatalf("scripts/run.sh after SIGTERM: %v\n%s", err, out2.String())
		}
	case <-time.After(2 * time.Minute):
		run.Process.Kill()
		t.Fatalf("scripts/run.sh did not end after SIGTERM:\n%s", out2.String())
	}
}

// waitFor waits until out holds want, failing if the process ends first.
func waitFor(t *testing.T, out *logbuf.Buffer, done chan error, want string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(out.String(), want) {
		select {
		case err := <-done:
			t.Fatalf("ended (%v) before %q:\n%s", err, want, out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v:\n%s", want, limit, out.String())
		}
	}
	return out.String()
}

// lineWith is the first line of s holding sub, trimmed.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r", ""), "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// TestInstallStepsWaitForAptLock: the install steps of CI, `make libvirt`
// and `make guest-image` give apt DPkg::Lock::Timeout, so that an install
// waits for another apt or dpkg (an unattended upgrade, a parallel install)
// instead of failing at once.
func TestInstallStepsWaitForAptLock(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	apt := regexp.MustCompile(`\bapt-get\s+(-\S+\s+)*(update|install)\b`)
	for _, f := range []string{".ci/run", "scripts/libvirt-up.sh", "scripts/guest-image.sh"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") || !apt.MatchString(line) {
				continue
			}
			n++
			if !strings.Contains(line, "DPkg::Lock::Timeout") && !strings.Contains(line, "APT_WAIT") {
				t.Errorf("%s:%d: apt-get without DPkg::Lock::Timeout: %s", f, i+1, strings.TrimSpace(line))
			}
		}
		if n == 0 {
			t.Errorf("%s: no apt-get step found", f)
		}
	}
}
