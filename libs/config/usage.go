package config

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Flags are the flags a program accepts: name -> default value ("" when it
// has none).
type Flags map[string]string

// EnvKeys returns the environment variable names of the flags: env -> flag.
func (f Flags) EnvKeys() map[string]string {
	out := make(map[string]string, len(f))
	for name := range f {
		out[EnvName(name)] = name
	}
	return out
}

var (
	flagLineRE = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9._-]*)(?: (\S+))?$`)
	defaultRE  = regexp.MustCompile(`\(default (.*)\)$`)
)

// ParseUsage reads the flag list a flag.FlagSet prints (Usage): the
// inverse of Usage, so deploy checks and launchers can hold what they pass
// to a binary against what the binary accepts.
func ParseUsage(usage string) (Flags, error) {
	flags := Flags{}
	var last string
	sc := bufio.NewScanner(strings.NewReader(usage))
	for sc.Scan() {
		line := sc.Text()
		if m := flagLineRE.FindStringSubmatch(line); m != nil {
			last = m[1]
			flags[last] = ""
			continue
		}
		if last != "" && strings.HasPrefix(line, "    \t") {
			if m := defaultRE.FindStringSubmatch(line); m != nil {
				flags[last] = strings.Trim(m[1], `"`)
			}
		}
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("no flags in usage text %q", usage)
	}
	return flags, sc.Err()
}

// BinaryFlags runs `path -h` with an empty environment (the program's own
// defaults, not this machine's CEFIOT_* settings) and returns the flags it
// lists.
func BinaryFlags(ctx context.Context, path string) (Flags, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(ctx, path, "-h")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s -h: %w (stderr: %s)", path, err, strings.TrimSpace(stderr.String()))
	}
	flags, err := ParseUsage(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("%s -h: %w", path, err)
	}
	return flags, nil
}

// CheckArgs reports every argument of args, a list of "-flag value" pairs,
// that names no flag in flags.
func CheckArgs(flags Flags, args []string) error {
	var errs []string
	for i := 0; i < len(args); i += 2 {
		name, ok := strings.CutPrefix(args[i], "-")
		if !ok {
			errs = append(errs, fmt.Sprintf("argument %d %q is not a -flag", i, args[i]))
			continue
		}
		if _, known := flags[name]; !known {
			errs = append(errs, fmt.Sprintf("unknown flag -%s", name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
