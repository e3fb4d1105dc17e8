// @ts-check
// The call's lifecycle as an explicit state machine: where this page is
// between "on the channel page" and "in the call", across signaling
// outages (docs/protocol.md, Lifecycle and Reconnecting).
//
//   phase           event            next phase
//   lobby           join             getting-media
//   getting-media   media-ready      joining
//   joining         join-sent        join-sent
//   join-sent       joined           in-call
//                   socket-closed    joining        (send join again)
//   in-call         socket-closed    reconnecting
//   reconnecting    join-sent        resume-sent    (join with resume and resumeToken)
//   resume-sent     joined           in-call
//                   socket-closed    reconnecting
//                   resume-refused   joining        (join as a newcomer)
//   any but ended   leave            lobby          (we hung up, or the server refused the join)
//   any but ended   end              ended          (a close reconnecting cannot fix: 4001, 4003, 4004)
//
// The peer connections are not part of this machine: they outlive a
// signaling outage (reconnecting/resume-sent), which is the point of
// resuming. The machine only decides when a join goes out and what it
// carries (the resume id and its token), and which view the page shows.
// It has no DOM and no socket, so jstest/session.test.mjs drives it alone.

/**
 * @typedef {"lobby"|"getting-media"|"joining"|"join-sent"|"in-call"|"reconnecting"|"resume-sent"|"ended"} Phase
 *
 * - lobby: on the page, not in the call (sees who is, can chat)
 * - getting-media: Join pressed; waiting for the camera and microphone
 * - joining: wants in without an id; join goes out once the socket said hello
 * - join-sent: join sent on this socket, waiting for joined
 * - in-call: joined on this socket
 * - reconnecting: was in the call, the socket dropped; media keeps flowing,
 *   join with resume goes out once a new socket said hello
 * - resume-sent: join with resume sent, waiting for joined
 * - ended: the server ended this page's session for good; no more sockets
 *
 * @typedef {"join"|"media-ready"|"join-sent"|"joined"|"socket-closed"|"resume-refused"|"leave"|"end"} PhaseEvent
 */

/** @type {Readonly<Record<Phase, Partial<Record<PhaseEvent, Phase>>>>} */
export const TRANSITIONS = Object.freeze({
  "lobby": { "join": "getting-media", "leave": "lobby", "end": "ended" },
  "getting-media": { "media-ready": "joining", "leave": "lobby", "end": "ended" },
  "joining": { "join-sent": "join-sent", "leave": "lobby", "end": "ended" },
  "join-sent": { "joined": "in-call", "socket-closed": "joining", "leave": "lobby", "end": "ended" },
  "in-call": { "socket-closed": "reconnecting", "leave": "lobby", "end": "ended" },
  "reconnecting": { "join-sent": "resume-sent", "leave": "lobby", "end": "ended" },
  "resume-sent": { "joined": "in-call", "socket-closed": "reconnecting", "resume-refused": "joining", "leave": "lobby", "end": "ended" },
  "ended": {},
});

/**
 * The next phase, or null when the event means nothing in this phase (a
 * late answer, a second click): the caller ignores it.
 * @param {Phase} phase
 * @param {PhaseEvent} event
 * @returns {Phase|null}
 */
export function nextPhase(phase, event) {
  return TRANSITIONS[phase][event] ?? null;
}

/** Phases in which the page shows the call (tiles, controls), not the lobby. */
const CALL_VIEW = new Set(["in-call", "reconnecting", "resume-sent"]);

/** Phases in which the participant wants to be in the call. */
const WANTS_IN = new Set(["joining", "join-sent", "in-call", "reconnecting", "resume-sent"]);

/** Phases in which the Join button shows "Joining…". */
const BUSY = new Set(["getting-media", "joining", "join-sent"]);

/** The lifecycle of one call page, and the identity it resumes with. */
export class CallSession {
  /** @param {(from: Phase, to: Phase) => void} [onChange] */
  constructor(onChange) {
    /** @type {Phase} */
    this.phase = "lobby";
    /** Our participant id while joined; sent as `resume` after a reconnect. */
    /** @type {string|null} */
    this.myId = null;
    /** The secret from joined that proves our resume of myId (never shown). */
    /** @type {string|null} */
    this.resumeToken = null;
    /** The current socket said hello: it accepts a join. */
    this.socketReady = false;
    /** Restarted the socket once because the server refused a second join on it. */
    this.restartedForJoin = false;
    this.onChange = onChange;
  }

  /**
   * Applies an event; returns whether the phase accepted it.
   * @param {PhaseEvent} event
   */
  fire(event) {
    const from = this.phase;
    const to = nextPhase(from, event);
    if (to === null) return false;
    this.phase = to;
    if (to === "lobby" || to === "ended" || event === "resume-refused" || event === "media-ready") {
      // Leaving, or a deliberate join (a fresh start, never a resume), or
      // the server would not give our id back: forget it.
      this.myId = null;
      this.resumeToken = null;
    }
    if (from !== to) this.onChange?.(from, to);
    return true;
  }

  /** The page shows the call: joined, or rejoining after an outage. */
  get inCall() { return CALL_VIEW.has(this.phase); }

  /** In the call with an id: peers' messages are ours to handle. */
  get joined() { return this.inCall && this.myId !== null; }

  /** The participant wants to be in the call (survives reconnects). */
  get wantsIn() { return WANTS_IN.has(this.phase); }

  /** Between pressing Join and being in the call the first time. */
  get busy() { return BUSY.has(this.phase); }

  /**
   * Whether an `update` would be accepted now. While rejoining, the join
   * carries our state instead (and joined is checked against it).
   */
  get canUpdate() { return this.phase === "in-call" && this.socketReady; }

  /** The socket said hello. */
  helloReceived() { this.socketReady = true; }

  /** The socket closed: whatever we sent on it is lost. */
  socketClosed() {
    this.socketReady = false;
    this.fire("socket-closed");
  }

  /**
   * The join to send now, or null if none is due: the socket must have
   * said hello and we must want in without having sent one on it. After
   * an outage it resumes our id and proves it with the token joined gave.
   * @param {import("./protocol.js").MediaState} state what we send
   * @returns {import("./protocol.js").JoinMessage|null}
   */
  joinMessage(state) {
    if (!this.socketReady || (this.phase !== "joining" && this.phase !== "reconnecting")) return null;
    /** @type {import("./protocol.js").JoinMessage} */
    const msg = { type: "join", state: { ...state } };
    if (this.myId) {
      msg.resume = this.myId;
      if (this.resumeToken) msg.resumeToken = this.resumeToken;
    }
    return msg;
  }

  /**
   * The server's joined: we are in, with this id.
   * @param {string} id
   * @param {string|null} token
   * @returns {{previous: string|null}|null} the id we had before, or
   *   null when no join was waiting (a joined after we hung up) and this
   *   one is ignored
   */
  joinedAs(id, token) {
    const previous = this.myId;
    if (!this.fire("joined")) return null;
    this.myId = id;
    this.resumeToken = token;
    this.restartedForJoin = false;
    return { previous };
  }
}
