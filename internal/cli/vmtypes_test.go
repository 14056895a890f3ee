package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// vmtypesRun runs `euca ARGS...` with only the vmtypes command, against a
// cloud whose EUCALYPTUS is a temporary directory.
func vmtypesRun(t *testing.T, confPath string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "euca", Writer: &out, ErrWriter: &out, Flags: []cli.Flag{ConfFlag()},
		Commands: []*cli.Command{VMTypesCommand()}}
	err := app.Run(append([]string{"euca", "--conf", confPath}, args...))
	return out.String(), err
}

func TestVMTypesCommand(t *testing.T) {
	home := t.TempDir()
	confPath := filepath.Join(home, "eucalyptus.conf")
	if err := os.WriteFile(confPath, []byte(`EUCALYPTUS="`+home+`"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := vmtypesRun(t, confPath, "vmtypes")
	if err != nil {
		t.Fatal(err)
	}
	want := "NAME       CPUS  MEMORY(MB)  DISK(GB)\n" +
		"m1.small   1     128         2\n" +
		"c1.medium  1     256         5\n" +
		"m1.large   2     512         10\n" +
		"m1.xlarge  2     1024        20\n" +
		"c1.xlarge  4     2048        20\n"
	if out != want {
		t.Fatalf("list:\n%s\nwant\n%s", out, want)
	}
	for _, tc := range []struct {
		args    []string
		want    string // in the output, or in the error when wantErr
		wantErr bool
	}{
		{args: []string{"vmtypes", "set", "m1.small", "--memory", "192"}, want: "m1.small  1     192         2"},
		{args: []string{"vmtypes", "set", "--cpus", "2", "m1.large", "--conf", confPath}, want: "m1.large  2     512         10"},
		{args: []string{"vmtypes", "set", "c1.medium", "--cpus", "3"}, want: "more than the larger type m1.large", wantErr: true},
		{args: []string{"vmtypes", "set", "m1.xlarge", "--disk", "5"}, want: "less than the smaller type m1.large", wantErr: true},
		{args: []string{"vmtypes", "set", "m1.small", "--cpus", "0"}, want: "must be positive", wantErr: true},
		{args: []string{"vmtypes", "set", "m1.small"}, want: "at least one of", wantErr: true},
		{args: []string{"vmtypes", "set", "t1.micro", "--cpus", "1"}, want: `no VM type "t1.micro"`, wantErr: true},
		{args: []string{"vmtypes", "set"}, want: "usage", wantErr: true},
		{args: []string{"vmtypes", "set", "m1.small", "m1.large", "--cpus", "1"}, want: "one VM type at a time", wantErr: true},
	} {
		out, err := vmtypesRun(t, confPath, tc.args...)
		switch {
		case tc.wantErr && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		case !tc.wantErr && (err != nil || !strings.Contains(out, tc.want)):
			t.Errorf("%v: %q, %v; want %q", tc.args, out, err, tc.want)
		}
	}
	out, err = vmtypesRun(t, confPath, "vmtypes", "list")
	if err != nil || !strings.Contains(out, "m1.small   1     192") {
		t.Fatalf("after set: %q, %v", out, err)
	}
}
