package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// Options say what to build and where.
type Options struct {
	Root      string // repository root (holds go.work)
	Out       string // one OCI layout per service is written to Out/<service>
	Repo, Tag string
	Services  []Service
	Platforms []Platform
	// Created is the images' creation time (SOURCE_DATE_EPOCH); file times
	// in the layers are the same, so a rebuild from the same sources gives
	// the same layers.
	Created time.Time
	Logger  *slog.Logger
	// Sysroots by GOARCH: where the dynamically linked services (capture)
	// find another architecture's OpenCV and shared libraries.
	Sysroots map[string]Sysroot
}

// Result is one built image layout.
type Result struct {
	Service   string
	Ref       string
	Layout    string
	Platforms []Platform
	Skipped   map[string]string // platform -> why it was not built
	Digest    v1.Hash           // of the image index
	Static    bool
}

// Build builds every service for every platform it can be built for here.
func Build(ctx context.Context, o Options) ([]Result, error) {
	work, err := os.MkdirTemp("", "cefiot-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	var results []Result
	for _, s := range o.Services {
		s, err := ResolveLinkage(ctx, o.Root, s)
		if err != nil {
			return results, err
		}
		r, err := buildService(ctx, o, work, s)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

func buildService(ctx context.Context, o Options, work string, s Service) (Result, error) {
	ref := Ref(o.Repo, o.Tag, s.Name)
	res := Result{Service: s.Name, Ref: ref, Layout: filepath.Join(o.Out, s.Name), Skipped: map[string]string{}, Static: s.Static}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		if ok, why := CanBuild(s, p, o.Sysroots); !ok {
			res.Skipped[p.String()] = why
			o.Logger.Warn("platform skipped", "service", s.Name, "platform", p.String(), "reason", why)
			continue
		}
		start := time.Now()
		var sysroot *Sysroot
		if sr, ok := o.Sysroots[p.Arch]; ok && !s.Static && p.Arch != runtime.GOARCH {
			sysroot = &sr
		}
		bin, err := Compile(ctx, o.Root, work, s, p, sysroot)
		if err != nil {
			return res, err
		}
		img, err := Image(ctx, o, s, p, bin, sysroot)
		if err != nil {
			return res, fmt.Errorf("%s %s: %w", s.Name, p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
		})
		res.Platforms = append(res.Platforms, p)
		o.Logger.Info("image built", "service", s.Name, "platform", p.String(), "took", time.Since(start).Round(time.Millisecond))
	}
	if len(res.Platforms) == 0 {
		return res, fmt.Errorf("%s: no platform could be built here: %v", s.Name, res.Skipped)
	}
	if err := validate.Index(idx); err != nil {
		return res, fmt.Errorf("%s: invalid image index: %w", s.Name, err)
	}
	if err := os.RemoveAll(res.Layout); err != nil {
		return res, err
	}
	lp, err := layout.Write(res.Layout, empty.Index)
	if err != nil {
		return res, fmt.Errorf("%s: write layout: %w", s.Name, err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefName: ref})); err != nil {
		return res, fmt.Errorf("%s: write layout: %w", s.Name, err)
	}
	if res.Digest, err = idx.Digest(); err != nil {
		return res, err
	}
	return res, nil
}

// Image assembles the image of service s for p around binary.
// Its shared libraries come from sysroot when it is not nil, from this
// machine otherwise.
func Image(ctx context.Context, o Options, s Service, p Platform, binary string, sysroot *Sysroot) (v1.Image, error) {
	base, err := baseLayer(o.Created)
	if err != nil {
		return nil, err
	}
	layers := []v1.Layer{base}
	if !s.Static {
		var files map[string]string
		if sysroot != nil {
			files, err = sysroot.SharedLibraries(binary)
		} else {
			var libs []string
			libs, err = SharedLibraries(ctx, binary)
			files = map[string]string{}
			for _, l := range libs {
				files[l] = l
			}
		}
		if err != nil {
			return nil, err
		}
		l, err := filesLayerAt(o.Created, files, 0o755)
		if err != nil {
			return nil, fmt.Errorf("shared libraries: %w", err)
		}
		layers = append(layers, l)
	}
	binLayer, err := filesLayerAt(o.Created, map[string]string{Entrypoint(s.Name): binary}, 0o755)
	if err != nil {
		return nil, err
	}
	layers = append(layers, binLayer)

	user := strconv.Itoa(UID) + ":" + strconv.Itoa(UID)
	return configured(o, p, layers, v1.Config{
		Entrypoint: []string{Entrypoint(s.Name)},
		User:       user,
		WorkingDir: "/home/nonroot",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		Labels: map[string]string{
			"org.opencontainers.image.title":   "cefiot " + s.Name,
			"org.opencontainers.image.version": o.Tag,
			"org.opencontainers.image.source":  "https://github.com/cefiot/cefiot",
		},
	})
}

// tarBuilder writes a layer's tar with fixed times, owners and modes.
type tarBuilder struct {
	buf     bytes.Buffer
	tw      *tar.Writer
	modTime time.Time
	dirs    map[string]bool
}

func newTar(modTime time.Time) *tarBuilder {
	t := &tarBuilder{modTime: modTime, dirs: map[string]bool{}}
	t.tw = tar.NewWriter(&t.buf)
	return t
}

func (t *tarBuilder) dir(name string, mode int64, uid int) error {
	name = path.Clean(name)
	if name == "/" || name == "." || t.dirs[name] {
		return nil
	}
	if err := t.dir(path.Dir(name), 0o755, 0); err != nil {
		return err
	}
	t.dirs[name] = true
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name[1:] + "/", Mode: mode, ModTime: t.modTime, Uid: uid, Gid: uid})
}

