// The SDP munging of music mode (static/musicmode.js): Opus gets stereo,
// the music bitrate and no DTX; what the SFU negotiates (minptime,
// useinbandfec) is kept; other codecs and line endings are untouched.
// Run by TestJavaScriptHelpers or directly: node --test internal/ui/jstest/
import { test } from "node:test";
import assert from "node:assert/strict";

import { musicSdp, remoteDescription, music, MUSIC_BITRATE, MUSIC_AUDIO } from "../static/musicmode.js";

const sfuAnswer = [
  "v=0", "o=- 1 2 IN IP4 0.0.0.0", "s=-", "t=0 0",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0",
  "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
  "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1",
  "a=rtpmap:96 VP8/90000", "a=fmtp:96 x-google-start-bitrate=800", "",
].join("\r\n");

/** @param {string} sdp @param {string} pt */
function fmtp(sdp, pt) {
  const line = sdp.split("\r\n").find((l) => l.startsWith(`a=fmtp:${pt} `));
  return line ? Object.fromEntries(line.slice(`a=fmtp:${pt} `.length).split(";").map((kv) => kv.split("="))) : null;
}

test("musicSdp adds stereo, the bitrate and usedtx=0 to Opus and keeps the SFU's parameters", () => {
  const out = musicSdp(sfuAnswer, 160000);
  assert.deepEqual(fmtp(out, "111"), {
    minptime: "10", useinbandfec: "1", stereo: "1", "sprop-stereo": "1", maxaveragebitrate: "160000", usedtx: "0",
  });
  assert.deepEqual(fmtp(out, "96"), { "x-google-start-bitrate": "800" }, "VP8 untouched");
  assert.ok(out.endsWith("\r\n") && !/[^\r]\n/.test(out), "CRLF line endings kept");
  assert.equal(out.split("\r\n").length, sfuAnswer.split("\r\n").length, "no line added or lost");
});

test("musicSdp overrides a speech setting (stereo=0, usedtx=1) and is idempotent", () => {
  const speech = sfuAnswer.replace("minptime=10;useinbandfec=1", "minptime=10;useinbandfec=1;stereo=0;usedtx=1");
  const once = musicSdp(speech);
  assert.equal(fmtp(once, "111").stereo, "1");
  assert.equal(fmtp(once, "111").usedtx, "0");
  assert.equal(fmtp(once, "111").maxaveragebitrate, String(MUSIC_BITRATE));
  assert.equal(musicSdp(once), once);
});

test("musicSdp gives an Opus payload type without fmtp one, after its rtpmap", () => {
  const bare = ["v=0", "m=audio 9 RTP/AVP 109 0", "a=rtpmap:109 OPUS/48000/2", "a=rtpmap:0 PCMU/8000", ""].join("\n");
  const out = musicSdp(bare).split("\n");
  assert.equal(out[3], `a=fmtp:109 stereo=1;sprop-stereo=1;maxaveragebitrate=${MUSIC_BITRATE};usedtx=0`);
  assert.equal(out[4], "a=rtpmap:0 PCMU/8000");
});

test("musicSdp leaves an SDP without Opus, and junk, alone", () => {
  const vp8 = "v=0\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
  assert.equal(musicSdp(vp8), vp8);
  assert.equal(musicSdp(""), "");
});

test("remoteDescription munges only in music mode", () => {
  const d = { type: /** @type {const} */ ("answer"), sdp: sfuAnswer };
  music.on = false;
  assert.equal(remoteDescription(d), d);
  music.on = true;
  try {
    assert.equal(fmtp(remoteDescription(d).sdp ?? "", "111").stereo, "1");
    assert.deepEqual(remoteDescription({ type: "rollback" }), { type: "rollback" });
  } finally {
    music.on = false;
  }
});

test("music mode's microphone has every speech processing off and asks for stereo", () => {
  assert.equal(MUSIC_AUDIO.echoCancellation, false);
  assert.equal(MUSIC_AUDIO.noiseSuppression, false);
  assert.equal(MUSIC_AUDIO.autoGainControl, false);
  assert.deepEqual(MUSIC_AUDIO.channelCount, { ideal: 2 });
  assert.ok(MUSIC_BITRATE >= 128000);
});
