package mjpegtest

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"net"
	"net/http"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// Live is a live HTTP MJPEG camera: one clock, and every client sees the
// picture of the moment, as from a real IP camera (Server instead plays
// its video from the start to each client). Each picture carries its
// number as an on-screen caption, as cameras print their clock, so no two
// pictures are alike even when the scene repeats, and as blocks a test
// reads back (PictureNumber).
type Live struct {
	Addr string

	srv    *http.Server
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	clients  map[chan []byte]struct{}
	produced int64
	start    time.Time
}

// NewLive renders spec's scene (looped) at spec.FPS from now on and serves
// it on a free loopback port until Close.
func NewLive(spec videogen.Spec) (*Live, error) {
	r, err := videogen.NewRenderer(spec)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("mjpegtest: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Live{Addr: l.Addr().String(), cancel: cancel, done: make(chan struct{}), clients: map[chan []byte]struct{}{}, start: time.Now()}
	mux := http.NewServeMux()
	mux.HandleFunc("/stream.mjpg", c.serveClient)
	c.srv = &http.Server{Handler: mux}
	go c.srv.Serve(l)
	go c.produce(ctx, r, spec)
	return c, nil
}

// URL is the stream's address.
func (c *Live) URL() string { return "http://" + c.Addr + "/stream.mjpg" }

// Produced is how many pictures the camera has made since it started.
func (c *Live) Produced() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.produced
}

// Close stops the camera and every open stream.
func (c *Live) Close() {
	c.cancel()
	<-c.done
	c.srv.Close()
}

func (c *Live) produce(ctx context.Context, r *videogen.Renderer, spec videogen.Spec) {
	defer close(c.done)
	defer r.Close()
	m := gocv.NewMat()
	defer m.Close()
	interval := time.Duration(float64(time.Second) / spec.FPS)
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 0; ; n++ {
		if err := r.Frame(n%spec.Frames, &m); err != nil {
			return
		}
		gocv.PutText(&m, fmt.Sprintf("%08d", n), image.Pt(4, m.Rows()-6), gocv.FontHersheyPlain, 1, color.RGBA{R: 255, G: 255, B: 255, A: 255}, 1)
		drawNumber(&m, n)
		buf, err := gocv.IMEncode(gocv.JPEGFileExt, m)
		if err != nil {
			return
		}
		pic := append([]byte(nil), buf.GetBytes()...)
		buf.Close()
		c.mu.Lock()
		c.produced++
		for ch := range c.clients {
			select {
			case ch <- pic:
			default: // a client too slow for the camera misses pictures
			}
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Live) serveClient(w http.ResponseWriter, r *http.Request) {
	ch := make(chan []byte, 4)
	c.mu.Lock()
	c.clients[ch] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.clients, ch)
		c.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "multipart/x-mixed-replace;boundary=cefiotframe")
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.done:
			return
		case pic := <-ch:
			if err := writePart(w, pic); err != nil {
				return
			}
		}
	}
}

// writePart writes one picture of a multipart MJPEG stream and flushes it.
func writePart(w http.ResponseWriter, pic []byte) error {
	if _, err := fmt.Fprintf(w, "--cefiotframe\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(pic)); err != nil {
		return err
	}
	if _, err := w.Write(pic); err != nil {
		return err
	}
	if _, err := w.Write([]byte("\r\n")); err != nil {
		return err
	}
	f, ok := w.(http.Flusher)
	if !ok {
		return errors.New("mjpegtest: response cannot be flushed")
	}
	f.Flush()
	return nil
}
