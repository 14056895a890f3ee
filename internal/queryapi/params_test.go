package queryapi

import (
	"reflect"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
)

func TestParamsLists(t *testing.T) {
	p := Params{
		"KeyName.2": "b", "KeyName.1": "a", "KeyName.10": "j", "KeyNames": "x",
		"Filter.1.Name": "tag:team", "Filter.1.Value.1": "blue", "Filter.1.Value.2": "red",
		"Filter.2.Name": "vpc-id", "Filter.2.Value.1": "vpc-1",
		"TagSpecification.1.ResourceType": "security-group",
		"TagSpecification.1.Tag.1.Key":    "Name", "TagSpecification.1.Tag.1.Value": "web",
		"TagSpecification.1.Tag.2.Key": "empty",
	}
	if got := p.List("KeyName"); !reflect.DeepEqual(got, []string{"a", "b", "j"}) {
		t.Errorf("List = %v (members are ordered numerically, KeyNames is another parameter)", got)
	}
	f, err := p.Filters()
	if err != nil {
		t.Fatal(err)
	}
	want := []Filter{{Name: "tag:team", Values: []string{"blue", "red"}}, {Name: "vpc-id", Values: []string{"vpc-1"}}}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("Filters = %+v", f)
	}
	ts := p.TagSpecifications()
	if len(ts) != 1 || ts[0].ResourceType != "security-group" || !reflect.DeepEqual(ts[0].Tags, []Tag{{"Name", "web"}, {"empty", ""}}) {
		t.Errorf("TagSpecifications = %+v", ts)
	}
}

func TestParamsErrors(t *testing.T) {
	p := Params{"Filter.1.Value.1": "x", "DryRun": "maybe", "MaxResults": "ten", "Empty": ""}
	if _, err := p.Filters(); code(err) != "MissingParameter" {
		t.Errorf("filter without name: %v", err)
	}
	if _, err := p.Bool("DryRun"); code(err) != "InvalidParameterValue" {
		t.Errorf("bad bool: %v", err)
	}
	if _, _, err := p.Int("MaxResults"); code(err) != "InvalidParameterValue" {
		t.Errorf("bad int: %v", err)
	}
	if _, err := p.Required("Empty"); code(err) != "MissingParameter" {
		t.Errorf("empty required: %v", err)
	}
	if _, err := p.Required("Absent"); code(err) != "MissingParameter" {
		t.Errorf("absent required: %v", err)
	}
	if b, err := (Params{"X": "TRUE"}).Bool("X"); err != nil || !b {
		t.Errorf("TRUE: %v %v", b, err)
	}
}

func code(err error) string {
	if e, ok := awserr.As(err); ok {
		return e.Code
	}
	return ""
}

// FuzzParams: no member name can make the decoders panic.
func FuzzParams(f *testing.F) {
	f.Add("Filter.1.Name", "x", "Filter.1.Value.1")
	f.Add("KeyName.99999999999999999999", "a", "KeyName.-1")
	f.Add("Tag..Key", "", "TagSpecification.1.Tag.1.Key")
	f.Fuzz(func(t *testing.T, k1, v, k2 string) {
		p := Params{k1: v, k2: v}
		p.List("KeyName")
		p.List("Filter")
		_, _ = p.Filters()
		p.Tags("Tag")
		p.TagSpecifications()
		p.Members("Filter.1")
	})
}
