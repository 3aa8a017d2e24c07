#!/usr/bin/env bash
# Build an arm64 sysroot holding OpenCV 4.6 (the modules gocv links), the
# headers of FFmpeg's libraries, and every shared library those need, from
# Debian 12's arm64 packages, into <repo>/.cache/sysroot-arm64. cmd/cefiot-images cross-compiles capture
# against it and copies the libraries capture loads into its linux/arm64
# image. Nothing on the system changes: apt runs with a private state
# directory (no `dpkg --add-architecture`), and the packages are unpacked
# with `dpkg -x`, never installed. A second call returns at once.
#
# Usage: scripts/fetch-arm64-opencv.sh   (prints the sysroot's path on stdout)
#
# Needs apt-get and dpkg-deb (Debian 12 or a derivative with the same
# archive); the sources are those of this machine (/etc/apt/sources.list*).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.cache"
sysroot="$cache/sysroot-arm64"
# OpenCV modules: the ones gocv's main package links (runtime packages,
# whose dependencies apt resolves), and the ones whose headers
# <opencv2/opencv.hpp> includes (-dev packages, fetched without dependencies).
link_modules=(core imgproc imgcodecs videoio highgui video objdetect calib3d features2d dnn photo)
header_modules=("${link_modules[@]}" flann ml stitching)
version=2 # bump when the package list changes
marker="$sysroot/.cefiot-sysroot-v$version"
if [[ -f "$marker" ]]; then
	echo "$sysroot"
	exit 0
fi

apt_dir="$cache/apt-arm64"
mkdir -p "$apt_dir"/{etc/apt.conf.d,etc/preferences.d,etc/sources.list.d,state/lists/partial,archives/partial,dev}
: >"$apt_dir/state/status"
cp /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list "$apt_dir/etc/sources.list.d/" 2>/dev/null || true
if [[ -f /etc/apt/sources.list ]]; then
	cp /etc/apt/sources.list "$apt_dir/etc/"
else
	: >"$apt_dir/etc/sources.list"
fi
apt_opts=(
	-o "Dir::Etc=$apt_dir/etc" -o "Dir::State=$apt_dir/state" -o "Dir::State::status=$apt_dir/state/status"
	-o "Dir::Cache=$apt_dir" -o "Dir::Cache::archives=$apt_dir/archives"
	-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1
	-o APT::Sandbox::User=root
)
runtime_pkgs=()
for m in "${link_modules[@]}"; do runtime_pkgs+=("libopencv-$m""406"); done
dev_pkgs=()
for m in "${header_modules[@]}"; do dev_pkgs+=("libopencv-$m-dev"); done
# FFmpeg's headers and link names: capture reads network streams through
# FFmpeg's libraries directly (their runtime packages are OpenCV's).
dev_pkgs+=(libavformat-dev libavcodec-dev libswscale-dev libavutil-dev)

start=$(date +%s)
echo "fetch-arm64-opencv: resolving and downloading Debian arm64 packages into $apt_dir" >&2
apt-get "${apt_opts[@]}" -qq update >&2
# The whole runtime closure (the dpkg status is empty, so it includes glibc
# and libstdc++ for arm64 too).
apt-get "${apt_opts[@]}" -y -qq --download-only --no-install-recommends install "${runtime_pkgs[@]}" >&2
(cd "$apt_dir/dev" && apt-get "${apt_opts[@]}" -qq download "${dev_pkgs[@]}" >&2)
echo "fetch-arm64-opencv: downloaded in $(($(date +%s) - start))s; unpacking" >&2

tmp="$sysroot.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
for deb in "$apt_dir"/archives/*.deb "$apt_dir"/dev/*.deb; do
	dpkg-deb -x "$deb" "$tmp"
done
rm -rf "$sysroot"
mv "$tmp" "$sysroot"
touch "$marker"
echo "fetch-arm64-opencv: sysroot ready in $(($(date +%s) - start))s" >&2
echo "$sysroot"
