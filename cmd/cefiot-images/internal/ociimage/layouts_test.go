package ociimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// imagesDir is where `make images` wrote the layouts.
func imagesDir(t *testing.T) string {
	if dir := os.Getenv("CEFIOT_IMAGES_DIR"); dir != "" {
		return dir
	}
	dir, err := filepath.Abs("../../../../bin/images")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestImageLayouts inspects every image `make images` built: a valid OCI
// layout named as the manifests expect, the entrypoint binary present and
// built for the platform the image says (every platform, capture's arm64
// image included, which scripts/fetch-arm64-opencv.sh makes buildable
// here), a non-root user, static binaries without an interpreter, dynamic
// ones with every library they need, recursively, inside the image and
// built for the same machine, and, for this machine's architecture, the
// image's root filesystem alone runs the binary (chroot).
func TestImageLayouts(t *testing.T) {
	if testing.Short() {
		t.Skip("reads every image layout (about 30 s)")
	}
	dir := imagesDir(t)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CEFIOT_REQUIRE_IMAGES") == "1" {
			t.Fatalf("no images at %s: run make images", dir)
		}
		t.Skipf("no images at %s (run make images; CEFIOT_REQUIRE_IMAGES=1 fails instead)", dir)
	}
	for _, s := range Services {
		t.Run(s.Name, func(t *testing.T) {
			l, err := ReadLayout(filepath.Join(dir, s.Name))
			if err != nil {
				t.Fatal(err)
			}
			if want := Ref(DefaultRepo, DefaultTag, s.Name); l.Ref != want {
				t.Errorf("ref name %q, want %q", l.Ref, want)
			}
			arches := map[string]bool{}
			for _, img := range l.Images {
				arches[img.Platform.Architecture] = true
				checkImage(t, s.Name, img)
			}
			if !arches[runtime.GOARCH] {
				t.Errorf("no %s image: platforms %v", runtime.GOARCH, arches)
			}
			if !arches["arm64"] {
				t.Errorf("no linux/arm64 image for the edge boards: platforms %v", arches)
			}
		})
	}
}

func checkImage(t *testing.T, service string, img Inspected) {
	t.Helper()
	p := img.Platform.OS + "/" + img.Platform.Architecture
	cf := img.Config
	if cf.OS != img.Platform.OS || cf.Architecture != img.Platform.Architecture {
		t.Errorf("%s: config says %s/%s", p, cf.OS, cf.Architecture)
	}
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != Entrypoint(service) {
		t.Errorf("%s: entrypoint %v, want [%s]", p, got, Entrypoint(service))
	}
	uid, _, _ := strings.Cut(cf.Config.User, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("%s: user %q must be a numeric non-root uid (runAsNonRoot needs a number)", p, cf.Config.User)
	}
	h, ok := img.Files[Entrypoint(service)]
	if !ok || h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 || len(img.Binary) == 0 {
		t.Fatalf("%s: the binary %s is missing or not executable", p, Entrypoint(service))
	}
	for _, f := range []string{"/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/tmp"} {
		if _, ok := img.Files[f]; !ok {
			t.Errorf("%s: %s missing", p, f)
		}
	}
	lk, err := ReadLinkage(img.Binary)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if want := ELFMachine[img.Platform.Architecture]; lk.Machine != want {
		t.Errorf("%s: the binary is built for %v, want %v", p, lk.Machine, want)
	}
	if lk.Interpreter != "" {
		if _, ok := img.Files[lk.Interpreter]; !ok {
			t.Errorf("%s: interpreter %s is not in the image", p, lk.Interpreter)
		}
		missing := missingLibraries(img, lk.Needed)
		if len(missing) > 0 {
			t.Errorf("%s: shared libraries the binary needs are not in the image: %v", p, missing)
		}
		for name, l := range img.Libraries {
			if l.Machine != lk.Machine {
				t.Errorf("%s: library %s is built for %v, the binary for %v", p, name, l.Machine, lk.Machine)
			}
		}
	} else if len(lk.Needed) > 0 {
		t.Errorf("%s: static binary needs %v", p, lk.Needed)
	}
	if img.Platform.Architecture == runtime.GOARCH {
		runInImage(t, p, img, service)
	} else if img.Platform.Architecture == "arm64" {
		runUnderQEMU(t, p, img, service)
	}
}

