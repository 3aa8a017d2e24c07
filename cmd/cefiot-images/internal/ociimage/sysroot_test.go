package ociimage

import (
	"archive/tar"
	"debug/elf"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestMissingLibrariesFollowsDependencies: a library only a library needs
// (not the binary itself) counts as missing.
func TestMissingLibrariesFollowsDependencies(t *testing.T) {
	img := Inspected{
		Files: map[string]*tar.Header{
			"/usr/lib/aarch64-linux-gnu/libopencv_core.so.406": {},
		},
		Libraries: map[string]Linkage{
			"/usr/lib/aarch64-linux-gnu/libopencv_core.so.406": {Needed: []string{"libtbb.so.12"}},
		},
	}
	got := missingLibraries(img, []string{"libopencv_core.so.406"})
	if want := []string{"libtbb.so.12"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("missing %v, want %v", got, want)
	}
}

// TestSysrootSharedLibraries resolves the OpenCV closure in the arm64
// sysroot scripts/fetch-arm64-opencv.sh builds (skipped when it is absent):
// every file an arm64 ELF, the alternatives-managed BLAS placed where the
// dynamic linker looks, and an unknown library an error naming it.
func TestSysrootSharedLibraries(t *testing.T) {
	dir, err := filepath.Abs("../../../../.cache/sysroot-arm64")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no arm64 sysroot at %s (scripts/fetch-arm64-opencv.sh)", dir)
	}
	s := Sysroot{Dir: dir, Arch: "arm64"}
	// The core library stands in for a binary: resolve what it needs.
	core, err := s.resolve("/usr/lib/aarch64-linux-gnu/libopencv_core.so.406")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SharedLibraries(core); err == nil || !strings.Contains(err.Error(), "no interpreter") {
		t.Fatalf("a library without an interpreter: err %v", err)
	}
	files := map[string]string{}
	for _, name := range []string{"libopencv_core.so.406", "libopencv_imgcodecs.so.406", "libopencv_dnn.so.406"} {
		img, host, err := s.find(name, nil, elf.EM_AARCH64)
		if err != nil {
			t.Fatal(err)
		}
		files[img] = host
	}
	if _, _, err := s.find("libdoesnotexist.so.1", nil, elf.EM_AARCH64); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown library: err %v", err)
	}
	if _, _, err := s.find("libopencv_core.so.406", nil, elf.EM_X86_64); err == nil {
		t.Fatal("an arm64 library was accepted for x86-64")
	}
	img, host, err := s.find("libblas.so.3", nil, elf.EM_AARCH64)
	if err != nil {
		t.Fatal(err)
	}
	if img != "/usr/lib/aarch64-linux-gnu/libblas.so.3" || !strings.Contains(host, "/blas/") {
		t.Errorf("libblas.so.3 at %s from %s, want the multiarch directory from blas/", img, host)
	}
	for img, host := range files {
		f, err := elf.Open(host)
		if err != nil {
			t.Fatalf("%s: %v", img, err)
		}
		if f.Machine != elf.EM_AARCH64 {
			t.Errorf("%s: %v", img, f.Machine)
		}
		f.Close()
	}
}
