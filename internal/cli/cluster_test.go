package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// clusterRun runs `euca ARGS...` with only the cluster command.
func clusterRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "euca", Writer: &out, ErrWriter: &out, Flags: []cli.Flag{ConfFlag()},
		Commands: []*cli.Command{ClusterCommand()}}
	err := app.Run(append([]string{"euca"}, args...))
	return out.String(), err
}

func TestClusterCommand(t *testing.T) {
	home := t.TempDir()
	confPath := filepath.Join(home, "eucalyptus.conf")
	if err := os.WriteFile(confPath, []byte(`EUCALYPTUS="`+home+`"`+"\nCC_PORT=\"8800\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args    []string
		want    string // in the output, or in the error when wantErr
		wantErr bool
	}{
		{args: []string{"cluster", "register", "us-east-1b", "10.0.1.1", "--conf", confPath}, want: "cluster us-east-1b at 10.0.1.1:8800 registered"},
		{args: []string{"--conf", confPath, "cluster", "register", "us-east-1c", "cc3.example:9000"}, want: "cluster us-east-1c at cc3.example:9000 registered"},
		{args: []string{"--conf", confPath, "cluster", "register", "us-east-1b", "10.0.1.1"}, want: "already registered"},
		{args: []string{"--conf", confPath, "cluster", "register", "us-east-1b", "10.0.1.2"}, want: "registered at 10.0.1.1", wantErr: true},
		{args: []string{"--conf", confPath, "cluster", "register", "us-east-1a", "127.0.0.1:9001"}, want: "this host's CLUSTER_NAME"},
		{args: []string{"--conf", confPath, "cluster", "register", "US_East", "10.0.1.3"}, want: "not an availability zone name", wantErr: true},
		{args: []string{"--conf", confPath, "cluster", "register", "us-east-1d", "10.0.1.4:0"}, want: "port", wantErr: true},
		{args: []string{"--conf", confPath, "cluster", "register", "us-east-1d", "http://10.0.1.4/"}, want: "want HOST or HOST:PORT", wantErr: true},
		{args: []string{"--conf", confPath, "cluster", "register", "us-east-1d"}, want: "usage", wantErr: true},
		{args: []string{"--conf", confPath, "cluster", "register", "us-east-1d", "10.0.1.4", "--bogus"}, want: "unknown flag --bogus", wantErr: true},
		{args: []string{"--conf", confPath, "cluster", "deregister", "us-east-1z"}, want: "cluster us-east-1z is not registered", wantErr: true},
		{args: []string{"--conf", confPath, "cluster", "deregister", "us-east-1a"}, want: "cluster us-east-1a deregistered"},
	} {
		out, err := clusterRun(t, tc.args...)
		switch {
		case tc.wantErr && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		case !tc.wantErr && (err != nil || !strings.Contains(out, tc.want)):
			t.Errorf("%v: %q, %v; want %q", tc.args, out, err, tc.want)
		}
	}
	out, err := clusterRun(t, "cluster", "list", "--conf", confPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "us-east-1b") ||
		!strings.Contains(lines[1], "10.0.1.1") || !strings.Contains(lines[2], "cc3.example") || !strings.Contains(lines[2], "9000") {
		t.Errorf("list:\n%s", out)
	}
}
