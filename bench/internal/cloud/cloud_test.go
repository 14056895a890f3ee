package cloud

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A process that listens is up once its port answers, and Stop ends it by
// its PID.
func TestStartWaitsForThePortAndStopEndsIt(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-m", "http.server", "--bind", "127.0.0.1", strconv.Itoa(port))
	p, err := Start("http.server", cmd, filepath.Join(t.TempDir(), "log"), port)
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	select {
	case <-p.exited:
	default:
		t.Fatal("the process still runs after Stop")
	}
	var none *Process
	none.Stop()
}

// A process that exits before it listens is an error that quotes its log.
func TestStartReportsAnExitWithTheLog(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "echo no configuration here; exit 3")
	_, err = Start("sh", cmd, filepath.Join(t.TempDir(), "log"), port)
	if err == nil || !strings.Contains(err.Error(), "no configuration here") {
		t.Fatalf("err = %v, want the log's last lines", err)
	}
}

func TestEnvGet(t *testing.T) {
	e := Env{"EC2_URL=http://127.0.0.1:1/", "AWS_SECRET_ACCESS_KEY=a=b"}
	if got := e.Get("AWS_SECRET_ACCESS_KEY"); got != "a=b" {
		t.Fatalf("Get = %q", got)
	}
	if got := e.Get("AWS_DEFAULT_REGION"); got != "" {
		t.Fatalf("Get of an absent key = %q", got)
	}
}
