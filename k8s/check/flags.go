package check

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/config"
)

// Flags are the flags a service binary accepts (config.Flags).
type Flags = config.Flags

// EnvPrefix and EnvName are the services' environment naming (config).
const EnvPrefix = config.EnvPrefix

// EnvName returns the environment variable behind a flag.
func EnvName(flag string) string { return config.EnvName(flag) }

// ParseUsage reads the flag list a service prints for -h.
func ParseUsage(usage string) (Flags, error) { return config.ParseUsage(usage) }

// ServiceFlags runs `<binDir>/<service> -h` and returns the flags it lists.
func ServiceFlags(ctx context.Context, binDir, service string) (Flags, error) {
	return config.BinaryFlags(ctx, filepath.Join(binDir, service))
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
