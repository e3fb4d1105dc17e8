// @ts-check
// Music mode for the call ("Monitor like musicians need", docs/studio.md):
// the microphone without echo cancellation, noise suppression and auto gain,
// in stereo where the device has it; Opus in stereo at a music bitrate
// without DTX; and the smallest jitter buffer the browser allows.
//
// It is each participant's own switch (what they send and how they listen),
// announced to the others as `state.music` (docs/protocol.md), so a band sees
// who plays unprocessed. peer.js and sfu.js register their connections here
// and pass every description through localDescription/remoteDescription, so
// a connection made while music mode is on (a reconnect, a newcomer, a
// switch to the SFU) is in music mode from its first offer.

/** Opus bitrate in music mode, bit/s: stereo music, well above speech's ~32 kbit/s. */
export const MUSIC_BITRATE = 160_000;

/** Microphone constraints in music mode: no speech processing, stereo if the device has it. */
export const MUSIC_AUDIO = Object.freeze({
  echoCancellation: false,
  noiseSuppression: false,
  autoGainControl: false,
  channelCount: { ideal: 2 },
});

/** Whether this page is in music mode (the one switch every module reads). */
export const music = { on: false };

/**
 * Adds to every Opus payload type of an SDP the parameters of music mode:
 * `stereo=1; sprop-stereo=1; maxaveragebitrate=…; usedtx=0`. Other
 * parameters (the SFU's `minptime=10;useinbandfec=1`) are kept, so what
 * the server negotiates still matches; other codecs are left alone. An
 * Opus payload type without an fmtp line gets one. Line endings are kept.
 * @param {string} sdp
 * @param {number} [bitrate]
 * @returns {string}
 */
export function musicSdp(sdp, bitrate = MUSIC_BITRATE) {
  if (typeof sdp !== "string" || !sdp) return sdp;
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const lines = sdp.split(/\r?\n/);
  const trailing = lines.length > 0 && lines[lines.length - 1] === "";
  if (trailing) lines.pop();
  /** @type {Set<string>} */
  const opus = new Set();
  for (const l of lines) {
    const m = /^a=rtpmap:(\d+) opus\/48000/i.exec(l);
    if (m) opus.add(m[1]);
  }
  if (opus.size === 0) return sdp;
  /** @type {Set<string>} */
  const done = new Set();
  /** @param {string} params */
  const merge = (params) => {
    /** @type {Map<string, string>} */
    const kv = new Map();
    for (const p of params.split(";")) {
      const t = p.trim();
      if (!t) continue;
      const i = t.indexOf("=");
      kv.set(i < 0 ? t : t.slice(0, i).trim(), i < 0 ? "" : t.slice(i + 1).trim());
    }
    kv.set("stereo", "1");
    kv.set("sprop-stereo", "1");
    kv.set("maxaveragebitrate", String(Math.round(bitrate)));
    kv.set("usedtx", "0");
    return [...kv].map(([k, v]) => (v === "" ? k : `${k}=${v}`)).join(";");
  };
  /** @type {string[]} */
  const out = [];
  for (const l of lines) {
    const f = /^a=fmtp:(\d+) ?(.*)$/.exec(l);
    if (f && opus.has(f[1])) {
      out.push(`a=fmtp:${f[1]} ${merge(f[2])}`);
      done.add(f[1]);
      continue;
    }
    out.push(l);
  }
  // Opus payload types without an fmtp line: one right after the rtpmap.
  for (const pt of opus) {
    if (done.has(pt)) continue;
    const i = out.findIndex((l) => new RegExp(`^a=rtpmap:${pt} `).test(l));
    if (i >= 0) out.splice(i + 1, 0, `a=fmtp:${pt} ${merge("")}`);
  }
  return out.join(eol) + (trailing ? eol : "");
}

/**
 * A description to give setRemoteDescription: in music mode its Opus
 * parameters ask our encoder for stereo, the bitrate and no DTX.
 * @param {RTCSessionDescriptionInit} d
 * @returns {RTCSessionDescriptionInit}
 */
export function remoteDescription(d) {
  if (!music.on || !d.sdp || d.type === "rollback") return d;
  return { type: d.type, sdp: musicSdp(d.sdp) };
}

/**
 * setLocalDescription, with our Opus parameters munged in music mode (they
 * tell the other side to send us stereo at the bitrate, and our decoder to
 * output stereo). Outside music mode it is the implicit form.
 * @param {RTCPeerConnection} pc
 */
