/**
 * The media types a request to a simulated cluster may send or ask for beside JSON.
 *
 * @module
 */

/** kubectl sends built-in kinds as protobuf (decoded by `kubectl/protobuf.ts`). */
export const PROTOBUF_MEDIA = "application/vnd.kubernetes.protobuf";

/** kubectl asks for server-side printing: `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. */
export const TABLE_MEDIA: RegExp = /as=Table/;
