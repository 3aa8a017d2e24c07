// Command cefiot-images builds one OCI image per cefiot service without a
// container engine, as OCI image layouts (one per service, each an index of
// linux/amd64 and linux/arm64 images) under -out. `make images` runs it;
// `-list` prints the image references it builds, which the Kubernetes
// manifests under k8s/ must use.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cefiot/cefiot/cmd/cefiot-images/internal/ociimage"
	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/program"
)

func main() {
	program.Main("cefiot-images", func(ctx context.Context, args []string) error { return realMain(ctx, args, os.Stdout, os.Stderr) })
}

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cefiot-images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "bin/images", "directory of the OCI layouts (one per service)")
	repo := fs.String("repo", ociimage.DefaultRepo, "image repository prefix")
	tag := fs.String("tag", ociimage.DefaultTag, "image tag")
	services := fs.String("services", "capture,enrich,bridge,sink,scheduler", "services to build")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "platforms to build")
	root := fs.String("root", "", "repository root (default: the directory holding go.work, upwards from here)")
	list := fs.Bool("list", false, "print the image references and exit")
	siteImages := fs.Bool("site-images", false, "also build the images of each site's Kafka and etcd (this machine's architecture; for clusters that reach no registry)")
	kafkaLibs := fs.String("kafka-libs", "", "the Kafka broker's jars for -site-images (scripts/fetch-kafka.sh prints the directory)")
	sysrootArm64 := fs.String("sysroot-arm64", "", "arm64 sysroot with OpenCV (scripts/fetch-arm64-opencv.sh prints it): builds capture for linux/arm64 from an amd64 machine")
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	var svcs []ociimage.Service
	for _, name := range strings.Split(*services, ",") {
		if strings.TrimSpace(name) == "" {
			continue
		}
		s, err := ociimage.ServiceByName(strings.TrimSpace(name))
		if err != nil {
			return fmt.Errorf("-services: %w", err)
		}
		svcs = append(svcs, s)
	}
	if *list {
		for _, s := range svcs {
			fmt.Fprintln(stdout, ociimage.Ref(*repo, *tag, s.Name))
		}
		return nil
	}
	plats, err := ociimage.ParsePlatforms(*platforms)
	if err != nil {
		return fmt.Errorf("-platforms: %w", err)
	}
	if *root == "" {
		if *root, err = findRoot(); err != nil {
			return err
		}
	}
	outDir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	created := time.Unix(0, 0).UTC()
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", v, err)
		}
		created = time.Unix(sec, 0).UTC()
	}
	sysroots := map[string]ociimage.Sysroot{}
	if *sysrootArm64 != "" {
		dir, err := filepath.Abs(*sysrootArm64)
		if err != nil {
			return err
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("-sysroot-arm64 %s: not a directory (run scripts/fetch-arm64-opencv.sh)", *sysrootArm64)
		}
		sysroots["arm64"] = ociimage.Sysroot{Dir: dir, Arch: "arm64"}
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	start := time.Now()
	results, err := ociimage.Build(ctx, ociimage.Options{
		Root: *root, Out: outDir, Repo: *repo, Tag: *tag, Services: svcs, Platforms: plats, Created: created, Logger: logger,
		Sysroots: sysroots,
	})
	if err != nil {
		return err
	}
	if *siteImages {
		site, err := ociimage.BuildSiteImages(ctx, ociimage.Options{Root: *root, Out: outDir, Created: created, Logger: logger},
			ociimage.SiteOptions{KafkaLibs: *kafkaLibs})
		if err != nil {
			return err
		}
		results = append(results, site...)
	}
	fmt.Fprintf(stdout, "%-36s %-26s %-17s %s\n", "image", "platforms", "binary", "layout")
	for _, r := range results {
		var ps []string
		for _, p := range r.Platforms {
			ps = append(ps, p.String())
		}
		rel, _ := filepath.Rel(*root, r.Layout)
		link := "static"
		if r.Service == "kafka" {
			link = "Java"
		} else if !r.Static {
			link = "dynamic (OpenCV)"
		}
		fmt.Fprintf(stdout, "%-36s %-26s %-17s %s\n", r.Ref, strings.Join(ps, ","), link, rel)
		for p, why := range r.Skipped {
			fmt.Fprintf(stdout, "  not built for %s: %s\n", p, why)
		}
	}
	fmt.Fprintf(stdout, "built in %s\n", time.Since(start).Round(time.Second))
	return nil
}

func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: pass -root")
		}
		dir = parent
	}
}
