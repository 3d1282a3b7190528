/**
 * What a list or watch request's `resourceVersion`, `resourceVersionMatch`, `limit` and `continue`
 * parameters ask for (Kubernetes API concepts, "Resource versions"), so the simulated API server
 * answers them the way kube-apiserver does.
 *
 * @module
 */

/** What a list request asks the server for. */
export type ListSemantics =
  | { kind: "MostRecent" }
  | { kind: "Any" }
  | { kind: "NotOlderThan"; resourceVersion: string }
  | { kind: "Exact"; resourceVersion: string }
  | { kind: "Continuation"; token: string };

/** The parameters of a list request that decide its semantics. */
export interface ListParameters {
  resourceVersion?: string | undefined;
  resourceVersionMatch?: string | undefined;
  limit?: number | undefined;
  continue?: string | undefined;
}

const forbiddenWithoutVersion = {
  invalid: "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
  field: "resourceVersionMatch",
};

/**
 * Decides what a list request means, or why it is invalid (kube-apiserver's 422 Invalid, with the
 * field and its message).
 *
 * | limit / continue | RV unset | RV "0" | RV = X |
 * |---|---|---|---|
 * | no limit | MostRecent | Any | NotOlderThan |
 * | limit=n | MostRecent | Any | Exact |
 * | continue | Continuation | Continuation | invalid |
 *
 * `resourceVersionMatch=Exact` needs a version other than "0"; `NotOlderThan` needs a version.
 *
 * @param p The request's parameters.
 * @returns The semantics, or `{ invalid: message, field }` (no field: a 400 Bad Request).
 */
export function listSemantics(
  p: ListParameters,
): ListSemantics | { invalid: string; field: string } {
  const rv = p.resourceVersion ?? "";
  const match = p.resourceVersionMatch ?? "";
  if (p.continue) {
    if (rv !== "" && rv !== "0") {
      // Refused by the storage layer (400), not by ListOptions validation (422).
      return {
        invalid: "specifying resource version is not allowed when using continue",
        field: "",
      };
    }
    if (match !== "") {
      return {
        invalid: "Forbidden: resourceVersionMatch is forbidden when continue is provided",
        field: "resourceVersionMatch",
      };
    }
    return { kind: "Continuation", token: p.continue };
  }
  if (match !== "") {
    if (match === "Exact") {
      if (rv === "") return forbiddenWithoutVersion;
      if (rv === "0") {
        return {
          invalid: 'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
          field: "resourceVersionMatch",
        };
      }
      return { kind: "Exact", resourceVersion: rv };
    }
    if (match === "NotOlderThan") {
      if (rv === "") return forbiddenWithoutVersion;
      return rv === "0" ? { kind: "Any" } : { kind: "NotOlderThan", resourceVersion: rv };
    }
    return {
      invalid: `Unsupported value: "${match}": supported values: "Exact", "NotOlderThan", ""`,
      field: "resourceVersionMatch",
    };
  }
  if (rv === "") return { kind: "MostRecent" };
  if (rv === "0") return { kind: "Any" };
  if (p.limit !== undefined && p.limit > 0) return { kind: "Exact", resourceVersion: rv };
  return { kind: "NotOlderThan", resourceVersion: rv };
}

/** What a watch request starts from. */
export type WatchStart =
  | { kind: "InitialState" }
  | { kind: "From"; resourceVersion: string };

/**
 * Decides where a watch starts: unset and "0" begin with synthetic ADDED events for the current
 * state; a version X streams only changes after X.
 *
 * @param resourceVersion The request's `resourceVersion` parameter.
 * @returns Where the watch starts.
 */
export function watchStart(resourceVersion: string | undefined): WatchStart {
  return resourceVersion === undefined || resourceVersion === "" || resourceVersion === "0"
    ? { kind: "InitialState" }
    : { kind: "From", resourceVersion };
}
