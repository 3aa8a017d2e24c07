#!/usr/bin/env bash
# Fetch real footage with people in it for the object-label tests and
# benchmark: OpenCV's pedestrian sample vtest.avi (768x576, 10 fps, people
# walking through a hall), from Debian 12's opencv-doc package. The package
# is downloaded and the one file extracted with dpkg-deb, never installed
# (minimal images often leave /usr/share/doc out). A second call returns at
# once.
#
# Usage: scripts/fetch-footage.sh   (prints the video's path on stdout)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/.cache/footage"
video="$dir/vtest.avi"
if [[ -s "$video" ]]; then
	echo "$video"
	exit 0
fi
mkdir -p "$dir/deb"
(cd "$dir/deb" && apt-get download opencv-doc >/dev/null)
deb=$(ls "$dir"/deb/opencv-doc_*.deb | head -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/share/doc/opencv-doc/examples/data/vtest.avi
mv "$tmp/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$video.part"
mv "$video.part" "$video"
rm -rf "$dir/deb"
echo "$video"
