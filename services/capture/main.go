// Command capture reads cameras (V4L2 devices, RTSP and HTTP MJPEG streams,
// video files and image folders),
// detects motion on a downscaled grey frame and publishes each motion frame
// as a full-resolution JPEG to frames.raw in the site's Kafka cluster.
//
//	capture [flags]                 run the capture service
//	capture detect [flags] SOURCE   open one source, detect motion, print what was found (no Kafka, no etcd)
package main

import (
	"context"
	"os"

	"github.com/cefiot/cefiot/libs/program"
	"github.com/cefiot/cefiot/services/capture/internal/capture"
	"github.com/cefiot/cefiot/services/capture/internal/trial"
)

func main() { program.Main("capture", run) }

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "detect" {
		return trial.Run(ctx, args[1:], os.Stdout)
	}
	cfg, err := capture.ParseConfig(args, os.LookupEnv)
	if err != nil {
		return err
	}
	return capture.Run(ctx, cfg)
}
