/**
 * `Status` error bodies exactly as kube-apiserver writes them (api-conventions, "Response Status
 * Kind"), and the error the simulator throws to produce one.
 *
 * @module
 */

import type { Status } from "../../src/shared/kube_object.ts";

/** Thrown inside the simulator to answer a request with a `Status` error. */
export class StatusError extends Error {
  override name = "StatusError";
  /** The body to send; its `code` is the HTTP status. */
  readonly status: Status;
  /** Seconds for a `Retry-After` header, when the error asks the client to come back. */
  readonly retryAfterSeconds: number | undefined;
  /**
   * @param status The Status body.
   * @param retryAfterSeconds Value for `Retry-After`, if any.
   */
  constructor(status: Status, retryAfterSeconds?: number) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Builds a failure `Status`. */
export function failure(
  code: number,
  reason: string,
  message: string,
  details?: Status["details"],
): Status {
  const status: Status = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
  if (!reason) delete status.reason; // kube-apiserver leaves an unknown reason out
  if (details) status.details = details;
  return status;
}

/** Names a resource in messages: `pods` or `deployments.apps`. */
function qualified(group: string, plural: string): string {
  return group ? `${plural}.${group}` : plural;
}

/** Everything the simulator answers with, by reason. */
export const errors = {
  badRequest: (message: string) => new StatusError(failure(400, "BadRequest", message)),
  unauthorized: () => new StatusError(failure(401, "Unauthorized", "Unauthorized")),
  forbidden: (user: string, verb: string, group: string, plural: string, namespace?: string) =>
    new StatusError(
      failure(
        403,
        "Forbidden",
        `${
          qualified(group, plural)
        } is forbidden: User "${user}" cannot ${verb} resource "${plural}" in API group "${group}"${
          namespace ? ` in the namespace "${namespace}"` : " at the cluster scope"
        }`,
        { group, kind: plural },
      ),
    ),
  notFound: (group: string, plural: string, name: string) =>
    new StatusError(
      failure(404, "NotFound", `${qualified(group, plural)} "${name}" not found`, {
        name,
        group,
        kind: plural,
      }),
    ),
  pathNotFound: () =>
    new StatusError(failure(404, "NotFound", "the server could not find the requested resource")),
  methodNotAllowed: (method: string) =>
    new StatusError(
      failure(
        405,
        "MethodNotAllowed",
        `the server does not allow this method on the requested resource: ${method}`,
      ),
    ),
  alreadyExists: (group: string, plural: string, name: string) =>
    new StatusError(
      failure(409, "AlreadyExists", `${qualified(group, plural)} "${name}" already exists`, {
        name,
        group,
        kind: plural,
      }),
    ),
  conflict: (group: string, plural: string, name: string, why: string) =>
    new StatusError(
      failure(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${qualified(group, plural)} "${name}": ${why}`,
        { name, group, kind: plural },
      ),
    ),
  applyConflict: (conflicts: { message: string; field: string }[]) =>
    new StatusError(
      failure(
        409,
        "Conflict",
        `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? "" : "s"}: ${
          conflicts.map((c) => `${c.message}: ${c.field}`).join("\n")
        }`,
        {
          causes: conflicts.map((c) => ({
            reason: "FieldManagerConflict",
            message: c.message,
            field: c.field,
          })),
        },
      ),
    ),
  expired: (message: string) => new StatusError(failure(410, "Expired", message)),
  unsupportedMediaType: (contentType: string, strategic = true) =>
    new StatusError(
      failure(
        415,
        "UnsupportedMediaType",
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml${
          strategic ? ", application/strategic-merge-patch+json" : ""
        }; got ${contentType}`,
      ),
    ),
  invalid: (kind: string, name: string, causes: { field: string; message: string }[]) =>
    new StatusError(
      failure(
        422,
        "Invalid",
        `${kind} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}`,
        {
          name,
          kind,
          causes: causes.map((c) => ({
            reason: "FieldValueInvalid",
            message: c.message,
            field: c.field,
          })),
        },
      ),
    ),
  tooManyRequests: (retryAfterSeconds: number) =>
    new StatusError(
      failure(429, "TooManyRequests", "Too many requests, please try again later.", {
        retryAfterSeconds,
      }),
      retryAfterSeconds,
    ),
  internalError: (message: string) =>
    new StatusError(failure(500, "InternalError", `Internal error occurred: ${message}`)),
  serviceUnavailable: (retryAfterSeconds: number) =>
    new StatusError(
      failure(503, "ServiceUnavailable", "The server is currently unable to handle the request", {
        retryAfterSeconds,
      }),
      retryAfterSeconds,
    ),
  tooLargeResourceVersion: (requested: string, current: number) =>
    new StatusError(
      failure(504, "Timeout", `Too large resource version: ${requested}, current: ${current}`, {
        causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
        retryAfterSeconds: 1,
      }),
      1,
    ),
};
