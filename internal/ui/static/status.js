// @ts-check
// Human-readable status texts. Pure functions, so they can be tested
// without a browser.

/**
 * Text for #signal-status: short and human; #call-status has the details.
 * While the server is away, what it says about the call depends on the
 * path media takes: peer to peer it goes on; through the server (SFU) it
 * goes on only if the stats say media still arrives.
 * @param {import("./signaling.js").SignalState} state
 * @param {{inCall: boolean, reason?: string, viaServer?: boolean, flowing?: boolean}} o
 *   reason explains "offline"; viaServer: media goes through the SFU;
 *   flowing: media arrives from someone (netstats.js)
 */
export function signalText(state, o) {
  switch (state) {
    case "connecting":
      return "Connecting…";
    case "connected":
      return "Connected";
    case "reconnecting":
      if (!o.inCall) return "Reconnecting…";
      if (o.viaServer) return o.flowing ? "Reconnecting… media still arrives" : "Reconnecting… media interrupted";
      return "Reconnecting… your call continues peer to peer";
    default:
      return "Offline" + (o.reason ? ` — ${o.reason}` : "");
  }
}

/**
 * Text for a remote tile's connection status.
 * @param {import("./peer.js").PeerState} state
 * @param {{name: string, gone: boolean, hasTurn: boolean}} o
 */
export function peerStatusText(state, o) {
  if (o.gone) return `${o.name} lost their connection — waiting for them to come back…`;
  switch (state) {
    case "new":
      return "Waiting to connect…";
    case "connecting":
      return "Connecting…";
    case "connected":
      return "Connected";
    case "reconnecting":
      return "Connection interrupted — reconnecting…";
    case "failed":
      return o.hasTurn
        ? "Connection failed — retrying. If it keeps failing, a firewall may be blocking media; ask your admin to check the TURN server."
        : "Connection failed — a firewall may be blocking media. Ask your admin to enable TURN.";
    default:
      return "";
  }
}

/**
 * @param {number} n
 * @param {string} one
 * @param {string} many
 */
export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** @param {import("./peer.js").PeerState} state */
function stateWord(state) {
  switch (state) {
    case "connected": return "connected";
    case "connecting": return "connecting";
    case "reconnecting": return "reconnecting";
    case "failed": return "failed";
    default: return "waiting";
  }
}

/**
 * The part of #call-status about the two connections with the server in
 * SFU mode; "" while both are connected (nothing to say).
 * @param {{pub: import("./peer.js").PeerState|null, sub: import("./peer.js").PeerState}} s
 *   pub is null when we publish nothing (no devices)
 */
export function serverSummary(s) {
  const parts = [];
  if (s.pub !== null && s.pub !== "connected") parts.push(`sending ${stateWord(s.pub)}`);
  if (s.sub !== "connected") parts.push(`receiving ${stateWord(s.sub)}`);
  if (parts.length === 0) return "";
  const failed = s.pub === "failed" || s.sub === "failed";
  return ` Connection to the server: ${parts.join(", ")}${failed ? " — retrying" : ""}.`;
}

/**
 * Text for #call-status.
 * @param {{view: "lobby"|"call", joining: boolean, inCallCount: number,
 *          others: number, connected: number, failed: number, signalUp: boolean, flowing?: boolean,
 *          sfu?: {pub: import("./peer.js").PeerState|null, sub: import("./peer.js").PeerState}|null}} s
 *   inCallCount: people in the call (lobby view); others/connected/failed: remote peers (call view);
 *   sfu: the connections with the server when media goes through it
 */
export function callSummary(s) {
  if (s.view === "lobby") {
    if (s.joining) return "Joining the call…";
    if (s.inCallCount === 0) return "You are not in the call. Nobody is in the call yet.";
    return `You are not in the call. ${plural(s.inCallCount, "person is", "people are")} in the call.`;
  }
  let text;
  if (s.others === 0) text = "You are in the call — nobody else is here yet.";
  else {
    text = `You are in the call with ${plural(s.others, "other person", "others")}`;
    const waiting = s.others - s.connected - s.failed;
    const parts = [];
    if (waiting > 0) parts.push(`${waiting} connecting`);
    if (s.failed > 0) parts.push(`${s.failed} failed`);
    text += parts.length ? ` (${parts.join(", ")}).` : ".";
  }
  if (s.sfu) text += " Media goes through the server." + serverSummary(s.sfu);
  if (!s.signalUp) {
    if (s.sfu && !s.flowing) text += " The connection to the server is lost and media through it is interrupted. Reconnecting…";
    else if (s.sfu) text += " The connection to the server is lost; media still arrives for now. Reconnecting…";
    else text += " The connection to the server is lost; your media goes directly between you and keeps flowing. Reconnecting…";
  }
  return text;
}

/**
 * Whether a key press happened where the user is typing, so single-letter
 * shortcuts must not fire.
 * @param {EventTarget|null} target
 */
export function isTypingTarget(target) {
  const el = /** @type {any} */ (target);
  if (!el || typeof el !== "object") return false;
  if (el.isContentEditable) return true;
  const tag = typeof el.tagName === "string" ? el.tagName.toUpperCase() : "";
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag !== "INPUT") return false;
  // Buttons and checkboxes do not take text.
  const type = String(el.type || "text").toLowerCase();
  return !["button", "submit", "reset", "checkbox", "radio", "range", "color", "file", "image"].includes(type);
}

/**
 * Which call action a key stands for, or "".
 * @param {{key: string, ctrlKey?: boolean, metaKey?: boolean, altKey?: boolean, repeat?: boolean, target?: EventTarget|null}} ev
 * @returns {""|"mute"|"camera"|"leave"}
 */
export function shortcutFor(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return "";
  if (isTypingTarget(ev.target ?? null)) return "";
  switch (String(ev.key).toLowerCase()) {
    case "m": return "mute";
    case "v": return "camera";
    case "l": return "leave";
    default: return "";
  }
}

/**
 * Whether the ICE servers include a TURN relay (changes the failure hint).
 * @param {{urls: string|string[]}[]} iceServers
 */
export function hasTurnServer(iceServers) {
  return (iceServers || []).some((s) => [].concat(/** @type {any} */ (s.urls)).some((u) => /^turns?:/i.test(String(u))));
}

/**
 * The lobby's line about who is in the call.
 * @param {number} count how many are in the call
 * @param {string[]} names their display names (the first four are shown)
 */
export function lobbySummary(count, names) {
  if (count === 0) return "Nobody is in the call yet — join to start it.";
  const who = count === 1 ? "1 person is" : `${count} people are`;
  return `${who} in the call: ${names.slice(0, 4).join(", ")}${count > 4 ? ", …" : ""}.`;
}
