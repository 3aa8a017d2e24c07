package kubenode

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// BuildPauseLayout builds the pause program (./pause) and writes an OCI
// layout of the sandbox image (PauseImage) around it in dir/pause.
func BuildPauseLayout(dir string) error {
	return buildProgramLayout(dir, "pause", PauseImage)
}

// ProbeImage is the image of the probe program (./probe), which checks
// the cluster's DNS and Services from a pod.
const ProbeImage = "cefiot.test/probe:1"

// BuildProbeLayout writes an OCI layout of ProbeImage in dir/probe.
func BuildProbeLayout(dir string) error {
	return buildProgramLayout(dir, "probe", ProbeImage)
}

// buildProgramLayout builds the program of package ./name, statically,
// and writes an OCI layout of an image named ref that runs it, in
// dir/name.
func buildProgramLayout(dir, name, ref string) error {
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(dir, name+".bin")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./"+name)
	cmd.Dir = filepath.Dir(file)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v: %s", name, err, out)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	return writeLayout(filepath.Join(dir, name), ref, map[string][]byte{name: exe}, []string{"/" + name})
}

// writeLayout writes an OCI image layout of one image named ref: one layer
// of files (executables, at the root), run as entrypoint by uid 65535.
func writeLayout(dir, ref string, files map[string][]byte, entrypoint []string) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	put := func(b []byte) (string, int, error) {
		sum := sha256.Sum256(b)
		digest := hex.EncodeToString(sum[:])
		return "sha256:" + digest, len(b), os.WriteFile(filepath.Join(blobs, digest), b, 0o644)
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for name, b := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(b))}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	diffID := sha256.Sum256(raw.Bytes())
	layer, layerSize, err := put(gz.Bytes())
	if err != nil {
		return err
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Entrypoint": entrypoint, "User": "65535:65535"},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
	})
	configDigest, configSize, err := put(config)
	if err != nil {
		return err
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": configSize},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layerSize}},
	})
	manifestDigest, manifestSize, err := put(manifest)
	if err != nil {
		return err
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": manifestSize,
			"annotations": map[string]string{"org.opencontainers.image.ref.name": ref},
			"platform":    map[string]string{"os": "linux", "architecture": runtime.GOARCH},
		}},
	})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}
