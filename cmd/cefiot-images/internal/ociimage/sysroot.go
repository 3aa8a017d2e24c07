package ociimage

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Sysroot is a directory holding another architecture's root filesystem
// (Debian packages unpacked by scripts/fetch-arm64-opencv.sh): the OpenCV
// headers and libraries capture is cross-compiled against, and every
// shared library those load, which go into the image.
type Sysroot struct {
	Dir  string
	Arch string // GOARCH of its libraries
}

// multiarchTriplet is Debian's library directory name per architecture.
var multiarchTriplet = map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}

// OpenCVModules are the OpenCV libraries gocv's main package links (the
// rest of Debian's opencv4.pc list is never referenced, and leaving it out
// keeps the sysroot small).
var OpenCVModules = []string{"highgui", "videoio", "video", "objdetect", "calib3d", "imgcodecs", "features2d", "dnn", "photo", "imgproc", "core"}

// FFmpegLibraries are the FFmpeg libraries capture reads network streams
// with (services/capture/internal/avread).
var FFmpegLibraries = []string{"avformat", "avcodec", "swscale", "avutil"}

// libDirs are the directories the dynamic linker searches, in its order
// (ld.so.conf's multiarch entries, then the defaults), as image paths.
func (s Sysroot) libDirs() []string {
	t := multiarchTriplet[s.Arch]
	return []string{"/lib/" + t, "/usr/lib/" + t, "/lib", "/usr/lib"}
}

// alternativeDirs hold libraries Debian selects with update-alternatives
// (libblas.so.3, liblapack.so.3): on an installed system a symlink in the
// multiarch directory points into them; dpkg -x does not create it.
func (s Sysroot) alternativeDirs() []string {
	t := multiarchTriplet[s.Arch]
	return []string{"/usr/lib/" + t + "/blas", "/usr/lib/" + t + "/lapack"}
}

// CgoEnv is the environment that builds gocv (and capture's FFmpeg
// reader) against the sysroot: the
// customenv build tag turns off gocv's pkg-config line, so these flags are
// all it gets (and, being environment variables, they are part of Go's
// build cache key).
func (s Sysroot) CgoEnv() []string {
	host := func(dirs ...string) []string {
		out := make([]string, len(dirs))
		for i, d := range dirs {
			out[i] = filepath.Join(s.Dir, filepath.FromSlash(d))
		}
		return out
	}
	t := multiarchTriplet[s.Arch]
	cpp := "-I" + strings.Join(host("/usr/include/opencv4", "/usr/include/"+t+"/opencv4", "/usr/include/"+t), " -I")
	ld := []string{"-L" + host("/usr/lib/" + t)[0]}
	for _, m := range OpenCVModules {
		ld = append(ld, "-lopencv_"+m)
	}
	for _, l := range FFmpegLibraries {
		ld = append(ld, "-l"+l)
	}
	// The libraries OpenCV needs in turn are only checked at link time.
	ld = append(ld, "-Wl,-rpath-link,"+strings.Join(host(append(s.libDirs(), s.alternativeDirs()...)...), ":"))
	return []string{"CGO_CPPFLAGS=" + cpp, "CGO_LDFLAGS=" + strings.Join(ld, " ")}
}

