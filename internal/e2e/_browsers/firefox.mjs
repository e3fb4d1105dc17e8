// Drives headless Firefox ESR for the Go browser tests (internal/e2e
// firefox_test.go) with puppeteer-core over WebDriver BiDi: no geckodriver,
// no browser download. It reads one JSON command a line on stdin and
// answers each with one JSON line on stdout ({id, value} or {id, error});
// the Go test owns the server, the users and every assertion.
//
//   {"id":1,"op":"open","page":"ada","cookie":{"name":"…","value":"…","url":"http://…"}}
//   {"id":2,"op":"goto","page":"ada","url":"http://…"}
//   {"id":3,"op":"eval","page":"ada","expr":"document.title"}   (awaited; JSON value)
//   {"id":4,"op":"click","page":"ada","sel":"#join-btn"}
//   {"id":5,"op":"type","page":"ada","sel":"#chat-input","text":"hi"}
//   {"id":6,"op":"script","page":"ada","source":"…"}            (runs a script's source)
//   {"id":7,"op":"close","page":"ada"}                          (closes the tab, as a person would)
//
// Every command is bounded (opTimeoutMs, or its own timeoutMs); the first line it prints is
// {"ready":true,"version":"…"} once Firefox runs. It exits when stdin ends.
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const opTimeoutMs = 30_000; // unless the command says timeoutMs
const executablePath = process.env.PARLEY_FIREFOX || "/usr/bin/firefox-esr";

// Fake camera and microphone without a prompt; without the two
// permissions.default prefs Firefox gathers no loopback ICE candidates
// (it hides host candidates from pages that were not granted a device),
// and without ice.loopback it skips 127.0.0.1 altogether.
const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath,
  headless: true,
  protocolTimeout: 10 * 60_000, // each command has its own bound
  extraPrefsFirefox: {
    "media.navigator.streams.fake": true,
    "media.navigator.permission.disabled": true,
    "permissions.default.camera": 1,
    "permissions.default.microphone": 1,
    "media.peerconnection.ice.loopback": true,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    // Several users share this browser; tabs not in front must not be
    // throttled like background tabs.
    "dom.min_background_timeout_value": 4,
    "dom.timeout.enable_budget_timer_throttling": false,
  },
});

/** @type {Map<string, {context: import("puppeteer-core").BrowserContext, page: import("puppeteer-core").Page}>} */
const pages = new Map();

/** @param {string} name */
function pageOf(name) {
  const p = pages.get(name);
  if (!p) throw new Error(`no page ${name}`);
  return p.page;
}

/** @param {any} cmd */
async function run(cmd) {
  switch (cmd.op) {
    case "open": {
      const context = await browser.createBrowserContext();
      if (cmd.cookie) await context.setCookie({ ...cmd.cookie, domain: new URL(cmd.cookie.url).hostname, path: "/" });
      const page = await context.newPage();
      page.setDefaultTimeout(opTimeoutMs);
      page.on("console", (m) => { if (m.type() === "error") log(`${cmd.page} console: ${m.text()}`); });
      page.on("pageerror", (e) => log(`${cmd.page} page error: ${e}`));
      pages.set(cmd.page, { context, page });
      return null;
    }
    case "goto":
      await pageOf(cmd.page).goto(cmd.url, { waitUntil: "load" });
      return null;
    case "eval":
      // A string, so the page's own realm evaluates it (awaited if a promise).
      return await pageOf(cmd.page).evaluate(`(async () => (${cmd.expr}))()`);
    case "script":
      // A classic script's source (axe-core's bundle, say), run as is.
      await pageOf(cmd.page).evaluate(cmd.source);
      return null;
    case "click":
      await pageOf(cmd.page).locator(cmd.sel).click();
      return null;
    case "type":
      await pageOf(cmd.page).locator(cmd.sel).fill(cmd.text);
      return null;
    case "close": {
      const p = pages.get(cmd.page);
      if (!p) return null;
      pages.delete(cmd.page);
      await p.page.close({ runBeforeUnload: true });
      await p.context.close().catch(() => {});
      return null;
    }
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

/** @param {string} s */
function log(s) { process.stderr.write(s + "\n"); }

/** @param {any} v */
function reply(v) { process.stdout.write(JSON.stringify(v) + "\n"); }

reply({ ready: true, version: await browser.version() });

const rl = createInterface({ input: process.stdin });
/** @type {Promise<unknown>} */
let queue = Promise.resolve();
rl.on("line", (line) => {
  /** @type {any} */
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { reply({ id: 0, error: `bad command: ${e}` }); return; }
  // One command at a time, in order, each bounded.
  queue = queue.then(async () => {
    let timer;
    const ms = Number(cmd.timeoutMs) > 0 ? Number(cmd.timeoutMs) : opTimeoutMs;
    try {
      const value = await Promise.race([
        run(cmd),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${cmd.op} took over ${ms} ms`)), ms); }),
      ]);
      reply({ id: cmd.id, value: value === undefined ? null : value });
    } catch (e) {
      reply({ id: cmd.id, error: String(e instanceof Error ? e.message : e) });
    } finally {
      clearTimeout(timer);
    }
  });
});
rl.on("close", async () => {
  await queue.catch(() => {});
  await browser.close().catch(() => {});
  process.exit(0);
});