func (t *tarBuilder) file(name string, mode int64, data []byte) error {
	if err := t.dir(path.Dir(name), 0o755, 0); err != nil {
		return err
	}
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path.Clean(name)[1:], Mode: mode, Size: int64(len(data)), ModTime: t.modTime}); err != nil {
		return err
	}
	_, err := t.tw.Write(data)
	return err
}

// hostFile copies the file at src (its target, for a link) to name.
func (t *tarBuilder) hostFile(name, src string, mode int64) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return t.file(name, mode, b)
}

func (t *tarBuilder) symlink(name, target string) error {
	if err := t.dir(path.Dir(name), 0o755, 0); err != nil {
		return err
	}
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: path.Clean(name)[1:], Linkname: target, Mode: 0o777, ModTime: t.modTime})
}

func (t *tarBuilder) layer() (v1.Layer, error) {
	if err := t.tw.Close(); err != nil {
		return nil, err
	}
	b := t.buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	return plainLayer{l}, nil
}

// plainLayer hides the tarball layer's own descriptor, whose empty
// annotation map would make the manifest differ from its parsed form (and
// fail validation).
type plainLayer struct{ v1.Layer }

// baseLayer is the root filesystem every image shares: users, name service
// switch, CA certificates, /tmp and the non-root user's home.
func baseLayer(modTime time.Time) (v1.Layer, error) {
	t := newTar(modTime)
	uid := strconv.Itoa(UID)
	files := map[string]string{
		"/etc/passwd":        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:" + uid + ":" + uid + ":nonroot:/home/nonroot:/sbin/nologin\n",
		"/etc/group":         "root:x:0:\nnonroot:x:" + uid + ":\n",
		"/etc/nsswitch.conf": "hosts: files dns\npasswd: files\ngroup: files\n",
	}
	for _, name := range sortedKeys(files) {
		if err := t.file(name, 0o644, []byte(files[name])); err != nil {
			return nil, err
		}
	}
	if certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		if err := t.file("/etc/ssl/certs/ca-certificates.crt", 0o644, certs); err != nil {
			return nil, err
		}
	}
	if err := t.dir("/tmp", 0o1777, 0); err != nil {
		return nil, err
	}
	if err := t.dir("/home/nonroot", 0o700, UID); err != nil {
		return nil, err
	}
	return t.layer()
}

// filesLayerAt copies host files (values) to image paths (keys).
func filesLayerAt(modTime time.Time, files map[string]string, mode int64) (v1.Layer, error) {
	t := newTar(modTime)
	for _, dst := range sortedKeys(files) {
		b, err := os.ReadFile(files[dst])
		if err != nil {
			return nil, err
		}
		if err := t.file(dst, mode, b); err != nil {
			return nil, err
		}
	}
	return t.layer()
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
