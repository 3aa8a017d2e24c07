package check

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// EnvPrefix is the prefix of every environment variable a cefiot service
// reads: flag -some-key is also CEFIOT_SOME_KEY.
const EnvPrefix = "CEFIOT_"

// EnvName returns the environment variable behind a flag.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flag))
}

// Flags are the flags a service binary accepts: name -> default value (""
// when it has none).
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

// ParseUsage reads the flag list a Go flag.FlagSet prints (PrintDefaults).
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

// ServiceFlags runs `<binDir>/<service> -h` and returns the flags it lists.
func ServiceFlags(ctx context.Context, binDir, service string) (Flags, error) {
	out, err := run(ctx, filepath.Join(binDir, service), "-h")
	if err != nil {
		return nil, err
	}
	flags, err := ParseUsage(out)
	if err != nil {
		return nil, fmt.Errorf("%s -h: %w", service, err)
	}
	return flags, nil
}

// ImageRefs runs `<binDir>/cefiot-images -list` and returns the image
// references `make images` builds: repository -> full reference.
func ImageRefs(ctx context.Context, binDir string) (map[string]string, error) {
	out, err := run(ctx, filepath.Join(binDir, "cefiot-images"), "-list")
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for _, ref := range strings.Fields(out) {
		i := strings.LastIndex(ref, ":")
		if i <= strings.LastIndex(ref, "/") {
			return nil, fmt.Errorf("cefiot-images -list: %q has no tag", ref)
		}
		refs[ref[:i]] = ref
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("cefiot-images -list printed no images")
	}
	return refs, nil
}

func run(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{} // the service's defaults, not this machine's CEFIOT_* settings
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w (stderr: %s)", bin, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
