// @ts-check
// The studio's JSON API (docs/api.md, "Studio"): one object per channel,
// one method per route. Errors come back as ApiError with the server's
// status and message, which the page shows as they are.

/**
 * @typedef {"recording"|"done"|"interrupted"} TakeState
 * @typedef {{id: string, trackId: string, songId: string, userId: string, userName: string,
 *   createdAt: string, offsetMs: number, latencyMs: number, durationMs: number, mime: string,
 *   state: TakeState, chunks: number, bytes: number}} Take
 * @typedef {{id: string, songId: string, name: string, position: number, chosenTake: string, takes: Take[]}} Track
 * @typedef {{id: string, name: string, createdBy: string, creatorName: string, createdAt: string, tracks: Track[]}} Song
 * @typedef {{songs: Song[], usedBytes: number, quotaBytes: number, maxChunkBytes: number}} StudioView
 * @typedef {{chunks: number, bytes: number}} Ack
 */

/** A refusal from the server: status, its message, and the JSON body. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {any} body
   */
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** Client of one channel's studio routes. */
export class StudioAPI {
  /**
   * @param {string} channelId
   * @param {typeof fetch} [fetchFn] replaced in tests
   */
  constructor(channelId, fetchFn) {
    this.base = "/api/channels/" + encodeURIComponent(channelId) + "/studio";
    this.fetch = fetchFn || globalThis.fetch.bind(globalThis);
  }

  /**
   * Sends one request; resolves with the parsed JSON (null for 204).
   * A network failure rejects with the fetch error (a TypeError); a
   * refusal with ApiError.
   * @param {string} method
   * @param {string} path
   * @param {BodyInit|object|null} [body]
   * @returns {Promise<any>}
   */
  async req(method, path, body) {
    /** @type {RequestInit} */
    const init = { method, credentials: "same-origin", headers: {} };
    if (body instanceof Blob || body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
      init.body = /** @type {BodyInit} */ (body);
      /** @type {Record<string,string>} */ (init.headers)["Content-Type"] = "application/octet-stream";
    } else if (body !== null && body !== undefined) {
      init.body = JSON.stringify(body);
      /** @type {Record<string,string>} */ (init.headers)["Content-Type"] = "application/json";
    }
    const resp = await this.fetch(this.base + path, init);
    if (resp.status === 204) return null;
    let data = null;
    try {
      data = await resp.json();
    } catch {
      data = null;
    }
    if (!resp.ok) {
      const msg = (data && typeof data.error === "string") ? data.error : "the server answered " + resp.status;
      throw new ApiError(resp.status, msg, data);
    }
    return data;
  }

  /** @returns {Promise<StudioView>} */
  view() { return this.req("GET", ""); }
  /** @param {string} name @returns {Promise<Song>} */
  createSong(name) { return this.req("POST", "/songs", { name }); }
  /** @param {string} id @param {string} name */
  renameSong(id, name) { return this.req("PATCH", "/songs/" + id, { name }); }
  /** @param {string} id */
  deleteSong(id) { return this.req("DELETE", "/songs/" + id); }
  /** @param {string} songId @param {string} name @returns {Promise<Track>} */
  createTrack(songId, name) { return this.req("POST", "/songs/" + songId + "/tracks", { name }); }
  /** @param {string} id @param {{name?: string, position?: number}} change */
  updateTrack(id, change) { return this.req("PATCH", "/tracks/" + id, change); }
  /** @param {string} id */
  deleteTrack(id) { return this.req("DELETE", "/tracks/" + id); }
  /** @param {string} trackId @param {string} takeId "" for none */
  choose(trackId, takeId) { return this.req("PUT", "/tracks/" + trackId + "/chosen", { take: takeId }); }
  /**
   * @param {string} trackId
   * @param {number} offsetMs where the take starts on the song's timeline
   * @param {number} latencyMs the page's input+output latency
   * @returns {Promise<Take>}
   */
  createTake(trackId, offsetMs, latencyMs) {
    return this.req("POST", "/tracks/" + trackId + "/takes", { offsetMs: Math.max(0, Math.round(offsetMs)), latencyMs: Math.max(0, Math.round(latencyMs)) });
  }
  /**
   * @param {string} takeId @param {number} seq @param {Blob} data @param {number} durationMs
   * @param {number[]} [levels] the input's loudness over the chunk (0–1), drawn live by other pages
   * @returns {Promise<Ack>}
   */
  putChunk(takeId, seq, data, durationMs, levels) {
    const lv = levels && levels.length ? "&levels=" + levels.slice(0, 64).map((v) => Math.min(1, Math.max(0, v)).toFixed(2)).join(",") : "";
    return this.req("PUT", "/takes/" + takeId + "/chunks/" + seq + "?durationMs=" + Math.max(0, Math.round(durationMs)) + lv, data);
  }
  /** @param {string} takeId @param {number} durationMs @returns {Promise<Take>} */
  finish(takeId, durationMs) { return this.req("POST", "/takes/" + takeId + "/finish", { durationMs: Math.max(0, Math.round(durationMs)) }); }
  /** @param {string} takeId */
  deleteTake(takeId) { return this.req("DELETE", "/takes/" + takeId); }
  /**
   * @param {string} takeId
   * @param {boolean} [download] ask for a file to save
   */
  audioURL(takeId, download) { return this.base + "/takes/" + takeId + "/audio" + (download ? "?download=1" : ""); }
}
