#!/usr/bin/env bash
# Regenerates the small media files the tests send: a 3 s Opus tone in Ogg
# and a 3 s VP8 test pattern in IVF. The outputs are committed so tests do
# not need ffmpeg to have media to send (only to check what they record).
#
#   bash testdata/gen.sh
set -euo pipefail
cd "$(dirname "$0")"

# 440 Hz sine, 48 kHz mono, 20 ms Opus frames (what WebRTC peers send).
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "sine=frequency=440:sample_rate=48000:duration=3" \
	-c:a libopus -b:a 32k -frame_duration 20 -application audio \
	-map_metadata -1 -fflags +bitexact \
	tone.ogg

# 320x240 test pattern at 15 fps, a keyframe every second (15 frames) so a
# receiver that joins late or loses the first frame recovers quickly.
ffmpeg -hide_banner -loglevel error -y \
	-f lavfi -i "testsrc=size=320x240:rate=15:duration=3" \
	-c:v libvpx -b:v 150k -g 15 -keyint_min 15 -auto-alt-ref 0 -deadline good -cpu-used 4 \
	-map_metadata -1 -fflags +bitexact \
	pattern.ivf

ls -l tone.ogg pattern.ivf
