package ociimage

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cefiot/cefiot/libs/kafkaconf"
)

// The site images are the two images every site runs besides the cefiot
// services (k8s/base): its Kafka and its etcd. The overlays name the
// upstream images (apache/kafka, gcr.io/etcd-development/etcd); these are
// the same releases built here, for clusters that reach no registry (the
// project's one-node test cluster):
//
//   - etcd: the etcd server of the version tools/etcd/go.mod pins, built
//     from its Go module, static, alone in its image;
//   - kafka: the broker jars fetched from Maven Central (fetch-kafka.sh),
//     a Java runtime made with jlink from this machine's JDK, the shared
//     libraries it loads, a static busybox for the start script's shell
//     and tools, and small scripts in /opt/kafka/bin that start the jars'
//     main classes in place of Kafka's own (which Maven does not carry).
//
// They are built for this machine's architecture only: the Java runtime and
// its libraries are this machine's.
const (
	KafkaRepo = "apache/kafka"
	EtcdRepo  = "gcr.io/etcd-development/etcd"
	// KafkaUID is the user the Kafka image and the overlays run as (the
	// upstream image's appuser).
	KafkaUID = 1000
	// KafkaHome and JavaHome are where the image keeps Kafka and the Java
	// runtime; the start script (k8s/base/kafka-start.sh) reads KAFKA_HOME.
	KafkaHome = "/opt/kafka"
	JavaHome  = "/opt/java"
)

// SiteOptions say where the site images' parts come from.
type SiteOptions struct {
	// KafkaLibs is the directory of the Kafka broker's jars
	// (scripts/fetch-kafka.sh prints it); their version is that of
	// kafka-clients among them.
	KafkaLibs string
}

// javaModules are the Java runtime's modules the broker and its tools use
// (the modules of a JRE, less the GUI's native parts' users).
var javaModules = []string{
	"java.base", "java.compiler", "java.desktop", "java.instrument", "java.logging", "java.management",
	"java.management.rmi", "java.naming", "java.net.http", "java.prefs", "java.rmi", "java.scripting",
	"java.security.jgss", "java.security.sasl", "java.sql", "java.transaction.xa", "java.xml",
	"jdk.crypto.cryptoki", "jdk.crypto.ec", "jdk.jfr", "jdk.management", "jdk.management.jfr",
	"jdk.naming.dns", "jdk.net", "jdk.security.auth", "jdk.security.jgss", "jdk.unsupported", "jdk.zipfs",
}

// headlessSkip are the Java runtime's native libraries a headless broker
// never loads (windowing, sound, fonts, smart cards, debugging): their
// libraries are not carried.
var headlessSkip = []string{"awt", "splashscreen", "jawt", "jsound", "fontmanager", "mlib_image", "javajpeg", "lcms", "j2pcsc", "saproc", "atk", "sctp"}

// kafkaScripts are the image's /opt/kafka/bin: the commands of Kafka's
// own bin/ that the start script runs, each one main class.
var kafkaScripts = map[string]string{
	"kafka-server-start.sh": "kafka.Kafka",
	"kafka-storage.sh":      "kafka.tools.StorageTool",
	"kafka-configs.sh":      "kafka.admin.ConfigCommand",
	"kafka-topics.sh":       "org.apache.kafka.tools.TopicCommand",
	"kafka-acls.sh":         "kafka.admin.AclCommand",
}

const kafkaRunClass = `#!/bin/sh
# Runs a main class of Kafka's jars on the image's Java runtime, as Kafka's
# kafka-run-class.sh does: KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS and
# KAFKA_OPTS as there; logs to the console.
KAFKA_HOME="${KAFKA_HOME:-` + KafkaHome + `}"
exec ` + JavaHome + `/bin/java ${KAFKA_HEAP_OPTS:--Xmx256m} \
  ${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true} \
  ${KAFKA_OPTS:-} -Dlog4j2.configurationFile="$KAFKA_HOME/config/log4j2.properties" \
  -cp "$KAFKA_HOME/libs/*" "$@"
`

// busyboxApplets are the commands of the Kafka image's /bin, each a link to
// busybox: the start script's (sh, cat, mv, tr, grep, md5sum, sleep, ...)
// and an operator's first look inside (ls, ps, env, id).
var busyboxApplets = []string{
	"sh", "ash", "cat", "cp", "cut", "date", "echo", "env", "grep", "head", "hostname", "id", "kill",
	"ls", "md5sum", "mkdir", "mv", "ps", "rm", "sed", "sleep", "sort", "tail", "test", "touch", "tr", "true", "false", "wc",
}

