// @ts-check
// Uploads a take's chunks in order while it records. Each chunk keeps its
// sequence number until the server acknowledges it; a failed send is
// retried with backoff (and at once when the browser is back online), and
// a 409 tells how many chunks the server has, so the page resends from
// there. Nothing unacknowledged is dropped.

import { ApiError } from "./api.js";

/** First retry delay after a failed send, in ms; doubles up to RETRY_MAX_MS. */
export const RETRY_MIN_MS = 250;
/** Longest retry delay in ms. */
export const RETRY_MAX_MS = 4000;

/**
 * @typedef {{seq: number, data: Blob, durationMs: number, levels: number[]}} Chunk
 * @typedef {{putChunk: (take: string, seq: number, data: Blob, durationMs: number, levels?: number[]) => Promise<{chunks: number, bytes: number}>,
 *   finish: (take: string, durationMs: number) => Promise<any>}} ChunkAPI
 * @typedef {{onAck?: (chunks: number, bytes: number) => void, onPending?: (n: number) => void,
 *   onError?: (err: Error) => void, setTimeout?: typeof setTimeout}} UploaderOptions
 */

/** Statuses after which resending the same chunk cannot succeed. */
const FATAL = new Set([400, 401, 403, 404, 413, 415, 507]);

/** Sends one take's chunks, in order, until each is acknowledged. */
export class ChunkUploader {
  /**
   * @param {ChunkAPI} api
   * @param {string} takeId
   * @param {UploaderOptions} [opts]
   */
  constructor(api, takeId, opts = {}) {
    this.api = api;
    this.takeId = takeId;
    this.opts = opts;
    /** @type {Chunk[]} chunks not yet acknowledged, in order */
    this.queue = [];
    this.next = 0;
    this.acked = 0;
    this.bytes = 0;
    this.sending = false;
    this.failures = 0;
    /** Sends that failed and were retried, and 409s that moved the count: for the page and tests. */
    this.retries = 0;
    this.conflicts = 0;
    /** @type {Error|null} a refusal that stops the upload */
    this.error = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.retryTimer = undefined;
    /** @type {Array<() => void>} */
    this.drained = [];
    this.setTimeout = opts.setTimeout || globalThis.setTimeout.bind(globalThis);
  }

  /** How many chunks wait for acknowledgement. */
  get pending() { return this.queue.length; }

  /**
   * Queues the next chunk (MediaRecorder's dataavailable).
   * @param {Blob} data
   * @param {number} durationMs the take's length so far
   * @param {number[]} [levels] the input's loudness over the chunk
   */
  push(data, durationMs, levels = []) {
    if (this.error || data.size === 0) return;
    this.queue.push({ seq: this.next++, data, durationMs, levels });
    this.opts.onPending?.(this.queue.length);
    this.pump();
  }

  /** Retries now if a retry is waiting (the network came back). */
  retryNow() {
    if (this.retryTimer === undefined) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.failures = 0;
    this.pump();
  }

  /**
   * Resolves once every queued chunk is acknowledged, then finishes the
   * take on the server. Rejects with the refusal that stopped the upload.
   * @param {number} durationMs the take's final length
   */
  async finish(durationMs) {
    await new Promise((resolve, reject) => {
      const check = () => (this.error ? reject(this.error) : resolve(undefined));
      if (this.queue.length === 0 || this.error) check();
      else this.drained.push(check);
    });
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.api.finish(this.takeId, durationMs);
      } catch (err) {
        if (err instanceof ApiError) throw err;
        await new Promise((r) => this.setTimeout(r, backoff(attempt)));
      }
    }
  }

  /** Sends the first queued chunk unless a send is in flight. */
  async pump() {
    if (this.sending || this.error || this.retryTimer !== undefined) return;
    const c = this.queue[0];
    if (!c) {
      const waiting = this.drained;
      this.drained = [];
      waiting.forEach((f) => f());
      return;
    }
    this.sending = true;
    try {
      const ack = await this.api.putChunk(this.takeId, c.seq, c.data, c.durationMs, c.levels);
      this.failures = 0;
      this.ackUpTo(ack.chunks, ack.bytes);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && typeof err.body?.expected === "number") {
        // The server has `expected` chunks: those before are safe, the
        // rest are sent (again) from there.
        this.conflicts++;
        this.ackUpTo(err.body.expected, this.bytes);
        if (this.queue.length > 0 && this.queue[0].seq > err.body.expected) {
          this.fail(new Error("the server lost chunks this page no longer has; stop and record a new take"));
        }
      } else if (err instanceof ApiError && (FATAL.has(err.status) || err.status === 409)) {
        this.fail(err);
      } else {
        // Network failure or a server error: keep the chunk and retry.
        this.failures++;
        this.retries++;
        this.retryTimer = this.setTimeout(() => {
          this.retryTimer = undefined;
          this.pump();
        }, backoff(this.failures - 1));
      }
    } finally {
      this.sending = false;
    }
    this.pump();
  }

  /**
   * Forgets the chunks the server has.
   * @param {number} chunks
   * @param {number} bytes
   */
  ackUpTo(chunks, bytes) {
    while (this.queue.length > 0 && this.queue[0].seq < chunks) this.queue.shift();
    this.acked = Math.max(this.acked, chunks);
    this.bytes = bytes;
    this.opts.onAck?.(this.acked, this.bytes);
    this.opts.onPending?.(this.queue.length);
  }

  /** @param {Error} err */
  fail(err) {
    this.error = err;
    this.opts.onError?.(err);
    const waiting = this.drained;
    this.drained = [];
    waiting.forEach((f) => f());
  }
}

/**
 * Delay before retry number `attempt` (0 = first): 250 ms, 500 ms, 1 s, … 4 s.
 * @param {number} attempt
 */
export function backoff(attempt) {
  return Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(Math.max(0, attempt), 10));
}
