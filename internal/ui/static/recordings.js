// @ts-check
// The channel's recordings page: the list (who started each, when, how
// long, who was in it, whether a crash interrupted it), downloads of each
// participant's files, delete (owner), the owner's "members may record"
// switch, and the synced player (player.js). Everything comes from the
// JSON API (docs/api.md, Recordings).

import { h, setText } from "./ui.js";
import { SyncedPlayer } from "./player.js";

/**
 * @typedef {{participant_id?: string, user_id: string, name: string}} Person
 * @typedef {{name: string, participant_id: string, user_name?: string, source: string, kind: string, codec: string,
 *   start_ms: number, duration_ms: number, dropped: number, bytes: number}} RecFile
 * @typedef {{id: string, started_by: Person, started_at: string, state: string, stop_reason?: string,
 *   duration_ms: number, participants: Person[], files: RecFile[], composite?: Composite}} Recording
 * @typedef {{state: string, progress: number, name?: string, error?: string}} Composite
 */

/** @param {number} ms */
export function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

/** The recordings page. */
class RecordingsPage {
  /** @param {HTMLElement} root */
  constructor(root) {
    this.root = root;
    this.channelId = root.dataset.channelId || "";
    this.owner = root.dataset.owner === "1";
    this.base = `/api/channels/${encodeURIComponent(this.channelId)}`;
    this.status = h("p", { id: "recordings-status", role: "status", "aria-live": "polite" });
    this.list = h("ul", { id: "recordings-list", class: "list" });
    this.playerBox = h("section", { id: "player", class: "card", hidden: true });
    /** @type {SyncedPlayer|null} */
    this.player = null;
    this.composites = false; // the server has ffmpeg
    this.studio = false; // the server has the studio
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.poll = undefined;
    const policy = h("label", { class: "inline" });
    this.policyBox = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", id: "members-may-record", onchange: () => this.setPolicy() }));
    policy.append(this.policyBox, " Members may start and stop recording");
    root.replaceChildren(this.owner ? policy : "", this.status, this.list, this.playerBox);
    void this.load();
  }

  async load() {
    setText(this.status, "Loading…");
    try {
      const [res, st] = await Promise.all([fetch(`${this.base}/recordings`), fetch(`${this.base}/recording`)]);
      if (!res.ok) throw new Error(`the server answered ${res.status}`);
      const body = await res.json();
      /** @type {Recording[]} */
      const recs = Array.isArray(body.recordings) ? body.recordings : [];
      if (st.ok) {
        const state = await st.json();
        this.policyBox.checked = state.membersMayRecord === true;
        this.composites = state.composites === true;
        this.studio = state.studio === true;
      }
      this.render(recs);
      // Composites being made: show their progress as it goes.
      clearTimeout(this.poll);
      if (recs.some((r) => r.composite && ["queued", "running"].includes(r.composite.state))) {
        this.poll = setTimeout(() => void this.load(), 1000);
      }
      setText(this.status, recs.length ? "" : "No recordings yet. Start one from the call with the Record button.");
    } catch (e) {
      setText(this.status, `Could not load the recordings: ${e instanceof Error ? e.message : e}. Reload to try again.`);
    }
  }

