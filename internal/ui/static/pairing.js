// @ts-check
// The messages of "Send to a device" (docs/protocol.md, "Sending to
// another device"), shared by the device's page (receive.js) and the
// call page's sender (sendto.js). Pure helpers: no DOM, no sockets.

/** The WebSocket subprotocol of /ws/receive and /ws/send. */
export const SUBPROTOCOL = "parley-pair.v1";

/**
 * @typedef {"speaker"|"participant"|"grid"} PairMode
 * @typedef {{candidate: string, sdpMid?: string|null, sdpMLineIndex?: number|null, usernameFragment?: string|null}} PairCandidate
 * @typedef {{stream: string, name: string}} PairLabel
 *
 * @typedef {{type: "code", code: string, expiresIn: number}} PairCodeMessage
 * @typedef {{type: "paired", name?: string}} PairPairedMessage
 * @typedef {{type: "expired"}} PairExpiredMessage
 * @typedef {{type: "offer", sdp: string, mode: PairMode, labels?: PairLabel[]}} PairOfferMessage
 * @typedef {{type: "answer", sdp: string}} PairAnswerMessage
 * @typedef {{type: "candidate", candidate: PairCandidate}} PairCandidateMessage
 * @typedef {{type: "stop", reason?: string}} PairStopMessage
 * @typedef {{type: "error", message: string}} PairErrorMessage
 *
 * @typedef {PairCodeMessage|PairPairedMessage|PairExpiredMessage|PairOfferMessage|PairAnswerMessage|PairCandidateMessage|PairStopMessage|PairErrorMessage} PairMessage
 */

/**
 * The socket URL of a pairing path on this page's server.
 * @param {{protocol: string, host: string}} loc
 * @param {string} pathAndQuery
 */
export function pairURL(loc, pathAndQuery) {
  return (loc.protocol === "https:" ? "wss:" : "ws:") + "//" + loc.host + pathAndQuery;
}

/**
 * Parses one message from the server; null for anything that is not an
 * object with a string type (ignored, as unknown types are).
 * @param {unknown} data
 * @returns {PairMessage|null}
 */
export function parsePairMessage(data) {
  if (typeof data !== "string") return null;
  let m;
  try {
    m = JSON.parse(data);
  } catch {
    return null;
  }
  if (!m || typeof m !== "object" || typeof m.type !== "string") return null;
  return /** @type {PairMessage} */ (m);
}

/**
 * The fields of a candidate the server relays (it refuses others).
 * @param {RTCIceCandidate|RTCIceCandidateInit} c
 * @returns {PairCandidate}
 */
export function candidateInit(c) {
  /** @type {PairCandidate} */
  const out = { candidate: c.candidate ?? "" };
  if (typeof c.sdpMid === "string") out.sdpMid = c.sdpMid;
  if (typeof c.sdpMLineIndex === "number") out.sdpMLineIndex = c.sdpMLineIndex;
  if (typeof c.usernameFragment === "string") out.usernameFragment = c.usernameFragment;
  return out;
}

/**
 * What someone typed as a code, as six digits ("" if it is not one):
 * spaces and dashes are allowed between the digits.
 * @param {string} typed
 */
export function cleanCode(typed) {
  const digits = typed.replace(/[\s-]/g, "");
  return /^[0-9]{6}$/.test(digits) ? digits : "";
}

/**
 * A code as shown on the device: two groups of three ("123 456").
 * @param {string} code
 */
export function formatCode(code) {
  return code.length === 6 ? `${code.slice(0, 3)} ${code.slice(3)}` : code;
}
