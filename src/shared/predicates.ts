/**
 * Both sides: predicates filter the events a watch delivers. Functions run on the main thread; the
 * declarative ones below are sent to the cluster's worker, so filtered-out events never cross
 * threads.
 *
 * @module
 */

import type { WatchEvent } from "./client_types.ts";
import { matchesFields, parseFieldSelector, readFieldPath } from "./field_selector.ts";
import type { KubeObject } from "./kube_object.ts";
import { matchesLabels, parseLabelSelector } from "./label_selector.ts";
import type { PushdownFilters } from "./protocol.ts";

/**
 * A predicate evaluated in the worker: events it rejects never reach the main thread. Build them
 * with {@linkcode predicates}.
 *
 * @example Literal form and helper form are the same
 * ```ts
 * import assert from "node:assert/strict";
 * import { type DeclarativePredicate, predicates } from "@fleetkit/clustercache";
 *
 * const literal: DeclarativePredicate = { labelSelector: "app=web" };
 * assert.deepEqual(predicates.labelSelector("app=web"), literal);
 * ```
 */
export type DeclarativePredicate =
  | { labelSelector: string }
  | { fieldSelector: string }
  | { generationChanged: true }
  | { resourceVersionChanged: true };

/**
 * A predicate: a function of the event (main thread), or a declarative one (worker).
 *
 * @example Mixing both kinds in a watch
 * ```ts
 * import { type KubeObject, type Predicate, predicates } from "@fleetkit/clustercache";
 * import { FakeClient, FakeClusterCache } from "@fleetkit/clustercache/testing";
 *
 * const cluster = { namespace: "default", name: "workload-1" };
 * const cache = new FakeClusterCache(new FakeClient(), cluster);
 * const filters: Predicate<KubeObject>[] = [
 *   predicates.generationChanged(), // in the worker
 *   (event) => event.object.metadata?.namespace !== "kube-system", // here
 * ];
 * await (await cache.watch(cluster, {
 *   name: "deployments",
 *   kind: { apiVersion: "apps/v1", kind: "Deployment" },
 *   predicates: filters,
 *   handler: (event) => console.log(event.type, event.object.metadata?.name),
 * })).synced;
 * ```
 */
export type Predicate<T extends KubeObject = KubeObject> =
  | ((event: WatchEvent<T>) => boolean)
  | DeclarativePredicate;

/**
 * Declarative predicates.
 *
 * @example Only spec changes of labelled objects
 * ```ts
 * import { predicates } from "@fleetkit/clustercache";
 *
 * const filters = [predicates.labelSelector("app=web"), predicates.generationChanged()];
 * ```
 */
export const predicates = {
  /** Events of objects whose labels match (applied to the new object of updates). */
  labelSelector: (selector: string): DeclarativePredicate => ({ labelSelector: selector }),
  /** Events of objects whose fields match, e.g. `spec.nodeName=n1`. */
  fieldSelector: (selector: string): DeclarativePredicate => ({ fieldSelector: selector }),
  /** Updates only when `metadata.generation` changed (spec changes); adds and deletes pass. */
  generationChanged: (): DeclarativePredicate => ({ generationChanged: true }),
  /** Updates only when `metadata.resourceVersion` changed (drops periodic resyncs). */
  resourceVersionChanged: (): DeclarativePredicate => ({ resourceVersionChanged: true }),
} as const;

/**
 * Splits predicates into the filters pushed to the worker and the functions kept on the main thread.
 *
 * @throws {TypeError} For a malformed selector or an unknown predicate.
 */
export function splitPredicates<T extends KubeObject>(
  list: readonly Predicate<T>[] = [],
): { pushdown: PushdownFilters; local: ((event: WatchEvent<T>) => boolean)[] } {
  const labels: string[] = [];
  const fields: string[] = [];
  const pushdown: PushdownFilters = {};
  const local: ((event: WatchEvent<T>) => boolean)[] = [];
  for (const predicate of list) {
    if (typeof predicate === "function") {
      local.push(predicate);
    } else if (predicate && "labelSelector" in predicate) {
      parseLabelSelector(predicate.labelSelector);
      labels.push(predicate.labelSelector);
    } else if (predicate && "fieldSelector" in predicate) {
      parseFieldSelector(predicate.fieldSelector);
      fields.push(predicate.fieldSelector);
    } else if (predicate && "generationChanged" in predicate) {
      pushdown.generationChanged = true;
    } else if (predicate && "resourceVersionChanged" in predicate) {
      pushdown.resourceVersionChanged = true;
    } else {
      throw new TypeError(`Unknown predicate: ${JSON.stringify(predicate)}`);
    }
  }
  if (labels.length > 0) pushdown.labelSelector = labels.join(",");
  if (fields.length > 0) pushdown.fieldSelector = fields.join(",");
  return { pushdown, local };
}

/** A compiled pushdown filter: whether an event passes. */
export type EventFilter = (event: WatchEvent) => boolean;

/**
 * Compiles the declarative filters of a watch into one predicate: the worker runs it on its cache's
 * changes, and the fake of `./testing` on its own, so both filter alike.
 */
export function compileFilters(filters: PushdownFilters): EventFilter {
  const checks: EventFilter[] = [];
  if (filters.labelSelector) {
    const selector = parseLabelSelector(filters.labelSelector);
    checks.push((d) => matchesLabels(selector, d.object.metadata?.labels));
  }
  if (filters.fieldSelector) {
    const selector = parseFieldSelector(filters.fieldSelector);
    checks.push((d) => matchesFields(selector, (f) => readFieldPath(d.object, f)));
  }
  if (filters.generationChanged) {
    checks.push((d) =>
      d.type !== "update" || d.object.metadata?.generation !== d.oldObject.metadata?.generation
    );
  }
  if (filters.resourceVersionChanged) {
    checks.push((d) =>
      d.type !== "update" ||
      d.object.metadata?.resourceVersion !== d.oldObject.metadata?.resourceVersion
    );
  }
  return (event) => checks.every((check) => check(event));
}
