// @ts-check
// The signaling messages of docs/protocol.md as JSDoc types, and the
// functions that turn what arrived on the socket into them. Every message
// type of the protocol's tables has a typedef here named after it
// (`hello` → HelloMessage, `participant-joined` → ParticipantJoinedMessage);
// jstest/protocol.test.mjs reads docs/protocol.md and fails when a type is
// added there and not here, or the other way round.
//
// What the server sends is not trusted to match its type: handlers read
// fields through the helpers below (asParticipants, …), which drop what
// does not fit instead of guessing.

/**
 * @typedef {{audio: boolean, video: boolean, screen: boolean, hand: boolean, music?: boolean}} MediaState  music: see musicmode.js
 * @typedef {""|"owner"|"moderator"|"guest"} Role  "" = a plain member
 * @typedef {{id: string, userId: string, name: string, username?: string, state: MediaState, role?: Role, handSeq?: number}} Participant
 * @typedef {{publish: boolean, subscribe: boolean, chat: boolean, moderate: boolean, record: boolean}} Grants  a join token's
 * @typedef {{userId: string, name: string, username?: string, role?: Role, grants?: Grants}} User
 * @typedef {{id: string, name: string, role?: string}} WaitingPerson  someone in the lobby
 * @typedef {"mute"|"allow-unmute"|"camera-off"|"remove"|"lock"|"unlock"|"end"} ModerationAction
 * @typedef {{candidate: string, sdpMid?: string|null, sdpMLineIndex?: number|null, usernameFragment?: string|null}} Candidate
 * @typedef {"mesh"|"sfu"} Topology
 * @typedef {"pub"|"sub"} PcName  which of the two SFU connections
 * @typedef {"microphone"|"camera"|"screen"} Source
 * @typedef {{participant: string, source: "camera"|"screen", width: number, height: number}} LayoutTile
 * @typedef {import("./chat.js").ChatMessage} ChatMessage
 */

// ------------------------------------------------------ server → client

/**
 * @typedef {object} HelloMessage
 * @property {"hello"} type
 * @property {number} version
 * @property {User} user
 * @property {Participant[]} participants
 * @property {RTCIceServer[]} iceServers
 * @property {boolean} [locked]
 *
 * @typedef {object} JoinedMessage
 * @property {"joined"} type
 * @property {Participant} you
 * @property {Participant[]} participants  not including you
 * @property {Topology} topology
 * @property {string} resumeToken          a secret: sent back with resume, shown to nobody
 * @property {boolean} [locked]
 *
 * @typedef {object} ParticipantJoinedMessage
 * @property {"participant-joined"} type
 * @property {Participant} participant
 *
 * @typedef {object} ParticipantLeftMessage
 * @property {"participant-left"} type
 * @property {string} id
 * @property {"left"|"disconnected"|"timeout"|"removed"|"ended"} reason
 *
 * @typedef {object} ParticipantUpdatedMessage
 * @property {"participant-updated"} type
 * @property {Participant} participant
 *
 * @typedef {object} OfferMessage  relayed from a peer (from: their id) or the SFU's (from: "sfu", pc)
 * @property {"offer"} type
 * @property {string} from
 * @property {string} sdp
 * @property {PcName} [pc]
 *
 * @typedef {object} AnswerMessage
 * @property {"answer"} type
 * @property {string} from
 * @property {string} sdp
 * @property {PcName} [pc]
 *
 * @typedef {object} CandidateMessage
 * @property {"candidate"} type
 * @property {string} from
 * @property {Candidate|null} candidate  null ends gathering
 * @property {PcName} [pc]
 *
 * @typedef {object} ChatEventMessage  server → client `chat`
 * @property {"chat"} type
 * @property {ChatMessage} message
 *
 * @typedef {object} ErrorMessage
 * @property {"error"} type
 * @property {string} code
 * @property {string} message  human, says what to do
 * @property {string} [ref]    the type of the message that caused it
 *
 * @typedef {object} PongMessage
 * @property {"pong"} type
 * @property {number} [ts]
 *
 * @typedef {object} SfuRestartMessage
 * @property {"sfu-restart"} type
 *
 * @typedef {object} IceServersMessage
 * @property {"ice-servers"} type
 * @property {RTCIceServer[]} iceServers
 *
 * @typedef {object} JoinTokenMessage  a fresh join token (sockets opened with one)
 * @property {"join-token"} type
 * @property {string} token      a secret: reconnect with it
 * @property {string} expiresAt  ISO time
 *
 * @typedef {object} TopologyMessage
 * @property {"topology"} type
 * @property {Topology} topology
 *
 * @typedef {object} SpeakerMessage
 * @property {"speaker"} type
 * @property {string} id  "" when nobody speaks
 *
 * @typedef {{event: string, song?: string, track?: string, take?: string, by?: string,
 *   state?: string, durationMs?: number, bytes?: number, chunks?: number, levels?: number[]}} StudioEvent
 *
 * @typedef {object} StudioMessage  a change of the channel's studio (docs/studio.md)
 * @property {"studio"} type
 * @property {StudioEvent} studio
 *
 * @typedef {object} RecordingState  the call's recording (recording message)
 * @property {boolean} active
 * @property {string} [id]
 * @property {User} [by]          who started it
 * @property {string} [startedAt] ISO time
 * @property {string} [reason]    why it stopped, when not active
 *
 * @typedef {object} RecordingMessage
 * @property {"recording"} type
 * @property {RecordingState} recording
 *
 * @typedef {object} ModeratedMessage  a moderator did something (docs/protocol.md, Moderation)
 * @property {"moderated"} type
 * @property {ModerationAction} action
 * @property {string} [by]   the moderator's participant id
 * @property {string} [id]   the participant acted on
 * @property {boolean} [ask] mute with "ask to unmute"
 *
 * @typedef {object} LobbyMessage  to members in the call: who waits to be let in
 * @property {"lobby"} type
 * @property {WaitingPerson[]} waiting
 *
 * @typedef {object} AdmissionMessage  to a waiting socket
 * @property {"admission"} type
 * @property {"waiting"|"admitted"|"denied"} action
 * @property {string} [by]  the member who decided
 *
 * @typedef {HelloMessage|JoinedMessage|ParticipantJoinedMessage|ParticipantLeftMessage|ParticipantUpdatedMessage|
 *   OfferMessage|AnswerMessage|CandidateMessage|ChatEventMessage|ErrorMessage|PongMessage|SfuRestartMessage|
 *   IceServersMessage|JoinTokenMessage|TopologyMessage|SpeakerMessage|StudioMessage|RecordingMessage|
 *   ModeratedMessage|LobbyMessage|AdmissionMessage} ServerMessage
 */