// SharedLibraries resolves the binary's interpreter and DT_NEEDED entries,
// recursively, in the sysroot the way the target's dynamic linker would
// (RUNPATH with $ORIGIN, the multiarch directories, /lib and /usr/lib),
// and returns image path -> host file (symlinks resolved inside the
// sysroot). It fails naming any library it cannot find, or one built for
// another machine.
func (s Sysroot) SharedLibraries(binary string) (map[string]string, error) {
	want, ok := ELFMachine[s.Arch]
	if !ok {
		return nil, fmt.Errorf("sysroot %s: unknown architecture %q", s.Dir, s.Arch)
	}
	b, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	lk, err := ReadLinkage(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", binary, err)
	}
	if lk.Interpreter == "" {
		return nil, fmt.Errorf("%s: no interpreter (is it static?)", binary)
	}
	out := map[string]string{}
	host, err := s.resolve(lk.Interpreter)
	if err != nil {
		return nil, fmt.Errorf("interpreter %s: %w", lk.Interpreter, err)
	}
	out[lk.Interpreter] = host
	type item struct{ name, from string }
	queue := []item{}
	for _, n := range lk.Needed {
		queue = append(queue, item{n, binary})
	}
	runpaths := map[string][]string{binary: nil}
	seen := map[string]bool{}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if seen[it.name] {
			continue
		}
		seen[it.name] = true
		imgPath, host, err := s.find(it.name, runpaths[it.from], want)
		if err != nil {
			return nil, fmt.Errorf("%s (needed by %s): %w", it.name, filepath.Base(it.from), err)
		}
		out[imgPath] = host
		f, err := elf.Open(host)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", host, err)
		}
		needed, err := f.ImportedLibraries()
		rp, _ := f.DynString(elf.DT_RUNPATH)
		rpath, _ := f.DynString(elf.DT_RPATH)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", host, err)
		}
		var dirs []string
		for _, list := range append(rpath, rp...) {
			for _, d := range strings.Split(list, ":") {
				dirs = append(dirs, path.Clean(strings.ReplaceAll(d, "$ORIGIN", path.Dir(imgPath))))
			}
		}
		runpaths[host] = dirs
		for _, n := range needed {
			queue = append(queue, item{n, host})
		}
	}
	return out, nil
}

// find looks name up in the search path; it returns where the image holds
// it and the host file to copy there.
func (s Sysroot) find(name string, runpath []string, machine elf.Machine) (string, string, error) {
	dirs := append(append([]string(nil), runpath...), s.libDirs()...)
	for _, d := range dirs {
		if host, err := s.resolve(path.Join(d, name)); err == nil && isELF(host, machine) {
			return path.Join(d, name), host, nil
		}
	}
	// An alternatives-managed library: the image holds it where the
	// alternatives symlink would be.
	for _, d := range s.alternativeDirs() {
		if host, err := s.resolve(path.Join(d, name)); err == nil && isELF(host, machine) {
			return path.Join(s.libDirs()[1], name), host, nil
		}
	}
	return "", "", fmt.Errorf("not found for %v in %s under %v", machine, s.Dir, dirs)
}

func isELF(host string, machine elf.Machine) bool {
	f, err := elf.Open(host)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Machine == machine
}

// resolve maps an absolute image path to a regular file in the sysroot,
// following symlinks (absolute ones relative to the sysroot).
func (s Sysroot) resolve(imgPath string) (string, error) {
	p := path.Clean("/" + imgPath)
	for range 40 {
		host := filepath.Join(s.Dir, filepath.FromSlash(p))
		fi, err := os.Lstat(host)
		if err != nil {
			// A directory on the way may itself be a symlink.
			return s.resolveDirs(p)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if !fi.Mode().IsRegular() {
				return "", fmt.Errorf("%s is not a regular file", p)
			}
			return host, nil
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = path.Clean(target)
	}
	return "", fmt.Errorf("%s: too many symlinks", imgPath)
}

// resolveDirs resolves a path whose parent directories contain a symlink.
func (s Sysroot) resolveDirs(p string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := path.Join(cur, part)
		host := filepath.Join(s.Dir, filepath.FromSlash(next))
		fi, err := os.Lstat(host)
		if err != nil {
			return "", fs.ErrNotExist
		}
		if fi.Mode()&fs.ModeSymlink != 0 && i < len(parts)-1 {
			target, err := os.Readlink(host)
			if err != nil {
				return "", err
			}
			if !path.IsAbs(target) {
				target = path.Join(cur, target)
			}
			rest := path.Join(append([]string{target}, parts[i+1:]...)...)
			if rest == p {
				return "", errors.New("symlink loop")
			}
			return s.resolve(rest)
		}
		cur = next
	}
	return "", fs.ErrNotExist
}