  async setPolicy() {
    const res = await fetch(`${this.base}/recording-policy`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ membersMayRecord: this.policyBox.checked }),
    });
    setText(this.status, res.ok ? "Saved." : "Could not save; try again.");
  }

  /** @param {Recording[]} recs */
  render(recs) {
    this.list.replaceChildren(...recs.map((r) => this.item(r)));
  }

  /** @param {Recording} r */
  item(r) {
    const when = new Date(r.started_at).toLocaleString();
    const people = r.participants.map((p) => p.name).join(", ") || "nobody";
    const state = r.state === "interrupted" ? " — interrupted (the server stopped; what was recorded is kept)"
      : r.state === "recording" ? " — recording now" : r.stop_reason ? ` — ${r.stop_reason}` : "";
    const files = h("ul", { class: "files" }, ...r.files.map((f) => h("li", {},
      h("a", { href: this.fileURL(r, f) + "?download=1", download: f.name },
        `${f.user_name || f.participant_id} — ${f.source} (${f.kind}, ${formatDuration(f.duration_ms)})`),
      f.dropped ? ` (${f.dropped} packets lost: the disk did not keep up)` : "")));
    const play = h("button", { type: "button", class: "btn btn-small", onclick: () => this.play(r) }, "Play");
    const del = this.owner && r.state !== "recording"
      ? h("button", { type: "button", class: "btn btn-small btn-danger", onclick: () => this.remove(r) }, "Delete") : null;
    return h("li", { class: "recording", "data-recording-id": r.id },
      h("p", {}, h("strong", {}, when), ` · ${formatDuration(r.duration_ms)} · started by ${r.started_by.name || "someone"}${state}`),
      h("p", { class: "muted-text small" }, `In the call: ${people}`),
      r.files.length ? play : "", del, this.compositeItem(r), this.studioItem(r), files);
  }

  /**
   * "Open in the studio": the recording becomes a song, each participant
   * a track, their audio the takes.
   * @param {Recording} r
   */
  studioItem(r) {
    if (!this.studio || r.state === "recording" || !r.files.some((f) => f.kind === "audio")) return null;
    return h("button", { type: "button", class: "btn btn-small to-studio", onclick: () => this.toStudio(r) }, "Open in the studio");
  }

  /** @param {Recording} r */
  async toStudio(r) {
    setText(this.status, "Copying the audio into the studio…");
    const res = await fetch(`${this.base}/recordings/${encodeURIComponent(r.id)}/to-studio`, { method: "POST" });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      setText(this.status, `Could not open it in the studio: ${body.error || `the server answered ${res.status}`}`);
      return;
    }
    this.status.replaceChildren(`It is the song “${body.song.name}” now: `,
      h("a", { href: `/c/${encodeURIComponent(this.channelId)}/studio` }, "open the studio"), ".");
  }

  /**
   * The composite: a button to make it, its progress, or its download.
   * @param {Recording} r
   */
  compositeItem(r) {
    const c = r.composite;
    if (c && c.state === "done") {
      return h("a", { class: "composite", href: `${this.base}/recordings/${encodeURIComponent(r.id)}/files/composite.mp4?download=1` },
        "Download the composite (one video, everyone in a grid)");
    }
    if (c && (c.state === "queued" || c.state === "running")) {
      return h("span", { class: "composite", role: "status" },
        c.state === "queued" ? "Composite: waiting…" : `Composite: ${Math.round(c.progress * 100)}%`,
        h("progress", { max: "1", value: String(c.progress || 0) }));
    }
    if (!this.composites || r.state === "recording" || !r.files.length) return null;
    return h("button", { type: "button", class: "btn btn-small composite", onclick: () => this.compose(r) },
      c && c.state === "failed" ? "Make the composite again" : "Make a composite");
  }

  /** @param {Recording} r */
  async compose(r) {
    const res = await fetch(`${this.base}/recordings/${encodeURIComponent(r.id)}/composite`, { method: "POST" });
    if (!res.ok) setText(this.status, "Could not start the composite; try again.");
    await this.load();
  }

  /** @param {Recording} r @param {RecFile} f */
  fileURL(r, f) {
    return `${this.base}/recordings/${encodeURIComponent(r.id)}/files/${encodeURIComponent(f.name)}`;
  }

  /** @param {Recording} r */
  play(r) {
    this.player?.close();
    this.playerBox.hidden = false;
    this.player = new SyncedPlayer(this.playerBox, r.duration_ms,
      r.files.map((f) => ({ url: this.fileURL(r, f), kind: f.kind, startMs: f.start_ms, label: `${f.user_name || f.participant_id} (${f.source})` })));
    // For tests (internal/e2e): the player of the page.
    /** @type {any} */ (window).parleyPlayer = this.player;
  }

  /** @param {Recording} r */
  async remove(r) {
    if (!confirm("Delete this recording and its files for everyone?")) return;
    const res = await fetch(`${this.base}/recordings/${encodeURIComponent(r.id)}`, { method: "DELETE" });
    if (!res.ok) setText(this.status, "Could not delete it; try again.");
    await this.load();
  }
}

const root = document.getElementById("recordings-app");
if (root) new RecordingsPage(root);
