// @ts-check
// The SFU side of the media paths: our two connections with the server
// (sfu.js SfuSession) for as long as SFU mode lasts or lingers after it,
// what we publish on them, and the forwarded streams they bring, filed by
// their `PARTICIPANT_ID:camera|screen` ids. topology.js decides when this
// path is opened, used and retired.

import { SfuSession, parseStreamId } from "./sfu.js";

/** After we stopped showing a path we keep it open this long: the other side may not have switched yet and still shows what we send on it. */
export const OLD_PATH_LINGER_MS = 5000;

/**
 * @typedef {object} SfuPathOptions
 * @property {(msg: import("./protocol.js").ClientMessage) => boolean} send
 * @property {() => {camera: MediaStream|null, screen: MediaStream|null}} local  what we send
 * @property {(participant: string) => void} onStreams  a participant's forwarded streams changed
 * @property {() => void} onStateChange  either connection changed state
 * @property {() => void} onServerReady  the server has our connections (say the layout again)
 * @property {() => void} onClosed       the connections were closed
 * @property {(opts: import("./sfu.js").SfuOptions) => SfuSession} [newSfu]
 * @property {boolean} [debug]
 */

/** The SFU connections and the streams they forward. */
export class SfuPath {
  /** @param {SfuPathOptions} o */
  constructor(o) {
    this.o = o;
    this.newSfu = o.newSfu ?? ((opts) => new SfuSession(opts));
    /** @type {SfuSession|null} */
    this.session = null;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.closeTimer = undefined;
    /** Forwarded streams by id (`ID:camera`, `ID:screen`), also for participants we do not know yet. */
    /** @type {Map<string, MediaStream>} */
    this.streams = new Map();
  }

  /** @param {RTCIceServer[]} list */
  setIceServers(list) {
    this.iceServers = list;
    this.session?.setIceServers(list);
  }

  /** Creates the connections (or keeps lingering ones) and publishes. */
  ensure() {
    clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
    this.session ??= this.newSfu({
      iceServers: this.iceServers,
      send: this.o.send,
      onTrack: (ev) => this.onTrack(ev),
      onStateChange: this.o.onStateChange,
      // A layout sent before the server set up our connections was
      // refused; say it again now that it listens.
      onServerReady: this.o.onServerReady,
      debug: this.o.debug,
    });
    this.publish();
  }

  /** Puts our camera, microphone and screen on the publish connection. */
  publish() {
    const s = this.session;
    if (!s) return;
    const { camera, screen } = this.o.local();
    if (camera) s.publishCamera(camera);
    const track = screen?.getVideoTracks()[0];
    if (track && screen && !s.senders.screen) s.setScreen(track, screen);
  }

  close() {
    clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
    const s = this.session;
    if (!s) return;
    this.session = null;
    s.close();
    this.streams.clear();
    this.o.onClosed();
  }

  /**
   * Closes the connections after a grace, unless still wanted by then.
   * @param {() => boolean} stillUnused
   */
  retire(stillUnused) {
    if (!this.session || this.closeTimer !== undefined) return;
    this.closeTimer = setTimeout(() => {
      this.closeTimer = undefined;
      if (stillUnused()) this.close();
    }, OLD_PATH_LINGER_MS);
  }

  /**
   * A participant's forwarded stream, if it arrived.
   * @param {string} participant
   * @param {"camera"|"screen"} source
   */
  stream(participant, source) {
    return this.streams.get(`${participant}:${source}`) ?? null;
  }

  /**
   * Forgets a participant's streams (they left).
   * @param {string} participant
   */
  forget(participant) {
    for (const key of [`${participant}:camera`, `${participant}:screen`]) this.streams.delete(key);
  }

  /**
   * A forwarded track: its stream id says whose and which source.
   * @param {RTCTrackEvent} ev
   */
  onTrack(ev) {
    const stream = ev.streams[0];
    if (!stream || !parseStreamId(stream.id)) return;
    if (this.streams.get(stream.id) !== stream) {
      this.streams.set(stream.id, stream);
      // The server reuses transceivers: a track can move to another
      // participant's stream, and streams lose tracks on renegotiation.
      const changed = () => this.streamChanged(stream);
      stream.addEventListener("addtrack", changed);
      stream.addEventListener("removetrack", changed);
    }
    this.streamChanged(stream);
  }

  /** @param {MediaStream} stream */
  streamChanged(stream) {
    if (this.streams.get(stream.id) !== stream) return;
    const sid = parseStreamId(stream.id);
    if (sid) this.o.onStreams(sid.participant);
  }
}
