#!/usr/bin/env bash
# Installs, with apt, the system packages cefiot needs that this Debian 12
# machine lacks, and nothing it already has. A machine whose Node.js comes
# from NodeSource keeps it (Debian's npm package conflicts with it; that
# Node.js ships its own npm). Go itself (1.26 or newer) is not installed
# here: Debian 12's Go is too old. Run as root (or through sudo).
set -euo pipefail
need=()
pkg() { dpkg -s "$1" >/dev/null 2>&1 || need+=("$1"); }
cmd() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
cmd git git
cmd make make
cmd gcc gcc
pkg pkg-config
# OpenCV 4.6 (about 840 MB, 4 minutes): what gocv v0.32.0 builds against.
pkg libopencv-dev
# FFmpeg's libraries, read directly for a live stream's own times (capture's avread).
pkg libavformat-dev
pkg libavcodec-dev
pkg libswscale-dev
pkg libavutil-dev
cmd java openjdk-17-jre-headless
cmd mvn maven
# ip and tc (network namespaces, veth, tc) for the bridge's WAN fault tests.
cmd tc iproute2
# Cross compilers for the linux/arm64 images (capture's is C++: gocv).
pkg gcc-aarch64-linux-gnu
pkg libc6-dev-arm64-cross
pkg g++-aarch64-linux-gnu
# qemu-aarch64-static: the image tests run the arm64 images' binaries (capture decoding and detecting) on this amd64 machine.
cmd qemu-aarch64-static qemu-user-static
# ffmpeg with libx264 and libx265: the RTSP tests' H.264 and H.265 cameras.
cmd ffmpeg ffmpeg
# The console's single sign-on test: a real reverse proxy in front of it.
cmd nginx nginx-light
# The console's browser test: Debian's Chromium, driven by playwright-core on node.
pkg chromium
cmd node nodejs
cmd npm npm
# Mosquitto: the MQTT broker the event notifier's tests deliver to (over TLS).
pkg mosquitto
# PostgreSQL 15 server (initdb, postgres in /usr/lib/postgresql/15/bin): the tests' real database (libs/harness/pglocal).
pkg postgresql-15
# runc and the CNI plugins (/usr/lib/cni): the one-node test cluster's
# containers and pod network (k8s/check/internal/kubenode).
pkg runc
pkg containernetworking-plugins
# nft: kube-proxy's nftables mode runs it to write the Services' rules;
# without it a Service's cluster address reaches nothing.
cmd nft nftables
# The site images of the test cluster (make site-images): jlink makes the
# Kafka image's Java runtime, busybox is its shell and tools.
cmd jlink openjdk-17-jdk-headless
pkg busybox-static
if ((${#need[@]} == 0)); then
  echo "install-deps: every system package is present"
  exit 0
fi
echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
