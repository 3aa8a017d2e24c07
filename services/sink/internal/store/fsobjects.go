package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FSObjects keeps objects as files below a root directory: key "a/b/c.jpg"
// is the file <root>/a/b/c.jpg. Put writes a temporary file in the target
// directory, fsyncs it, renames it into place and fsyncs the directory, so a
// crash leaves the old file or the new one, never a part.
type FSObjects struct {
	root string
}

var _ Objects = (*FSObjects)(nil)

// NewFSObjects creates root if needed.
func NewFSObjects(root string) (*FSObjects, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("filesystem objects %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("filesystem objects: create %s: %w", abs, err)
	}
	return &FSObjects{root: abs}, nil
}

// Root is the absolute root directory.
func (o *FSObjects) Root() string { return o.root }

// Kind implements Objects.
func (o *FSObjects) Kind() string { return "filesystem" }

// Describe implements Objects.
func (o *FSObjects) Describe() string { return "filesystem " + o.root }

func (o *FSObjects) path(key string) (string, error) {
	if key == "" || !filepath.IsLocal(filepath.FromSlash(key)) {
		return "", fmt.Errorf("%w: object key %q", ErrInvalidID, key)
	}
	return filepath.Join(o.root, filepath.FromSlash(key)), nil
}

// Put implements Objects. A file that already holds exactly data is kept
// (its rename may not be durable yet, so its directory is fsynced).
func (o *FSObjects) Put(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := o.path(key)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(p)
	switch {
	case err == nil && bytes.Equal(old, data):
		return syncDir(filepath.Dir(p))
	case err == nil, errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("read existing %s: %w", p, err)
	}
	if err := ensureDir(o.root, filepath.Dir(p)); err != nil {
		return err
	}
	return writeFileAtomic(p, data)
}

// Get implements Objects.
func (o *FSObjects) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := o.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrObjectNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return b, nil
}

// Delete implements Objects.
func (o *FSObjects) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := o.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// List implements Objects. Non-regular files are reported with size -1.
func (o *FSObjects) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	start := o.root
	if dir, _, ok := strings.Cut(prefix, "/"); ok && dir != "" {
		start = filepath.Join(o.root, filepath.FromSlash(dir))
	}
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == start {
				return filepath.SkipAll
			}
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if d.IsDir() {
			return ctx.Err()
		}
		rel, err := filepath.Rel(o.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		size := int64(-1)
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return fmt.Errorf("stat %s: %w", p, err)
			}
			size = fi.Size()
		}
		return fn(ObjectInfo{Key: key, Size: size})
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", o.root, err)
	}
	return nil
}
