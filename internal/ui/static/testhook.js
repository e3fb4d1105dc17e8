// @ts-check
// window.parley: a read-only peek at the call for the browser tests in
// internal/e2e (and for debugging from the console). Nothing in it could
// leak a credential: no resume token, no TURN secret.

/**
 * What the browser tests read as window.parley.state.
 * @param {import("./call.js").Call} call
 */
export function snapshot(call) {
  const sfu = call.topology.sfu;
  return {
    view: call.view,
    phase: call.session.phase,
    signal: call.sig.state,
    joined: call.session.joined,
    me: { ...call.controls.state },
    participants: [...call.participants.keys()],
    peers: Object.fromEntries([...call.remotes].map(([id, r]) => [id, call.topology.remoteState(r)])),
    topology: call.topology.current,
    // Which path each remote tile shows (differs from topology mid-switch).
    shown: Object.fromEntries([...call.remotes].map(([id, r]) => [id, r.shown])),
    sfu: sfu ? { pub: sfu.pubState, sub: sfu.subState } : null,
    speaker: call.tiles.speaker,
    speakerMessages: call.speakerMessages,
    // The last layout message: what the server was told we draw.
    layout: call.tiles.layout.lastSent,
    // What arrives from each remote (netstats.js): picture size, frame
    // rate, loss, round trip; and whose media has stalled.
    received: Object.fromEntries([...call.tiles.measured].map(([id, m]) => [id,
      { width: m.width, height: m.height, fps: m.fps, loss: m.loss, rtt: m.rtt }])),
    stalled: [...call.tiles.stalled],
  };
}

/**
 * Defines window.parley for this call.
 * @param {import("./call.js").Call} call
 */
export function installTestHook(call) {
  Object.defineProperty(window, "parley", {
    value: Object.freeze({
      get state() { return snapshot(call); },
      get myId() { return call.session.myId; },
      /** {from, to, maxGapMs, perPeer: {id: gapMs}, pending, done} of the last mesh ↔ SFU switch, or null. */
      get lastSwitch() { return call.topology.switchReport(); },
      peers() { return [...call.remotes.keys()]; },
      /**
       * Audio received through the SFU, by publisher id: bytes and the
       * decoded audio energy (non-zero once something audible played).
       * @returns {Promise<Record<string, {bytes: number, energy: number}>>}
       */
      async sfuAudio() {
        /** @type {Record<string, {bytes: number, energy: number}>} */
        const out = {};
        const sfu = call.topology.sfu;
        if (!sfu) return out;
        for (const rc of sfu.sub.getReceivers()) {
          if (rc.track?.kind !== "audio") continue;
          const id = rc.track.id.split(":")[0]; // tracks are PUBLISHER:microphone
          for (const s of (await rc.getStats()).values()) {
            if (s.type !== "inbound-rtp") continue;
            const o = out[id] ??= { bytes: 0, energy: 0 };
            o.bytes += s.bytesReceived || 0;
            o.energy += s.totalAudioEnergy || 0;
          }
        }
        return out;
      },
      /**
       * What each remote camera tile plays, from the receivers' stats
       * (mesh or SFU alike): decoded video frames and audio energy, by
       * participant id. Firefox's getVideoPlaybackQuality stays 0 for
       * remote video, so the cross-browser tests count with this.
       * @returns {Promise<Record<string, {frames: number, energy: number, audioBytes: number}>>}
       */
      inbound() { return inbound(call); },
      /**
       * What we send through the SFU per simulcast layer: size, frame rate,
       * bitrate cap and why the browser limits it (cpu, bandwidth).
       */
      async sfuSent() {
        const sfu = call.topology.sfu;
        if (!sfu) return { layers: [], availableOutgoingBitrate: 0 };
        const layers = [];
        let available = 0;
        for (const s of (await sfu.pub.getStats()).values()) {
          if (s.type === "candidate-pair" && s.nominated) available = s.availableOutgoingBitrate ?? 0;
          if (s.type !== "outbound-rtp" || s.kind !== "video") continue;
          layers.push({ rid: s.rid ?? "", width: s.frameWidth ?? 0, height: s.frameHeight ?? 0, fps: s.framesPerSecond ?? 0,
            limit: s.qualityLimitationReason ?? "", target: s.targetBitrate ?? 0, active: s.active ?? true });
        }
        return { layers, availableOutgoingBitrate: available };
      },
      /**
       * The audio link to one peer (mesh), or the SFU's connections: what
       * the mouth-to-ear measurement (e2e TestMusicModeMouthToEar) reads.
       * @param {string} peerId
       */
      audioLink(peerId) { return audioLink(call, peerId); },
    }),
    configurable: false,
    writable: false,
  });
}