// ------------------------------------------------------ client → server

/**
 * @typedef {object} JoinMessage
 * @property {"join"} type
 * @property {MediaState} state
 * @property {string} [resume]       the participant id to reclaim after a reconnect
 * @property {string} [resumeToken]  the joined.resumeToken that gave that id
 *
 * @typedef {object} UpdateMessage
 * @property {"update"} type
 * @property {MediaState} state
 *
 * @typedef {object} OfferOutMessage  to a participant (to, sdp) or the SFU (to: "sfu", pc: "pub", sources)
 * @property {"offer"} type
 * @property {string} to
 * @property {string} sdp
 * @property {PcName} [pc]
 * @property {Record<string, Source>} [sources]
 *
 * @typedef {object} AnswerOutMessage
 * @property {"answer"} type
 * @property {string} to
 * @property {string} sdp
 * @property {PcName} [pc]
 *
 * @typedef {object} CandidateOutMessage
 * @property {"candidate"} type
 * @property {string} to
 * @property {RTCIceCandidateInit|null} candidate
 * @property {PcName} [pc]
 *
 * @typedef {object} ChatSendMessage  client → server `chat`
 * @property {"chat"} type
 * @property {string} text
 *
 * @typedef {object} LeaveMessage
 * @property {"leave"} type
 *
 * @typedef {object} PingMessage
 * @property {"ping"} type
 * @property {number} [ts]
 *
 * @typedef {object} LayoutMessage
 * @property {"layout"} type
 * @property {LayoutTile[]} tiles
 *
 * @typedef {object} RecordMessage  start or stop recording the call
 * @property {"record"} type
 * @property {"start"|"stop"} action
 *
 * @typedef {object} ModerateMessage  owner and moderators only
 * @property {"moderate"} type
 * @property {ModerationAction} action
 * @property {string} [id]   the participant, for mute, allow-unmute, camera-off, remove
 * @property {boolean} [ask] mute only: they may not unmute until allowed
 *
 * @typedef {object} AdmitMessage  a member lets someone in
 * @property {"admit"} type
 * @property {string} id  from lobby.waiting
 *
 * @typedef {object} DenyMessage  a member keeps someone out
 * @property {"deny"} type
 * @property {string} id
 *
 * @typedef {JoinMessage|UpdateMessage|OfferOutMessage|AnswerOutMessage|CandidateOutMessage|ChatSendMessage|
 *   LeaveMessage|PingMessage|LayoutMessage|ModerateMessage|AdmitMessage|DenyMessage|RecordMessage} ClientMessage
 */

