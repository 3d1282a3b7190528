/**
 * The directory of the Unix sockets through which workers reach their API servers (main thread
 * only; see `workers/pinned_tunnel.ts`): one per process, made on first use, removed when the
 * process ends. Workers may read and write here, and nowhere else they do not already.
 *
 * @module
 */

let dir: string | undefined;

/** The process's socket directory (made now if needed). */
export function tunnelDir(): string {
  if (dir !== undefined) return dir;
  const made = Deno.makeTempDirSync({ prefix: "clustercache-" });
  dir = made;
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(made, { recursive: true });
    } catch {
      // gone already
    }
  });
  return made;
}

/**
 * The Unix socket paths of a new worker's sessions: its connection, and the in-cluster one it may
 * switch to. A dedicated worker may use exactly these (its permissions name them).
 */
export function tunnelSockets(): [string, string] {
  const id = crypto.randomUUID().slice(0, 18);
  return [`${tunnelDir()}/${id}.sock`, `${tunnelDir()}/${id}-in.sock`];
}
