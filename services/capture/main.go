// Command capture reads cameras (video files and image folders for now),
// detects motion on a downscaled grey frame and publishes each motion frame
// as a full-resolution JPEG to frames.raw in the site's Kafka cluster.
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/libs/service"
	"github.com/cefiot/cefiot/services/capture/internal/capture"
)

func main() { service.Main("capture", realMain) }

func realMain(ctx context.Context) error {
	cfg, err := capture.ParseConfig(os.Args[1:], os.LookupEnv)
	if err != nil {
		return err
	}
	return capture.Run(ctx, cfg)
}
