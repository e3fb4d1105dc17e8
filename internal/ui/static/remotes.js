// @ts-check
// What the call holds for one remote participant, and the per-path facts
// about it: which stream is their camera and which their screen share on
// the mesh connection and on the SFU's subscribe connection. No timers and
// no DOM: topology.js decides which path a participant's tiles show, and
// tiles.js draws them.

/**
 * @typedef {import("./protocol.js").Topology} Topology
 * @typedef {import("./protocol.js").Participant} Participant
 *
 * @typedef {object} RemoteTile  what the media paths need of a camera tile
 * @property {MediaStream|null} source     the stream it shows
 * @property {number} lastFrameAt          performance.now() of the last frame it painted (0: none)
 * @property {(timeoutMs: number) => Promise<number|null>} nextFrame
 *
 * @typedef {object} Remote  everything we hold for one remote participant
 * @property {string} id
 * @property {RemoteTile} tile           camera tile (tiles.js draws it)
 * @property {Topology} shown            the path the tiles show
 * @property {boolean} gone              their signaling dropped; waiting for them
 * @property {ReturnType<typeof setTimeout>|undefined} goneTimer
 * @property {import("./peer.js").Peer|null} peer  mesh connection (while the mesh is used or lingers)
 * @property {MediaStream|null} meshCam  their camera+mic stream on the mesh connection
 * @property {Map<string, MediaStream>} meshScreens  their screen streams on the mesh connection
 * @property {MediaStream|null} looseStream  mesh tracks that arrived without a stream id
 * @property {ReturnType<typeof setTimeout>|undefined} attachTimer  pending deferred attach
 * @property {ReturnType<typeof setTimeout>|undefined} meshCloseTimer  lingering mesh connection
 * @property {MediaStream|null} sfuCam     `ID:camera` on the subscribe connection
 * @property {MediaStream|null} sfuScreen  `ID:screen` on the subscribe connection
 * @property {ReturnType<typeof setTimeout>|undefined} swapTimer  waiting for the new path
 * @property {{track: MediaStreamTrack, base: number}|null} swapProbe  frames decoded when first seen
 */

/**
 * A fresh record for a participant whose tiles show `shown`.
 * @param {string} id
 * @param {RemoteTile} tile
 * @param {Topology} shown
 * @returns {Remote}
 */
export function newRemote(id, tile, shown) {
  return {
    id, tile, shown, gone: false, goneTimer: undefined,
    peer: null, meshCam: null, meshScreens: new Map(), looseStream: null, attachTimer: undefined, meshCloseTimer: undefined,
    sfuCam: null, sfuScreen: null, swapTimer: undefined, swapProbe: null,
  };
}

/** @param {MediaStream} s */
export function hasLiveVideo(s) {
  return s.getVideoTracks().some((t) => t.readyState === "live");
}

/**
 * Their camera+mic stream on a path.
 * @param {Remote} r
 * @param {Topology} path
 */
export function cameraSource(r, path) {
  return path === "mesh" ? r.meshCam : r.sfuCam;
}

/**
 * The screen share to show from a path, if any.
 * @param {Remote} r
 * @param {Topology} path
 * @param {boolean} sharing what their state says; the SFU's screen stream
 *   outlives a share until the server renegotiates, so it decides there
 * @returns {MediaStream|null}
 */
export function screenSource(r, path, sharing) {
  if (path === "mesh") {
    let last = null;
    for (const s of r.meshScreens.values()) if (hasLiveVideo(s)) last = s;
    return last;
  }
  return sharing && r.sfuScreen && hasLiveVideo(r.sfuScreen) ? r.sfuScreen : null;
}

/**
 * Files a track that arrived on r's mesh connection under their camera or
 * a screen share. The sender puts camera+mic in one MediaStream and a
 * screen share in another; the first stream we see from a peer is the
 * camera (peer.js announces it as soon as the connection exists, even
 * without devices).
 * @param {Remote} r
 * @param {RTCTrackEvent} ev
 * @param {() => MediaStream} newStream  makes an empty stream (for tracks without one)
 * @param {() => void} onScreenGone      a screen share stopped (its video ended)
 * @returns {boolean} whether r's media changed
 */
export function routeMeshTrack(r, ev, newStream, onScreenGone) {
  const peer = r.peer;
  if (!peer) return false;
  let stream = ev.streams[0];
  if (!stream) {
    // No stream id (a minimal native client): treat as camera/mic.
    r.looseStream ??= newStream();
    r.looseStream.addTrack(ev.track);
    stream = r.looseStream;
  }
  if (peer.camStreamId === null) peer.camStreamId = stream.id;
  if (stream.id === peer.camStreamId) {
    r.meshCam = stream;
    return true;
  }
  if (ev.track.kind !== "video") return false; // screen audio is not part of v1
  if (!r.meshScreens.has(stream.id)) {
    const s = stream;
    const gone = () => {
      if (!hasLiveVideo(s) && r.meshScreens.get(s.id) === s) {
        r.meshScreens.delete(s.id);
        onScreenGone();
      }
    };
    s.addEventListener("removetrack", gone);
    ev.track.addEventListener("ended", gone);
  }
  r.meshScreens.delete(stream.id); // newest last
  r.meshScreens.set(stream.id, stream);
  return true;
}

/**
 * Closes r's mesh connection and forgets what it carried.
 * @param {Remote} r
 */
export function dropMesh(r) {
  clearTimeout(r.meshCloseTimer);
  clearTimeout(r.attachTimer);
  r.meshCloseTimer = r.attachTimer = undefined;
  r.peer?.close();
  r.peer = null;
  r.meshCam = null;
  r.looseStream = null;
  r.meshScreens.clear();
}

/**
 * Whether every participant a switch waited for has switched (or left).
 * @param {{pending: string[], perPeer: Record<string, number|null>}} rec
 * @param {(id: string) => boolean} present
 */
export function switchDone(rec, present) {
  return rec.pending.every((p) => p in rec.perPeer || !present(p));
}

/**
 * Frames decoded on a receiver's inbound video, from its stats.
 * @param {RTCRtpReceiver} receiver
 */
export async function framesDecoded(receiver) {
  let frames = 0;
  (await receiver.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames;
}
