// Command capture reads cameras (V4L2 devices, RTSP and HTTP MJPEG streams,
// video files and image folders),
// detects motion on a downscaled grey frame and publishes each motion frame
// as a full-resolution JPEG to frames.raw in the site's Kafka cluster.
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/libs/program"
	"github.com/cefiot/cefiot/services/capture/internal/capture"
)

func main() { program.Main("capture", run) }

func run(ctx context.Context, args []string) error {
	cfg, err := capture.ParseConfig(args, os.LookupEnv)
	if err != nil {
		return err
	}
	return capture.Run(ctx, cfg)
}