// missingLibraries resolves each needed library, and what those need in
// turn (their DT_NEEDED entries, recursively), in the image's library
// directories.
func missingLibraries(img Inspected, needed []string) []string {
	dirs := []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib", "/usr/lib", "/lib64"}
	seen := map[string]bool{}
	var missing []string
	queue := append([]string(nil), needed...)
	for len(queue) > 0 {
		lib := queue[0]
		queue = queue[1:]
		if seen[lib] {
			continue
		}
		seen[lib] = true
		found := ""
		for _, d := range dirs {
			if _, ok := img.Files[path.Join(d, lib)]; ok {
				found = path.Join(d, lib)
				break
			}
		}
		if found == "" {
			missing = append(missing, lib)
			continue
		}
		queue = append(queue, img.Libraries[found].Needed...)
	}
	return missing
}

// runInImage unpacks the image's root filesystem and runs `<binary> -h`
// inside it with chroot: it must print its flags using only what the image
// holds (static glibc, or the OpenCV libraries shipped with it).
func runInImage(t *testing.T, p string, img Inspected, service string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Logf("%s: not root, not running the binary inside the image", p)
		return
	}
	root := extractRoot(t, img)
	uid, _, _ := strings.Cut(img.Config.Config.User, ":")
	cmd := exec.Command("chroot", "--userspec="+img.Config.Config.User, root, Entrypoint(service), "-h")
	cmd.Env = img.Config.Config.Env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-grpc-addr") {
		t.Errorf("%s: %s -h inside the image (as uid %s): %v\n%s", p, service, uid, err, out)
	}
}

// runUnderQEMU runs an arm64 image's binary on this machine with
// qemu-aarch64-static (no binfmt needed), its libraries from the image's
// own root filesystem (-L): every service prints its usage, and capture
// decodes a short video and finds the motion in it, OpenCV and all.
func runUnderQEMU(t *testing.T, p string, img Inspected, service string) {
	t.Helper()
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		if os.Getenv("CEFIOT_REQUIRE_QEMU") == "1" {
			t.Fatalf("%s: qemu-aarch64-static not found (scripts/install-deps.sh installs qemu-user-static)", p)
		}
		t.Logf("%s: no qemu-aarch64-static, not running the arm64 binary (CEFIOT_REQUIRE_QEMU=1 fails instead)", p)
		return
	}
	root := extractRoot(t, img)
	binary := filepath.Join(root, Entrypoint(service))
	run := func(args ...string) (string, error) {
		cmd := exec.Command(qemu, append([]string{"-L", root, binary}, args...)...)
		cmd.Env = img.Config.Config.Env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("-h"); err != nil || !strings.Contains(out, "-grpc-addr") {
		t.Errorf("%s: %s -h under qemu-aarch64-static: %v\n%s", p, service, err, out)
	}
	if service != "capture" {
		return
	}
	spec := videogen.DefaultSpec()
	spec.Width, spec.Height, spec.Frames, spec.MotionStart, spec.MotionEnd = 320, 240, 30, 10, 19
	video := filepath.Join(t.TempDir(), "motion.avi")
	if err := videogen.Write(video, spec); err != nil {
		t.Fatal(err)
	}
	out, err := run("detect", "-max-frames", "0", video)
	if err != nil || !strings.Contains(out, "frames read: 30\n") || !strings.Contains(out, fmt.Sprintf("motion frames: %d\n", spec.MotionFrames())) {
		t.Fatalf("%s: capture detect under qemu-aarch64-static: %v\n%s", p, err, out)
	}
	t.Logf("%s: capture under qemu-aarch64-static, with the image's OpenCV:\n%s", p, out)
}

// extractRoot unpacks img's root filesystem into a temporary directory.
func extractRoot(t *testing.T, img Inspected) string {
	t.Helper()
	root := t.TempDir()
	rc := mutate.Extract(img.Image)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}
