package program

import (
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/cefiot/cefiot/libs/config"
)

func TestReport(t *testing.T) {
	fs := flag.NewFlagSet("tool", flag.ContinueOnError)
	fs.Int("frames", 3, "frames to write")
	helpErr := config.Parse(fs, []string{"-h"}, nil)
	for _, tc := range []struct {
		name        string
		err         error
		interrupted bool
		status      int
		stdout      []string
		stderr      string
	}{
		{"success", nil, false, 0, nil, ""},
		{"help", helpErr, false, 0, []string{"Usage of tool:", "-frames int"}, ""},
		{"own usage", flag.ErrHelp, false, 0, nil, ""},
		{"failure", errors.New("boom"), false, 1, nil, "tool: boom\n"},
		{"interrupted", errors.New("context canceled"), true, 0, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			if got := Report("tool", tc.err, tc.interrupted, &out, &errOut); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout %q lacks %q", out.String(), w)
				}
			}
			if errOut.String() != tc.stderr {
				t.Errorf("stderr %q, want %q", errOut.String(), tc.stderr)
			}
		})
	}
}
