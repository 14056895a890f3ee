package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/store"
)

// nodeRun runs `euca ARGS...` with only the node command.
func nodeRun(t *testing.T, confPath string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "euca", Writer: &out, ErrWriter: &out, Flags: []cli.Flag{ConfFlag()},
		Commands: []*cli.Command{NodeCommand()}}
	err := app.Run(append([]string{"euca"}, args...))
	return out.String(), err
}

func TestNodeCommand(t *testing.T) {
	home := t.TempDir()
	confPath := filepath.Join(home, "eucalyptus.conf")
	if err := os.WriteFile(confPath, []byte(`EUCALYPTUS="`+home+`"`+"\nNC_PORT=\"8800\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args    []string
		want    string // in the output, or in the error when wantErr
		wantErr bool
	}{
		// --conf after the hosts, as the operator's guide writes it.
		{args: []string{"node", "register", "10.0.0.2", "10.0.0.3:9000", "--conf", confPath}, want: "node 10.0.0.3:9000 registered in us-east-1a"},
		{args: []string{"--conf", confPath, "node", "register", "10.0.0.2"}, want: "node 10.0.0.2:8800 already registered"},
		{args: []string{"--conf", confPath, "node", "register", "127.0.0.1"}, want: "node localhost:8800 registered"},
		{args: []string{"--conf", confPath, "node", "register", "10.0.0.9", "--zone", "us-east-1b"}, want: "registered in us-east-1b"},
		{args: []string{"--conf", confPath, "node", "register", "bad host"}, want: "want HOST or HOST:PORT", wantErr: true},
		{args: []string{"--conf", confPath, "node", "register", "10.0.0.4:70000"}, want: "port", wantErr: true},
		{args: []string{"--conf", confPath, "node", "register"}, want: "usage", wantErr: true},
		{args: []string{"--conf", confPath, "node", "register", "10.0.0.5", "--bogus"}, want: "unknown flag --bogus", wantErr: true},
		{args: []string{"--conf", confPath, "node", "deregister", "10.0.0.7"}, want: "node 10.0.0.7 is not registered in us-east-1a", wantErr: true},
		{args: []string{"--conf", confPath, "node", "deregister", "localhost"}, want: "node localhost deregistered"},
	} {
		out, err := nodeRun(t, confPath, tc.args...)
		switch {
		case tc.wantErr && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		case !tc.wantErr && (err != nil || !strings.Contains(out, tc.want)):
			t.Errorf("%v: %q, %v; want %q", tc.args, out, err, tc.want)
		}
	}
	// A refused host registers none of the others.
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(home, "var/lib/eucalyptus"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	nodes, err := st.CCNodes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nodes {
		got = append(got, n.Zone+"/"+n.Host)
	}
	if strings.Join(got, " ") != "us-east-1a/10.0.0.2 us-east-1a/10.0.0.3 us-east-1b/10.0.0.9" {
		t.Fatalf("registry %v", got)
	}

	// What the cluster controller last polled shows in the list.
	seen := time.Now().Add(-90 * time.Second)
	if err := st.PutCCNodeStatuses(ctx, []store.CCNodeStatus{{Zone: "us-east-1a", Host: "10.0.0.2", Up: true,
		CoresFree: 3, CoresMax: 4, MemoryFree: 1920, MemoryMax: 2048, DiskFree: 38, DiskMax: 40, Instances: 1,
		LastSeenMS: seen.UnixMilli(), Version: "v1.2"}}); err != nil {
		t.Fatal(err)
	}
	out, err := nodeRun(t, confPath, "node", "list", "--conf", confPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ZONE") {
		t.Fatalf("list:\n%s", out)
	}
	for _, want := range []string{"HOST", "STATE", "CORES", "MEMORY(MB)", "DISK(GB)", "INSTANCES", "LAST SEEN", "VERSION"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header %q lacks %s", lines[0], want)
		}
	}
	if f := strings.Fields(lines[1]); len(f) < 11 || f[1] != "10.0.0.2:8800" || f[2] != "up" || f[3] != "3/4" || f[4] != "1920/2048" ||
		f[5] != "38/40" || f[6] != "1" || f[9] != "(1m" || f[len(f)-1] != "v1.2" {
		t.Errorf("polled node: %q", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) < 4 || f[1] != "10.0.0.3:9000" || f[2] != "unknown" {
		t.Errorf("node never polled: %q", lines[2])
	}
	if err := st.PutCCNodeStatuses(ctx, []store.CCNodeStatus{{Zone: "us-east-1a", Host: "10.0.0.3", Error: store.CCNodeAsleep}}); err != nil {
		t.Fatal(err)
	}
	if out, _ := nodeRun(t, confPath, "node", "list", "--conf", confPath); !regexp.MustCompile(`10\.0\.0\.3:9000\s+asleep\s`).MatchString(out) {
		t.Errorf("node asleep:\n%s", out)
	}
	out, err = nodeRun(t, confPath, "node", "list", "--zone", "us-east-1b", "--conf", confPath)
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "10.0.0.9:8800") {
		t.Fatalf("list of one zone: %q, %v", out, err)
	}
}
