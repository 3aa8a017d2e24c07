package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config locates a bucket of an S3-compatible service.
type S3Config struct {
	Endpoint  string // host:port, no scheme
	Secure    bool   // https
	Region    string // "" lets the client discover it
	Bucket    string
	Prefix    string // key prefix inside the bucket, e.g. "cefiot/" ("" for none)
	AccessKey string
	SecretKey string
	// CreateBucket creates the bucket at open when it does not exist.
	CreateBucket bool
	// Timeout bounds every request (default 30s).
	Timeout time.Duration
}

// S3Objects keeps objects in an S3 bucket through minio-go. An S3 PUT is
// atomic (readers see the old object or the whole new one) and durable when
// acknowledged, which is the Objects contract.
type S3Objects struct {
	cfg    S3Config
	client *minio.Client
}

var _ Objects = (*S3Objects)(nil)

// NewS3Objects connects to the bucket and checks that it exists (creating
// it when cfg.CreateBucket is set). Errors name the endpoint and bucket.
func NewS3Objects(ctx context.Context, cfg S3Config) (*S3Objects, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3 objects: endpoint and bucket are required")
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, fmt.Errorf("s3 objects: transport: %w", err)
	}
	tr.ResponseHeaderTimeout = cfg.Timeout
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.Secure,
		Region:    cfg.Region,
		Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 objects %s: %w", cfg.Endpoint, err)
	}
	o := &S3Objects{cfg: cfg, client: client}
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	ok, err := client.BucketExists(cctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 objects: bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if !ok {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("s3 objects: bucket %s at %s does not exist", cfg.Bucket, cfg.Endpoint)
		}
		if err := client.MakeBucket(cctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, fmt.Errorf("s3 objects: create bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
		}
	}
	return o, nil
}

// Kind implements Objects.
func (o *S3Objects) Kind() string { return "s3" }

// Describe implements Objects.
func (o *S3Objects) Describe() string {
	scheme := "http"
	if o.cfg.Secure {
		scheme = "https"
	}
	return fmt.Sprintf("s3 %s://%s/%s/%s", scheme, o.cfg.Endpoint, o.cfg.Bucket, o.cfg.Prefix)
}

func (o *S3Objects) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, o.cfg.Timeout)
}

// Put implements Objects.
func (o *S3Objects) Put(ctx context.Context, key string, data []byte) error {
	ctx, cancel := o.ctx(ctx)
	defer cancel()
	ct := "application/octet-stream"
	if strings.HasSuffix(key, ".jpg") {
		ct = "image/jpeg"
	}
	_, err := o.client.PutObject(ctx, o.cfg.Bucket, o.cfg.Prefix+key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: ct, DisableMultipart: true, SendContentMd5: true})
	if err != nil {
		return fmt.Errorf("s3 put %s/%s%s: %w", o.cfg.Bucket, o.cfg.Prefix, key, err)
	}
	return nil
}

// Get implements Objects.
func (o *S3Objects) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := o.ctx(ctx)
	defer cancel()
	obj, err := o.client.GetObject(ctx, o.cfg.Bucket, o.cfg.Prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, o.mapErr("get", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		return nil, o.mapErr("get", key, err)
	}
	return b, nil
}

func (o *S3Objects) mapErr(op, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	if resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %s", ErrObjectNotFound, key)
	}
	return fmt.Errorf("s3 %s %s/%s%s: %w", op, o.cfg.Bucket, o.cfg.Prefix, key, err)
}

// Delete implements Objects.
func (o *S3Objects) Delete(ctx context.Context, key string) error {
	ctx, cancel := o.ctx(ctx)
	defer cancel()
	if err := o.client.RemoveObject(ctx, o.cfg.Bucket, o.cfg.Prefix+key, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		return fmt.Errorf("s3 delete %s/%s%s: %w", o.cfg.Bucket, o.cfg.Prefix, key, err)
	}
	return nil
}

// List implements Objects.
func (o *S3Objects) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range o.client.ListObjects(ctx, o.cfg.Bucket, minio.ListObjectsOptions{Prefix: o.cfg.Prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("s3 list %s/%s%s: %w", o.cfg.Bucket, o.cfg.Prefix, prefix, obj.Err)
		}
		if err := fn(ObjectInfo{Key: strings.TrimPrefix(obj.Key, o.cfg.Prefix), Size: obj.Size}); err != nil {
			return err
		}
	}
	return ctx.Err()
}
