package conf

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteReport prints what `euca conf check` shows: every key with its
// effective value and where it came from, then the diagnostics, then a
// one-line verdict. Printing defaults too is the point: an operator moving
// from Eucalyptus sees at a glance what an absent key now means.
func WriteReport(w io.Writer, c *Config, diags []Diagnostic) {
	file := c.Path
	if file == "" {
		file = "eucalyptus.conf"
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
	for _, e := range c.Entries() {
		src := "default"
		switch e.Source {
		case FromFile:
			src = file + ":" + strconv.Itoa(e.Line)
		case FromDerived:
			src = "derived from " + e.DerivedFrom
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Key, reportValue(e.Value), src)
	}
	tw.Flush()

	var errs, warns int
	if len(diags) > 0 {
		fmt.Fprintln(w)
	}
	for _, d := range diags {
		if d.Severity == Error {
			errs++
		} else {
			warns++
		}
		fmt.Fprintln(w, d.String())
	}
	fmt.Fprintln(w)
	switch {
	case errs > 0:
		fmt.Fprintf(w, "%s: %d %s, %d %s: euca will not start with this file\n", file,
			errs, plural(errs, "error", "errors"), warns, plural(warns, "warning", "warnings"))
	case warns > 0:
		fmt.Fprintf(w, "%s: %d %s, no errors\n", file, warns, plural(warns, "warning", "warnings"))
	default:
		fmt.Fprintf(w, "%s: no problems\n", file)
	}
}

// reportValue keeps a table cell on one line and makes an empty value visible.
func reportValue(v string) string {
	if v == "" {
		return `""`
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return strconv.Quote(v)
	}
	return v
}