/**
 * Close codes after which reconnecting cannot help (docs/protocol.md,
 * close codes), with what the page says about them. 4001 is final: the
 * session is gone, and retrying would only be refused again.
 * @type {Readonly<Record<number, string>>}
 */
export const FINAL_CLOSES = Object.freeze({
  4001: "you are signed out (logged out here or elsewhere). Log in again, then reload this page.",
  4003: "you were removed from this channel.",
  4004: "this channel was deleted.",
});

/**
 * What a refused WebSocket upgrade means, by the HTTP status the REST API
 * gives for the same checks (browsers hide the upgrade's own status).
 * @type {Readonly<Record<number, string>>}
 */
export const REFUSED_UPGRADES = Object.freeze({
  401: "you are signed out. Log in again, then reload this page.",
  403: "you are not a member of this channel.",
  404: "this channel does not exist any more.",
});

/**
 * Why the socket's upgrade keeps being refused, or "" when that is not it
 * (the network is down, or the API lets us in). Browsers hide the HTTP
 * status of a refused WebSocket upgrade, so this asks the REST API, which
 * applies the same checks.
 * @param {string} channelId
 * @returns {Promise<string>}
 */
export async function refusedUpgradeReason(channelId) {
  let status;
  try {
    const res = await fetch(`/api/channels/${encodeURIComponent(channelId)}/messages`, { credentials: "same-origin" });
    status = res.status;
  } catch {
    return ""; // network down: keep retrying
  }
  return Object.hasOwn(REFUSED_UPGRADES, status) ? REFUSED_UPGRADES[status] : "";
}

/**
 * Why a socket close ends the call for good, or "" when reconnecting may help.
 * @param {number} code
 */
export function finalCloseReason(code) {
  return Object.hasOwn(FINAL_CLOSES, code) ? FINAL_CLOSES[code] : "";
}

/**
 * Reads a state object, every flag false unless it is true.
 * @param {unknown} raw
 * @returns {MediaState}
 */
export function asMediaState(raw) {
  const s = /** @type {Record<string, unknown>} */ (raw && typeof raw === "object" ? raw : {});
  const st = { audio: !!s.audio, video: !!s.video, screen: !!s.screen, hand: !!s.hand };
  return s.music === true ? { ...st, music: true } : st;
}

/**
 * Normalises a participant list from the server (fields may be omitted;
 * entries without an id are dropped).
 * @param {unknown} list
 * @returns {Participant[]}
 */
export function asParticipants(list) {
  if (!Array.isArray(list)) return [];
  return list.filter(isParticipantLike).map((p) => ({
    id: p.id,
    userId: String(p.userId ?? ""),
    name: String(p.name ?? "Someone"),
    username: String(p.username ?? ""),
    state: asMediaState(p.state),
    role: asRole(p.role),
    handSeq: typeof p.handSeq === "number" && p.handSeq > 0 ? p.handSeq : 0,
  }));
}

/**
 * A role from the server; anything unknown is a plain member.
 * @param {unknown} r
 * @returns {Role}
 */
export function asRole(r) {
  return r === "owner" || r === "moderator" || r === "guest" ? r : "";
}

/**
 * Whether a role may moderate the call.
 * @param {unknown} r
 */
export function canModerate(r) {
  return r === "owner" || r === "moderator";
}

/**
 * One participant, or null when it has no id.
 * @param {unknown} raw
 * @returns {Participant|null}
 */
export function asParticipant(raw) {
  return asParticipants([raw])[0] ?? null;
}

/**
 * Stands in for a participant we heard from (an offer) before being told
 * who they are.
 * @param {string} id
 * @returns {Participant}
 */
export function placeholderParticipant(id) {
  return { id, userId: "", name: "Someone", state: { audio: true, video: true, screen: false, hand: false } };
}

/**
 * @param {unknown} list
 * @returns {RTCIceServer[]}
 */
export function asIceServers(list) {
  return Array.isArray(list) ? list : [];
}

/**
 * @param {unknown} t
 * @returns {t is Topology}
 */
export function isTopology(t) {
  return t === "mesh" || t === "sfu";
}

/**
 * @param {any} p
 * @returns {p is {id: string, userId?: unknown, name?: unknown, username?: unknown, state?: unknown, role?: unknown, handSeq?: unknown}}
 */
function isParticipantLike(p) {
  return !!p && typeof p === "object" && typeof p.id === "string";
}
