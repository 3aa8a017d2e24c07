// Package ociimage builds one OCI image per cefiot service without a
// container engine: it cross-compiles the service, lays out a minimal root
// filesystem (the binary, a non-root user, CA certificates and, for capture,
// the OpenCV runtime libraries the binary links) and writes a multi-platform
// OCI image layout per service.
package ociimage

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
)

// DefaultRepo and DefaultTag name the images when no other is asked for;
// the kustomize overlays under k8s/ refer to exactly these.
const (
	DefaultRepo = "ghcr.io/cefiot"
	DefaultTag  = "0.1.0"
)

// Image runtime facts shared by every image (and the Dockerfiles).
const (
	UID     = 65532
	BinDir  = "/usr/local/bin"
	RefName = "org.opencontainers.image.ref.name"
)

// Platform is a target os/arch and the C cross compiler cgo uses for it.
type Platform struct {
	OS, Arch string
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// CC is the C compiler for cgo on p from this machine.
func (p Platform) CC() string {
	if p.Arch == runtime.GOARCH {
		return "gcc"
	}
	return map[string]string{"arm64": "aarch64-linux-gnu-gcc", "amd64": "x86_64-linux-gnu-gcc"}[p.Arch]
}

// CXX is the C++ compiler for cgo on p (gocv is C++).
func (p Platform) CXX() string {
	if p.Arch == runtime.GOARCH {
		return "g++"
	}
	return map[string]string{"arm64": "aarch64-linux-gnu-g++", "amd64": "x86_64-linux-gnu-g++"}[p.Arch]
}

// ParsePlatforms parses "linux/amd64,linux/arm64".
func ParsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	for _, part := range strings.Split(s, ",") {
		os, arch, ok := strings.Cut(strings.TrimSpace(part), "/")
		if !ok || os != "linux" || (arch != "amd64" && arch != "arm64") {
			return nil, fmt.Errorf("platform %q: want linux/amd64 or linux/arm64", part)
		}
		out = append(out, Platform{OS: os, Arch: arch})
	}
	return out, nil
}

// Service is one image.
type Service struct {
	Name string
	// Static: built with cgo (librdkafka is bundled), linked statically
	// against glibc, and shipped alone. Otherwise (the service links OpenCV
	// through gocv, which is linked dynamically) the image carries the
	// shared libraries the binary links, taken from this machine (from a
	// Sysroot for another architecture). Set by ResolveLinkage.
	Static bool
}

// Services are the five cefiot services.
var Services = []Service{{Name: "capture"}, {Name: "enrich"}, {Name: "bridge"}, {Name: "sink"}, {Name: "scheduler"}}

// ServiceByName returns the service called name.
func ServiceByName(name string) (Service, error) {
	for _, s := range Services {
		if s.Name == name {
			return s, nil
		}
	}
	names := make([]string, 0, len(Services))
	for _, s := range Services {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return Service{}, fmt.Errorf("no service %q (services: %s)", name, strings.Join(names, ", "))
}

// Ref is the image reference of a service.
func Ref(repo, tag, service string) string { return repo + "/" + service + ":" + tag }

// Entrypoint is the path of the service binary in its image.
func Entrypoint(service string) string { return BinDir + "/" + service }

// CanBuild reports whether this machine can build service for p, and why
// not: a dynamically linked image needs the target's shared libraries,
// which are on this machine for its own architecture and, for another,
// only in a sysroot (scripts/fetch-arm64-opencv.sh builds the arm64 one).
func CanBuild(s Service, p Platform, sysroots map[string]Sysroot) (bool, string) {
	if _, ok := sysroots[p.Arch]; !s.Static && p.Arch != runtime.GOARCH && !ok {
		return false, fmt.Sprintf("%s links OpenCV dynamically and this machine has OpenCV only for %s (pass -sysroot-%s, or build it on a %s machine)", s.Name, runtime.GOARCH, p.Arch, p.Arch)
	}
	return true, ""
}
