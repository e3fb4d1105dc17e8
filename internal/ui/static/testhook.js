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
    }),
    configurable: false,
    writable: false,
  });
}
