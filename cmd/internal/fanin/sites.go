package fanin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// sitePartitions is the partition count of each site's edge topic (and so
// of its cloud topic, which the bridge creates alike).
const sitePartitions = 3

// siteName is the name of synthetic site i.
func siteName(i int) string { return fmt.Sprintf("site-%02d", i) }

// sampleJPEG is a real 320x240 JPEG (noise, so that it does not compress
// to nothing): what every synthetic frame carries.
func sampleJPEG() ([]byte, error) {
	img := image.NewGray(image.Rect(0, 0, 320, 240))
	r := rand.New(rand.NewPCG(7, 11))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.UintN(256))
	}
	img.SetGray(0, 0, color.Gray{Y: 255})
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 75}); err != nil {
		return nil, fmt.Errorf("sample JPEG: %w", err)
	}
	return buf.Bytes(), nil
}

// produceSites writes perSite enriched motion frames of each site into its
// topic of the shared edge cluster, as the site's enrich would, every site
// at once and as fast as the cluster acknowledges (acks=all), each site 4
// cameras. It returns when every record is acknowledged.
func produceSites(ctx context.Context, conn kafkax.Conn, sites []string, perSite int, run string, picture []byte) error {
	sum := sha256.Sum256(picture)
	digest := hex.EncodeToString(sum[:])
	g, gctx := errgroup.WithContext(ctx)
	for _, site := range sites {
		g.Go(func() error { return produceSite(gctx, conn, site, perSite, run, picture, digest) })
	}
	return g.Wait()
}

func produceSite(ctx context.Context, conn kafkax.Conn, site string, n int, run string, picture []byte, digest string) error {
	p, err := kafka.NewProducer(kafkax.Config(conn, map[string]any{
		"acks": "all", "enable.idempotence": true, "linger.ms": 5, "message.max.bytes": pipeline.MaxRecordBytes,
	}))
	if err != nil {
		return fmt.Errorf("producer of %s: %w", site, err)
	}
	defer p.Close()
	topic := edgeTopic(site)
	delivered := make(chan kafka.Event, n)
	start := time.Now()
	for seq := range n {
		camera := fmt.Sprintf("%s-cam-%d", site, seq%4)
		f := &cefiotv1.EnrichedFrame{
			Site: site, EnrichNode: "bench", ContentSha256: digest, EnrichTime: timestamppb.Now(),
			Frame: &cefiotv1.Frame{
				FrameId: fmt.Sprintf("%s_%s_%08d", camera, run, seq), CameraId: camera, Sequence: uint64(seq),
				CaptureTime: timestamppb.New(start.Add(time.Duration(seq) * 40 * time.Millisecond)),
				Jpeg:        picture, Width: 320, Height: 240, MotionScore: float64(seq%10) / 10, Motion: true,
				CaptureNode: "bench",
			},
		}
		value, err := proto.Marshal(f)
		if err != nil {
			return err
		}
		err = p.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            []byte(camera), Value: value,
		}, delivered)
		if err != nil {
			return fmt.Errorf("produce to %s: %w", topic, err)
		}
	}
	for range n {
		select {
		case ev := <-delivered:
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil {
				return fmt.Errorf("deliver to %s: %w", topic, m.TopicPartition.Error)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