export async function setLocal(pc) {
  if (!music.on) return pc.setLocalDescription();
  const d = pc.signalingState === "have-remote-offer" ? await pc.createAnswer() : await pc.createOffer();
  return pc.setLocalDescription({ type: d.type, sdp: musicSdp(d.sdp ?? "") });
}

/**
 * @typedef {object} Registered
 * @property {RTCPeerConnection} pc
 * @property {() => void} renegotiate  makes a new offer (so the Opus parameters apply)
 */

/** @type {Set<Registered>} */
const connections = new Set();

/**
 * Registers a connection: its audio senders and receivers follow music
 * mode, now and when it is switched. Returns the unregister function.
 * @param {RTCPeerConnection} pc
 * @param {() => void} renegotiate
 * @returns {() => void}
 */
export function register(pc, renegotiate) {
  const r = { pc, renegotiate };
  connections.add(r);
  return () => { connections.delete(r); };
}

/**
 * Sets one audio receiver's jitter buffer: as small as the browser allows
 * in music mode (jitterBufferTarget 0, Chromium), the browser's own choice
 * otherwise. Browsers without the attribute are left alone.
 * @param {RTCRtpReceiver} receiver
 */
export function tuneReceiver(receiver) {
  if (receiver.track?.kind !== "audio" || !("jitterBufferTarget" in receiver)) return;
  try {
    /** @type {{jitterBufferTarget: number|null}} */ (/** @type {unknown} */ (receiver)).jitterBufferTarget = music.on ? 0 : null;
  } catch (err) {
    console.info("parley: jitterBufferTarget not settable", err);
  }
}

/**
 * Sets an audio sender's bitrate cap: MUSIC_BITRATE in music mode, none
 * (the browser's) otherwise.
 * @param {RTCRtpSender} sender
 */
async function tuneSender(sender) {
  if (sender.track?.kind !== "audio") return;
  const p = sender.getParameters();
  if (!p.encodings?.length) return; // not negotiated yet: the next call sets it
  const want = music.on ? MUSIC_BITRATE : undefined;
  // Speech mode on a sender never switched: nothing to change (and no
  // setParameters racing the other modules' own).
  if (p.encodings.every((e) => e.maxBitrate === want)) return;
  for (const e of p.encodings) {
    if (want) e.maxBitrate = want;
    else delete e.maxBitrate;
  }
  try {
    await sender.setParameters(p);
  } catch (err) {
    console.info("parley: audio sender parameters not set", err);
  }
}

/**
 * Applies music mode to one connection's audio senders and receivers
 * (after each negotiation: senders have encodings only then).
 * @param {RTCPeerConnection} pc
 */
export async function tune(pc) {
  for (const r of pc.getReceivers()) tuneReceiver(r);
  await Promise.all(pc.getSenders().map(tuneSender));
}

/**
 * Opens the microphone for a mode, on the device the current track uses.
 * @param {boolean} on
 * @param {MediaStreamTrack|undefined} current
 * @returns {Promise<MediaStreamTrack>}
 */
async function openMic(on, current) {
  const deviceId = current?.getSettings().deviceId;
  /** @type {MediaTrackConstraints} */
  const c = on ? { ...MUSIC_AUDIO } : {};
  if (deviceId) c.deviceId = { exact: deviceId };
  const s = await navigator.mediaDevices.getUserMedia({ audio: c });
  return s.getAudioTracks()[0];
}

/**
 * Switches this page's music mode: reopens the microphone with (or
 * without) speech processing, swaps it into the local stream and every
 * connection, retunes senders and receivers and renegotiates so the Opus
 * parameters apply. Throws the getUserMedia error (nothing changed then).
 * @param {boolean} on
 * @param {MediaStream|null} stream the local camera+mic stream
 */
export async function setMusic(on, stream) {
  const old = stream?.getAudioTracks()[0];
  if (stream && old) {
    const t = await openMic(on, old);
    t.enabled = old.enabled;
    for (const { pc } of connections) {
      for (const s of pc.getSenders()) if (s.track === old) await s.replaceTrack(t);
    }
    stream.removeTrack(old);
    stream.addTrack(t);
    old.stop();
  }
  music.on = on;
  for (const r of connections) {
    await tune(r.pc);
    r.renegotiate();
  }
}
