/**
 * A headless Chromium driven over the DevTools protocol, for tests of pages in a real browser.
 * `chromiumPath()` finds one (Debian's `chromium`); tests without it are skipped, and say so.
 */

const CANDIDATES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];

/** The path of a Chromium on PATH, or `undefined`. */
export function chromiumPath(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of CANDIDATES) {
      try {
        const path = `${dir}/${name}`;
        if (Deno.statSync(path).isFile) return path;
      } catch { /* not there */ }
    }
  }
  return undefined;
}

/** Chromium's stderr, read until it closes. */
interface Stderr {
  reader: ReadableStreamDefaultReader<string>;
  drained: Promise<void>;
}

async function closeStderr(stderr: Stderr): Promise<void> {
  await stderr.reader.cancel().catch(() => {});
  await stderr.drained;
}

/** One page of a headless Chromium. */
export class HeadlessPage implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #socket: WebSocket;
  readonly #profile: string;
  readonly #session: string;
  readonly #stderr: Stderr;
  #nextId = 1;
  readonly #pending = new Map<number, PromiseWithResolvers<Record<string, unknown>>>();

  private constructor(
    child: Deno.ChildProcess,
    socket: WebSocket,
    profile: string,
    session: string,
    stderr: Stderr,
  ) {
    this.#child = child;
    this.#stderr = stderr;
    this.#socket = socket;
    this.#profile = profile;
    this.#session = session;
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data) as {
        id?: number;
        result?: Record<string, unknown>;
        error?: { message: string };
      };
      const waiting = message.id === undefined ? undefined : this.#pending.get(message.id);
      if (!waiting) return;
      this.#pending.delete(message.id!);
      if (message.error) waiting.reject(new Error(message.error.message));
      else waiting.resolve(message.result ?? {});
    };
  }

  /** Starts Chromium and opens `url` in a page `width` x `height`. */
  static async open(
    browser: string,
    url: string,
    width = 1280,
    height = 720,
  ): Promise<HeadlessPage> {
    const profile = await Deno.makeTempDir({ prefix: "chromium-profile-" });
    const child = new Deno.Command(browser, {
      args: [
        "--headless=new",
        "--no-sandbox", // tests run as root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        `--user-data-dir=${profile}`,
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        `--window-size=${width},${height}`,
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let endpoint: string | undefined;
    const deadline = Date.now() + 30_000;
    while (!endpoint && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      endpoint = /DevTools listening on (ws:\/\/\S+)/.exec(text)?.[1];
    }
    const stderr: Stderr = {
      reader,
      drained: (async () => {
        while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
      })(),
    };
    if (!endpoint) {
      child.kill("SIGKILL");
      await child.status;
      await closeStderr(stderr);
      throw new Error(`Chromium did not start: ${text.slice(-2000)}`);
    }
    const socket = new WebSocket(endpoint);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error("could not reach Chromium's DevTools"));
    });
    const page = new HeadlessPage(child, socket, profile, "", stderr);
    const { targetId } = await page.#send("Target.createTarget", { url }) as { targetId: string };
    const { sessionId } = await page.#send("Target.attachToTarget", {
      targetId,
      flatten: true,
    }) as {
      sessionId: string;
    };
    const attached = new HeadlessPage(child, socket, profile, sessionId, stderr);
    attached.#nextId = page.#nextId;
    await attached.#send("Page.enable", {});
    await attached.#send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: 1,
      mobile: false,
    });
    return attached;
  }

  #send(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    const waiting = Promise.withResolvers<Record<string, unknown>>();
    this.#pending.set(id, waiting);
    this.#socket.send(
      JSON.stringify({
        id,
        method,
        params,
        ...(this.#session ? { sessionId: this.#session } : {}),
      }),
    );
    return waiting.promise;
  }

  /** Evaluates `expression` in the page and returns its value (JSON-serialisable). */
  async evaluate<T>(expression: string): Promise<T> {
    const { result, exceptionDetails } = await this.#send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    }) as { result: { value: T }; exceptionDetails?: { text: string } };
    if (exceptionDetails) throw new Error(`in the page: ${exceptionDetails.text}`);
    return result.value;
  }

  /** Waits until `expression` is truthy in the page. */
  async until(expression: string, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.evaluate<boolean>(`Boolean(${expression})`))) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out after ${timeoutMs}ms waiting for ${what}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A PNG of the page as it looks now. */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.#send("Page.captureScreenshot", { format: "png" }) as {
      data: string;
    };
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#socket.close();
    } catch { /* closed */ }
    this.#child.kill("SIGKILL");
    await this.#child.status;
    // Chromium's helpers inherit its stderr and outlive it for a while (longer on a busy machine):
    // stop reading rather than wait for them to close it.
    await closeStderr(this.#stderr);
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}
