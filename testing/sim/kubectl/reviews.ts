/**
 * Answers to the review kinds kubectl's `auth` commands create (`REVIEW_TYPES`):
 * SelfSubjectAccessReview (`kubectl auth can-i`), SelfSubjectRulesReview (`can-i --list`) and
 * SelfSubjectReview (`kubectl auth whoami`). They are answered, never stored, as kube-apiserver
 * does; every identity the simulator accepts is an administrator (`system:masters`).
 *
 * @module
 */

import type { KubeObject } from "../../../src/shared/kube_object.ts";
import type { UserInfo } from "../auth.ts";
import type { ResourceType } from "../resource_types.ts";

/** kube-apiserver's answer to a review `body` of kind `type.kind` from `user`. */
export function answerReview(type: ResourceType, body: KubeObject, user: UserInfo): KubeObject {
  const head = { kind: type.kind, apiVersion: `${type.group}/v1` };
  switch (type.kind) {
    case "SelfSubjectAccessReview":
      return { ...head, metadata: {}, spec: body.spec ?? {}, status: { allowed: true } };
    case "SelfSubjectRulesReview":
      return {
        ...head,
        metadata: {},
        spec: {},
        status: {
          resourceRules: [
            { verbs: ["*"], apiGroups: ["*"], resources: ["*"] },
            {
              verbs: ["create"],
              apiGroups: ["authorization.k8s.io"],
              resources: ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            },
            {
              verbs: ["create"],
              apiGroups: ["authentication.k8s.io"],
              resources: ["selfsubjectreviews"],
            },
          ],
          nonResourceRules: [
            { verbs: ["*"], nonResourceURLs: ["*"] },
            {
              verbs: ["get"],
              nonResourceURLs: [
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
              ],
            },
          ],
          incomplete: false,
        },
      };
    default:
      return {
        ...head,
        metadata: { creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z") },
        status: { userInfo: { username: user.username, groups: user.groups } },
      };
  }
}