// BuildSiteImages builds the Kafka and etcd images into o.Out/kafka and
// o.Out/etcd.
func BuildSiteImages(ctx context.Context, o Options, so SiteOptions) ([]Result, error) {
	p := Platform{OS: "linux", Arch: runtime.GOARCH}
	work, err := os.MkdirTemp("", "cefiot-site-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	etcdVersion, err := moduleVersion(ctx, filepath.Join(o.Root, "tools", "etcd"), "go.etcd.io/etcd/server/v3")
	if err != nil {
		return nil, err
	}
	etcdBin := filepath.Join(work, "etcd")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", etcdBin, "go.etcd.io/etcd/server/v3")
	build.Dir = filepath.Join(o.Root, "tools", "etcd")
	build.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build etcd %s: %w\n%s", etcdVersion, err, lastLines(string(out), 20))
	}
	etcdImg, err := etcdImage(o, p, etcdBin, etcdVersion)
	if err != nil {
		return nil, fmt.Errorf("etcd image: %w", err)
	}
	var results []Result
	r, err := writeSingle(o, "etcd", EtcdRepo+":"+etcdVersion, p, etcdImg)
	if err != nil {
		return nil, err
	}
	results = append(results, r)

	clients, _ := filepath.Glob(filepath.Join(so.KafkaLibs, "kafka-clients-*.jar"))
	if len(clients) != 1 {
		return results, fmt.Errorf("kafka image: %s holds %d kafka-clients jars, want 1 (scripts/fetch-kafka.sh)", so.KafkaLibs, len(clients))
	}
	kafkaVersion := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(clients[0]), "kafka-clients-"), ".jar")
	kafkaImg, err := kafkaImage(ctx, o, p, so, kafkaVersion, work)
	if err != nil {
		return results, fmt.Errorf("kafka image: %w", err)
	}
	r, err = writeSingle(o, "kafka", KafkaRepo+":"+kafkaVersion, p, kafkaImg)
	if err != nil {
		return results, err
	}
	return append(results, r), nil
}

