package mjpegtest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// Two clients of a live camera see the same pictures at the same time,
// and no two pictures are alike.
func TestLiveClientsSeeTheSamePictures(t *testing.T) {
	cam, err := NewLive(videogen.Spec{Width: 320, Height: 240, Frames: 10, FPS: 50, MotionStart: 1, MotionEnd: 9})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := openParts(ctx, t, cam.URL()), openParts(ctx, t, cam.URL())
	// Align b with a: the first picture of a that b also gets.
	seen := map[string]bool{}
	var firstA []byte
	for i := 0; i < 5; i++ {
		p := next(t, a)
		seen[string(p)] = true
		if i == 4 {
			firstA = p
		}
	}
	for {
		p := next(t, b)
		if bytes.Equal(p, firstA) {
			break
		}
	}
	last := 0
	for i := 0; i < 30; i++ { // three loops of the scene
		pa, pb := next(t, a), next(t, b)
		if !bytes.Equal(pa, pb) {
			t.Fatalf("picture %d differs between two clients", i)
		}
		if seen[string(pa)] {
			t.Fatalf("picture %d seen before", i)
		}
		seen[string(pa)] = true
		n, err := PictureNumber(pa)
		if err != nil {
			t.Fatal(err)
		}
		if prev := last; i > 0 && n != prev+1 {
			t.Fatalf("picture number %d after %d", n, prev)
		}
		last = n
	}
}

func openParts(ctx context.Context, t *testing.T, url string) *multipart.Reader {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	return multipart.NewReader(bufio.NewReader(resp.Body), params["boundary"])
}

func next(t *testing.T, r *multipart.Reader) []byte {
	t.Helper()
	p, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
