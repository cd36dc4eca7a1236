// Socket.IO with failover and catch-up (docs/realtime.md; the Python twin is tests/support/failover.py).
//
// Connects to the first realtime URL of GET /api/v1/config; when the connection fails or drops
// (or the server says `disconnect_reason`), it moves on to the next URL, round robin with capped
// back-off. After every (re)connect and on `resync`, it catches up with GET /sync?since=<cursor of
// the last applied event>, following has_more. Events pushed meanwhile wait and are applied
// after, and duplicates are dropped by event_id, so every change is applied once and in order.

import { io } from "../vendor/socket.io.esm.min.js";
import { ApiError, get } from "./api.js";

const MAX_DELAY_MS = 10_000;
const SEEN_LIMIT = 5000;

export class Realtime {
  /**
   * @param {object} o
   * @param {string[]} o.urls realtime URLs, in the order to try them
   * @param {string} o.path the Socket.IO path ("/socket.io")
   * @param {() => string} o.token the current bearer token
   * @param {string} o.cursor where the client's state stands (GET /sync without `since`, taken before loading)
   * @param {(event: string, data: object) => void} o.onEvent applies one event
   * @param {() => Promise<string>} o.onReset reloads the state after `cursor_expired`; resolves with a fresh cursor
   * @param {(state: string) => void} o.onStatus "connecting" | "connected" | "offline"
   * @param {() => Promise<void>} o.onAuthFailure checks the token when connecting keeps failing
   */
  constructor(o) {
    Object.assign(this, o);
    this.next = 0;
    this.delay = 250;
    this.failures = 0;
    this.socket = null;
    this.stopped = false;
    this.catchingUp = false;
    this.again = false;
    this.held = [];
    this.seen = new Set();
    this.timer = null;
  }

  start() {
    this._connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this._drop();
  }

  _connect() {
    if (this.stopped) return;
    const url = this.urls[this.next % this.urls.length];
    this.next += 1;
    this.onStatus("connecting");
    // Only the origin: a path in the URL would be read as a Socket.IO namespace (`path` is separate).
    const socket = io(new URL(url, window.location.href).origin, {
      path: this.path,
      auth: { token: this.token() },
      reconnection: false, // this class picks the next server itself
      forceNew: true,
      timeout: 10_000,
      transports: ["websocket", "polling"],
    });
    this.socket = socket;
    socket.on("connect", () => {
      this.delay = 250;
      this.failures = 0;
      // "connected" once caught up: from then on the state is current and stays so.
      this.catchUp().then(() => {
        if (socket === this.socket && socket.connected) this.onStatus("connected");
      });
    });
    socket.on("connect_error", () => this._retry(socket, true));
    socket.on("disconnect", (reason) => {
      if (reason !== "io client disconnect") this._retry(socket, false);
    });
    socket.onAny((event, data) => this._pushed(event, data));
  }

  _drop() {
    if (!this.socket) return;
    const socket = this.socket;
    this.socket = null;
    socket.offAny();
    socket.off();
    socket.disconnect();
  }

  _retry(socket, failedToConnect) {
    if (this.stopped || socket !== this.socket) return;
    this._drop();
    this.onStatus(this.failures > 1 ? "offline" : "connecting");
    this.failures += 1;
    if (failedToConnect && this.failures % 3 === 0 && this.onAuthFailure) this.onAuthFailure();
    const wait = this.delay + Math.random() * 250;
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._connect(), wait);
  }

  _pushed(event, data) {
    if (event === "resync") {
      this.catchUp(); // realtime lost the event bus for a while
      return;
    }
    if (event === "disconnect_reason") {
      // e.g. too_slow: the server closes the transport next; "disconnect" moves us on and we sync.
      return;
    }
    if (!data || typeof data !== "object") return;
    if (this.catchingUp) this.held.push([event, data]);
    else this._apply(event, data);
  }

  _apply(event, data) {
    if (data.cursor) this.cursor = data.cursor;
    if (data.event_id) {
      if (this.seen.has(data.event_id)) return;
      this.seen.add(data.event_id);
      if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value);
    }
    try {
      this.onEvent(event, data);
    } catch (e) {
      console.warn("could not apply", event, e); // eslint-disable-line no-console
    }
  }

  /** Everything since the last applied event, then whatever was pushed meanwhile. */
  async catchUp() {
    if (this.catchingUp) {
      this.again = true;
      return;
    }
    this.catchingUp = true;
    try {
      for (;;) {
        let page;
        try {
          page = await get("/sync", { since: this.cursor });
        } catch (e) {
          if (e instanceof ApiError && (e.code === "cursor_expired" || e.code === "invalid_cursor")) {
            // Too old (or not ours): reload everything from a fresh cursor; what was held is in it.
            this.held = [];
            this.cursor = await this.onReset();
            continue;
          }
          if (e instanceof ApiError && e.status === 401) return;
          await new Promise((r) => setTimeout(r, 2000)); // the gateway is away: try again
          if (this.stopped) return;
          continue;
        }
        for (const change of page.changes) this._apply(change.event, change);
        this.cursor = page.cursor;
        if (page.has_more) continue;
        if (this.again) {
          this.again = false;
          continue;
        }
        const held = this.held;
        this.held = [];
        for (const [event, data] of held) this._apply(event, data);
        return;
      }
    } finally {
      this.catchingUp = false;
    }
  }
}