// moduleVersion is the version of module in the go.mod of dir.
func moduleVersion(ctx context.Context, dir, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", module)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s in %s: %w", module, dir, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func etcdImage(o Options, p Platform, binary, version string) (v1.Image, error) {
	base, err := baseLayer(o.Created)
	if err != nil {
		return nil, err
	}
	bin, err := filesLayerAt(o.Created, map[string]string{BinDir + "/etcd": binary}, 0o755)
	if err != nil {
		return nil, err
	}
	return configured(o, p, []v1.Layer{base, bin}, v1.Config{
		Entrypoint: []string{BinDir + "/etcd"},
		User:       fmt.Sprintf("%d:%d", UID, UID),
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Labels:     map[string]string{"org.opencontainers.image.title": "etcd", "org.opencontainers.image.version": version},
	})
}

func kafkaImage(ctx context.Context, o Options, p Platform, so SiteOptions, version, work string) (v1.Image, error) {
	jre := filepath.Join(work, "jre")
	jlink := exec.CommandContext(ctx, "jlink", "--add-modules", strings.Join(javaModules, ","),
		"--strip-debug", "--no-man-pages", "--no-header-files", "--output", jre)
	if out, err := jlink.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("jlink (a JDK is needed: openjdk-17-jdk-headless): %w\n%s", err, lastLines(string(out), 10))
	}
	t := newTar(o.Created)
	// Users: the broker's appuser, as upstream.
	for name, data := range map[string]string{
		"/etc/passwd":        fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nappuser:x:%d:%d:appuser:/home/appuser:/bin/sh\n", KafkaUID, KafkaUID),
		"/etc/group":         fmt.Sprintf("root:x:0:\nappuser:x:%d:\n", KafkaUID),
		"/etc/nsswitch.conf": "hosts: files dns\npasswd: files\ngroup: files\n",
	} {
		if err := t.file(name, 0o644, []byte(data)); err != nil {
			return nil, err
		}
	}
	if err := t.dir("/tmp", 0o1777, 0); err != nil {
		return nil, err
	}
	if err := t.dir("/home/appuser", 0o700, KafkaUID); err != nil {
		return nil, err
	}
	// The shell and tools.
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return nil, fmt.Errorf("busybox (Debian's busybox-static): %w", err)
	}
	if out, err := exec.CommandContext(ctx, "ldd", busybox).CombinedOutput(); err == nil || !strings.Contains(string(out), "not a dynamic") {
		return nil, fmt.Errorf("%s is not static (install busybox-static)", busybox)
	}
	if err := t.hostFile("/bin/busybox", busybox, 0o755); err != nil {
		return nil, err
	}
	for _, a := range busyboxApplets {
		if err := t.symlink("/bin/"+a, "busybox"); err != nil {
			return nil, err
		}
	}
	// The Java runtime and the libraries it loads.
	var natives []string
	err = filepath.WalkDir(jre, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(jre, p)
		mode := int64(0o644)
		if strings.HasPrefix(rel, "bin/") || rel == "lib/jspawnhelper" || rel == "lib/jexec" {
			mode = 0o755
		}
		if strings.HasSuffix(rel, ".so") {
			if skipped(path.Base(rel)) {
				return nil
			}
			natives = append(natives, p)
		}
		return t.hostFile(path.Join(JavaHome, filepath.ToSlash(rel)), p, mode)
	})
	if err != nil {
		return nil, fmt.Errorf("java runtime: %w", err)
	}
	libs := map[string]bool{}
	// The runtime's own libraries find each other by their run path; ldd
	// looks at them one by one.
	env := append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(jre, "lib", "server")+":"+filepath.Join(jre, "lib"))
	for _, n := range append([]string{filepath.Join(jre, "bin", "java")}, natives...) {
		found, err := sharedLibraries(ctx, n, env)
		if err != nil {
			return nil, err
		}
		for _, l := range found {
			if !strings.HasPrefix(l, jre) {
				libs[l] = true
			}
		}
	}
	for _, l := range sortedSet(libs) {
		if err := t.hostFile(l, l, 0o755); err != nil {
			return nil, err
		}
	}
	// Kafka.
	jars, err := filepath.Glob(filepath.Join(so.KafkaLibs, "*.jar"))
	if err != nil || len(jars) == 0 {
		return nil, fmt.Errorf("no jars in %s (scripts/fetch-kafka.sh): %v", so.KafkaLibs, err)
	}
	sort.Strings(jars)
	for _, j := range jars {
		if err := t.hostFile(KafkaHome+"/libs/"+filepath.Base(j), j, 0o644); err != nil {
			return nil, err
		}
	}
	if err := t.file(KafkaHome+"/bin/kafka-run-class.sh", 0o755, []byte(kafkaRunClass)); err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(kafkaScripts) {
		heap := ""
		if name == "kafka-server-start.sh" {
			heap = "export KAFKA_HEAP_OPTS=\"${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}\"\n"
		}
		script := "#!/bin/sh\n" + heap + "exec \"$(dirname \"$0\")/kafka-run-class.sh\" " + kafkaScripts[name] + " \"$@\"\n"
		if err := t.file(KafkaHome+"/bin/"+name, 0o755, []byte(script)); err != nil {
			return nil, err
		}
	}
	if err := t.file(KafkaHome+"/config/log4j2.properties", 0o644, []byte(kafkaconf.Log4j2Properties)); err != nil {
		return nil, err
	}
	layer, err := t.layer()
	if err != nil {
		return nil, err
	}
	return configured(o, p, []v1.Layer{layer}, v1.Config{
		Cmd:        []string{KafkaHome + "/bin/kafka-server-start.sh"},
		User:       fmt.Sprintf("%d:%d", KafkaUID, KafkaUID),
		WorkingDir: "/home/appuser",
		Env:        []string{"PATH=" + JavaHome + "/bin:" + KafkaHome + "/bin:/bin", "JAVA_HOME=" + JavaHome, "KAFKA_HOME=" + KafkaHome},
		Labels:     map[string]string{"org.opencontainers.image.title": "kafka", "org.opencontainers.image.version": version},
	})
}

func skipped(lib string) bool {
	for _, s := range headlessSkip {
		if strings.Contains(lib, s) {
			return true
		}
	}
	return false
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// configured is an OCI image of layers with config c.
func configured(o Options, p Platform, layers []v1.Layer, c v1.Config) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Arch
	cf.Created = v1.Time{Time: o.Created}
	cf.Config = c
	return mutate.ConfigFile(img, cf)
}

// writeSingle writes a layout of one platform's image under o.Out/name.
func writeSingle(o Options, name, ref string, p Platform, img v1.Image) (Result, error) {
	res := Result{Service: name, Ref: ref, Layout: filepath.Join(o.Out, name), Platforms: []Platform{p}, Static: true}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{
		Add:        img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
	})
	if err := os.RemoveAll(res.Layout); err != nil {
		return res, err
	}
	lp, err := layout.Write(res.Layout, empty.Index)
	if err != nil {
		return res, fmt.Errorf("%s: write layout: %w", name, err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefName: qualified(ref)})); err != nil {
		return res, fmt.Errorf("%s: write layout: %w", name, err)
	}
	var derr error
	res.Digest, derr = idx.Digest()
	o.Logger.Info("image built", "image", ref, "platform", p.String())
	return res, derr
}

// qualified is ref with its registry: a container runtime looks up
// apache/kafka:4.1.1 as docker.io/apache/kafka:4.1.1, and names an
// imported image by its layout's reference as written.
func qualified(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	switch {
	case !found:
		return "docker.io/library/" + ref
	case strings.ContainsAny(first, ".:") || first == "localhost":
		return ref
	}
	return "docker.io/" + ref
}
