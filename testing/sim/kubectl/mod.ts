/**
 * What only kubectl (and the controllers it waits on) needs of a simulated cluster: server-side
 * printing (Tables), protobuf request bodies, the OpenAPI documents, the `/scale` subresource, the
 * review kinds, and completed rollouts. The API server loads this module the first time a request
 * needs it, so the library's own tests never load it.
 *
 * @module
 */

export { decodeProtobufObject } from "./protobuf.ts";
export { documentIndex, documentText, openApiV2 } from "./openapi_documents.ts";
export { answerReview } from "./reviews.ts";
export { completeRollouts } from "./rollouts.ts";
export { toScale, writeScale } from "./scale.ts";
export { toTable } from "./table.ts";