/**
 * Stats of the audio to and from a peer: round-trip time, the receiving
 * jitter buffer's totals, the sending encoder's Opus parameters and
 * bitrate cap, the microphone's settings and this page's audio latencies.
 * @param {import("./call.js").Call} call
 * @param {string} peerId
 */
async function audioLink(call, peerId) {
  const sfu = call.topology.sfu;
  const mesh = call.remotes.get(peerId)?.peer?.pc;
  const send = mesh ?? sfu?.pub;
  const recv = mesh ?? sfu?.sub;
  const out = {
    topology: mesh ? "mesh" : "sfu",
    /** round-trip time (s) of the sending connection, and of the receiving one (the same in the mesh) */
    rtt: 0, recvRtt: 0, jbDelay: 0, jbEmitted: 0, jbTarget: 0, packetsReceived: 0,
    sendFmtp: "", recvFmtp: "", remoteSdp: send?.remoteDescription?.sdp ?? "", maxBitrate: 0, targetBitrate: 0,
    mic: /** @type {MediaTrackSettings} */ ({}), baseLatency: 0, outputLatency: 0,
    /** @type {(number|null)[]} the audio receivers' jitterBufferTarget (ms; null = the browser's) */
    jitterBufferTargets: [],
  };
  if (!send || !recv) return out;
  const stats = [...(await send.getStats()).values()];
  const rstats = recv === send ? stats : [...(await recv.getStats()).values()];
  /** @param {any[]} list @param {string} id */
  const fmtpOf = (list, id) => list.find((x) => x.id === id)?.sdpFmtpLine ?? "";
  for (const x of stats) {
    if (x.type === "candidate-pair" && x.nominated && x.currentRoundTripTime !== undefined) out.rtt = x.currentRoundTripTime;
    if (x.type === "outbound-rtp" && x.kind === "audio") { out.sendFmtp = fmtpOf(stats, x.codecId); out.targetBitrate = x.targetBitrate ?? 0; }
  }
  for (const x of rstats) {
    if (x.type === "candidate-pair" && x.nominated && x.currentRoundTripTime !== undefined) out.recvRtt = x.currentRoundTripTime;
    if (x.type !== "inbound-rtp" || x.kind !== "audio") continue;
    out.jbDelay += x.jitterBufferDelay ?? 0;
    out.jbEmitted += x.jitterBufferEmittedCount ?? 0;
    out.jbTarget += x.jitterBufferTargetDelay ?? 0;
    out.packetsReceived += x.packetsReceived ?? 0;
    out.recvFmtp = fmtpOf(rstats, x.codecId);
  }
  for (const r of recv.getReceivers()) {
    if (r.track?.kind === "audio" && "jitterBufferTarget" in r) out.jitterBufferTargets.push(/** @type {{jitterBufferTarget: number|null}} */ (/** @type {unknown} */ (r)).jitterBufferTarget);
  }
  for (const s of send.getSenders()) {
    if (s.track?.kind !== "audio") continue;
    out.maxBitrate = s.getParameters().encodings?.[0]?.maxBitrate ?? 0;
    out.mic = s.track.getSettings();
  }
  const ctx = new AudioContext();
  out.baseLatency = ctx.baseLatency ?? 0;
  out.outputLatency = ctx.outputLatency ?? 0;
  await ctx.close();
  return out;
}

/**
 * Inbound video frames and audio energy of each remote camera tile.
 * @param {import("./call.js").Call} call
 */
async function inbound(call) {
  /** @type {RTCRtpReceiver[]} */
  const receivers = [];
  for (const r of call.remotes.values()) if (r.peer?.pc) receivers.push(...r.peer.pc.getReceivers());
  if (call.topology.sfu) receivers.push(...call.topology.sfu.sub.getReceivers());
  /** @type {Record<string, {frames: number, energy: number, audioBytes: number}>} */
  const out = {};
  const tiles = document.querySelectorAll("#tiles .tile[data-participant-id]:not(.local):not(.screen)");
  for (const tile of tiles) {
    const id = /** @type {HTMLElement} */ (tile).dataset.participantId ?? "";
    const o = out[id] = { frames: 0, energy: 0, audioBytes: 0 };
    const stream = /** @type {MediaStream|null} */ (tile.querySelector("video")?.srcObject ?? null);
    for (const track of stream?.getTracks() ?? []) {
      const rc = receivers.find((x) => x.track === track);
      if (!rc) continue;
      for (const s of (await rc.getStats()).values()) {
        if (s.type !== "inbound-rtp") continue;
        if (track.kind === "video") o.frames += s.framesDecoded || 0;
        else { o.energy += s.totalAudioEnergy || 0; o.audioBytes += s.bytesReceived || 0; }
      }
    }
  }
  return out;
}
