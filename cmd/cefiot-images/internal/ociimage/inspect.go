package ociimage

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// Inspected is one platform's image of a layout.
type Inspected struct {
	Platform v1.Platform
	Config   *v1.ConfigFile
	Image    v1.Image
	// Files of the flattened root filesystem: path -> header.
	Files map[string]*tar.Header
	// Binary is the content of the entrypoint.
	Binary []byte
	// Libraries are the shared objects in the image (regular files whose
	// name has ".so"), parsed: path -> linkage.
	Libraries map[string]Linkage
}

// Layout is an OCI image layout written by Build.
type Layout struct {
	Ref    string
	Images []Inspected
}

// ReadLayout opens an OCI layout, validates it the way `crane validate`
// does (every manifest, config and layer digest and size checked) and reads
// each platform's image.
func ReadLayout(dir string) (*Layout, error) {
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("open layout %s: %w", dir, err)
	}
	rootManifest, err := root.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(rootManifest.Manifests) != 1 {
		return nil, fmt.Errorf("layout %s: want one image index, found %d entries", dir, len(rootManifest.Manifests))
	}
	desc := rootManifest.Manifests[0]
	idx, err := root.ImageIndex(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	if err := validate.Index(idx); err != nil {
		return nil, fmt.Errorf("layout %s: validate: %w", dir, err)
	}
	l := &Layout{Ref: desc.Annotations[RefName]}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, m := range im.Manifests {
		if m.Platform == nil {
			return nil, fmt.Errorf("layout %s: manifest %s has no platform", dir, m.Digest)
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		in := Inspected{Platform: *m.Platform, Config: cf, Image: img, Files: map[string]*tar.Header{}, Libraries: map[string]Linkage{}}
		if len(cf.Config.Entrypoint) == 0 {
			return nil, fmt.Errorf("layout %s %s: no entrypoint", dir, m.Platform)
		}
		rc := mutate.Extract(img)
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			name := "/" + strings.TrimPrefix(path.Clean(h.Name), "/")
			in.Files[name] = h
			if name == cf.Config.Entrypoint[0] {
				if in.Binary, err = io.ReadAll(tr); err != nil {
					rc.Close()
					return nil, err
				}
			} else if h.Typeflag == tar.TypeReg && strings.Contains(path.Base(name), ".so") {
				b, err := io.ReadAll(tr)
				if err != nil {
					rc.Close()
					return nil, err
				}
				lk, err := ReadLinkage(b)
				if err != nil {
					rc.Close()
					return nil, fmt.Errorf("layout %s %s: %s: %w", dir, m.Platform, name, err)
				}
				in.Libraries[name] = lk
			}
		}
		rc.Close()
		l.Images = append(l.Images, in)
	}
	return l, nil
}

// ELFMachine is the machine an architecture's binaries are built for.
var ELFMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// Linkage describes an ELF binary: its machine, its interpreter ("" when
// static) and the shared libraries it needs.
type Linkage struct {
	Machine     elf.Machine
	Interpreter string
	Needed      []string
}

// ReadLinkage parses an ELF binary.
func ReadLinkage(b []byte) (Linkage, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return Linkage{}, err
	}
	defer f.Close()
	l := Linkage{Machine: f.Machine}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			data, err := io.ReadAll(p.Open())
			if err != nil {
				return l, err
			}
			l.Interpreter = strings.TrimRight(string(data), "\x00")
		}
	}
	if l.Needed, err = f.ImportedLibraries(); err != nil && l.Interpreter != "" {
		return l, err
	}
	return l, nil
}
