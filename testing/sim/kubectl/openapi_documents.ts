/**
 * The OpenAPI documents a simulated cluster serves to kubectl: `/openapi/v3` (an index with each
 * document's hash, and the documents), and `/openapi/v2` (JSON only) for the recorded kinds.
 *
 * @module
 */

import type { Document, OpenApi } from "../openapi.ts";

let recordedV2: Promise<string> | undefined;
/** The real server's OpenAPI v2 document cut to the simulator's kinds, as JSON text (0.7 MB). */
export function openApiV2(): Promise<string> {
  recordedV2 ??= import("../data/openapi_v2.json", { with: { type: "json" } }).then((m) =>
    JSON.stringify(m.default)
  );
  return recordedV2;
}

/** A document's JSON text and its hash. */
export interface DocumentText {
  text: string;
  /** SHA-512, upper-case hex, as kube-apiserver's. */
  hash: string;
}

// Documents are built once per set of kinds (see OpenApi): their texts are kept beside them.
const texts = new WeakMap<Document, Promise<DocumentText>>();

/** A group-version's document as served, or `undefined` when nothing is served there. */
export async function documentText(
  openApi: OpenApi,
  path: string,
): Promise<DocumentText | undefined> {
  const document = await openApi.document(path);
  if (!document) return undefined;
  let text = texts.get(document);
  if (!text) {
    text = (async () => {
      const json = JSON.stringify(document);
      const digest = await crypto.subtle.digest("SHA-512", new TextEncoder().encode(json));
      const hash = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
        .join("").toUpperCase();
      return { text: json, hash };
    })();
    texts.set(document, text);
  }
  return text;
}

/** `/openapi/v3`: every group-version and the URL of its document. */
export async function documentIndex(openApi: OpenApi): Promise<Record<string, unknown>> {
  const paths: Record<string, unknown> = {};
  for (const path of openApi.paths()) {
    const entry = await documentText(openApi, path);
    if (entry) paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${entry.hash}` };
  }
  return { paths };
}
