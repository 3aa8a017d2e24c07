package ociimage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cefiot/cefiot/libs/buildinfo"
)

// Compile builds the service binary for p into dir and returns its path.
// Static services are linked statically against glibc (-tags netgo,osusergo
// keep Go's own resolver and user lookup; librdkafka's getaddrinfo uses the
// files and dns NSS modules built into glibc 2.34+).
//
// A dynamically linked service built for another architecture is compiled
// against sysroot (see Sysroot.CgoEnv); sysroot is ignored otherwise.
func Compile(ctx context.Context, root, dir string, s Service, p Platform, sysroot *Sysroot) (string, error) {
	out := filepath.Join(dir, p.OS+"-"+p.Arch, s.Name)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	args := []string{"build", "-trimpath", "-o", out}
	stamp := buildinfo.LinkerFlag(sourceVersion(ctx, root))
	if s.Static {
		args = append(args, "-tags", "netgo,osusergo", "-ldflags", "-s -w -linkmode external -extldflags -static "+stamp)
	} else {
		args = append(args, "-ldflags", "-s -w "+stamp)
		if sysroot != nil {
			args = append(args, "-tags", "customenv")
		}
	}
	args = append(args, "./services/"+s.Name)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOOS="+p.OS, "GOARCH="+p.Arch, "CC="+p.CC(), "CXX="+p.CXX())
	if !s.Static && sysroot != nil {
		cmd.Env = append(cmd.Env, sysroot.CgoEnv()...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s for %s: %w\n%s", s.Name, p, err, lastLines(stderr.String(), 30))
	}
	return out, nil
}

// sourceVersion is the commit of the tree at root (git describe), or
// "devel" outside a repository.
func sourceVersion(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "describe", "--always", "--dirty").Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		return v
	}
	return "devel"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// SharedLibraries returns the ELF interpreter and every shared library the
// dynamically linked binary loads on this machine, as absolute paths (the
// paths the dynamic linker finds them at).
func SharedLibraries(ctx context.Context, binary string) ([]string, error) {
	return sharedLibraries(ctx, binary, nil)
}

// sharedLibraries is SharedLibraries with ldd run in env (nil: this
// process's).
func sharedLibraries(ctx context.Context, binary string, env []string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "ldd", binary)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", binary, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) == 2 && strings.HasPrefix(f[0], "/"): // the interpreter
			libs = append(libs, f[0])
		case len(f) >= 3 && f[1] == "=>" && f[2] == "not":
			return nil, fmt.Errorf("ldd %s: %s is not found on this machine", binary, f[0])
		}
	}
	if len(libs) == 0 {
		return nil, fmt.Errorf("ldd %s: no shared libraries (is it static?)", binary)
	}
	return libs, nil
}

// ResolveLinkage sets s.Static: a service is built static unless it
// imports gocv (OpenCV has no static build on Debian).
func ResolveLinkage(ctx context.Context, root string, s Service) (Service, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "./services/"+s.Name)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return s, fmt.Errorf("go list %s: %w\n%s", s.Name, err, lastLines(stderr.String(), 10))
	}
	s.Static = true
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "gocv.io/x/gocv" {
			s.Static = false
		}
	}
	return s, nil
}
