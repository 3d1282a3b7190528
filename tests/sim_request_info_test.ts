import assert from "node:assert/strict";
import { requestInfo } from "../testing/sim/request_info.ts";

// Cases from kube-apiserver's own table (k8s.io/apiserver/pkg/endpoints/request/requestinfo_test.go).
const resourceCases: [
  method: string,
  url: string,
  verb: string,
  group: string,
  version: string,
  namespace: string,
  resource: string,
  subresource: string,
  name: string,
  parts: string[],
][] = [
  ["GET", "/api/v1/namespaces", "list", "", "v1", "", "namespaces", "", "", ["namespaces"]],
  ["GET", "/api/v1/namespaces/other", "get", "", "v1", "other", "namespaces", "", "other", [
    "namespaces",
    "other",
  ]],
  ["GET", "/api/v1/namespaces/other/pods", "list", "", "v1", "other", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "", "foo", [
    "pods",
    "foo",
  ]],
  ["HEAD", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "", "foo", [
    "pods",
    "foo",
  ]],
  ["GET", "/api/v1/pods", "list", "", "v1", "", "pods", "", "", ["pods"]],
  ["HEAD", "/api/v1/pods", "list", "", "v1", "", "pods", "", "", ["pods"]],
  [
    "GET",
    "/api/v1/proxy/namespaces/other/pods/foo",
    "proxy",
    "",
    "v1",
    "other",
    "pods",
    "",
    "foo",
    [
      "pods",
      "foo",
    ],
  ],
  [
    "GET",
    "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource",
    "proxy",
    "",
    "v1",
    "other",
    "pods",
    "",
    "foo",
    ["pods", "foo", "subpath", "not", "a", "subresource"],
  ],
  ["GET", "/api/v1/watch/pods", "watch", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?watch=true", "watch", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?watch=false", "list", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/watch/namespaces/other/pods", "watch", "", "v1", "other", "pods", "", "", [
    "pods",
  ]],
  ["GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "", "v1", "other", "pods", "", "", [
    "pods",
  ]],
  ["GET", "/api/v1/namespaces/other/pods?watch=0", "list", "", "v1", "other", "pods", "", "", [
    "pods",
  ]],
  // A boolean query parameter is false only for "0" and "false" (any case).
  ["GET", "/api/v1/pods?watch=FALSE", "list", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?watch=yes", "watch", "", "v1", "", "pods", "", "", ["pods"]],
  ["GET", "/api/v1/pods?watch=", "watch", "", "v1", "", "pods", "", "", ["pods"]],
  [
    "GET",
    "/api/v1/namespaces/other/pods/foo/status",
    "get",
    "",
    "v1",
    "other",
    "pods",
    "status",
    "foo",
    ["pods", "foo", "status"],
  ],
  [
    "GET",
    "/api/v1/namespaces/other/pods/foo/proxy/subpath",
    "get",
    "",
    "v1",
    "other",
    "pods",
    "proxy",
    "foo",
    ["pods", "foo", "proxy", "subpath"],
  ],
  [
    "PUT",
    "/api/v1/namespaces/other/finalize",
    "update",
    "",
    "v1",
    "other",
    "namespaces",
    "finalize",
    "other",
    ["namespaces", "other", "finalize"],
  ],
  [
    "PUT",
    "/api/v1/namespaces/other/status",
    "update",
    "",
    "v1",
    "other",
    "namespaces",
    "status",
    "other",
    ["namespaces", "other", "status"],
  ],
  ["PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "", "v1", "other", "pods", "", "foo", [
    "pods",
    "foo",
  ]],
  ["DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "", "v1", "other", "pods", "", "foo", [
    "pods",
    "foo",
  ]],
  ["POST", "/api/v1/namespaces/other/pods", "create", "", "v1", "other", "pods", "", "", ["pods"]],
  ["DELETE", "/api/v1/nodes", "deletecollection", "", "v1", "", "nodes", "", "", ["nodes"]],
  ["DELETE", "/api/v1/namespaces", "deletecollection", "", "v1", "", "namespaces", "", "", [
    "namespaces",
  ]],
  [
    "DELETE",
    "/api/v1/namespaces/other/pods",
    "deletecollection",
    "",
    "v1",
    "other",
    "pods",
    "",
    "",
    ["pods"],
  ],
  [
    "DELETE",
    "/apis/extensions/v1/namespaces/other/pods",
    "deletecollection",
    "extensions",
    "v1",
    "other",
    "pods",
    "",
    "",
    ["pods"],
  ],
  [
    "POST",
    "/apis/extensions/v1beta3/namespaces/other/pods",
    "create",
    "extensions",
    "v1beta3",
    "other",
    "pods",
    "",
    "",
    ["pods"],
  ],
  // A field selector that requires a name names the request (for authorization).
  [
    "GET",
    "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3Dfoo",
    "list",
    "",
    "v1",
    "other",
    "pods",
    "",
    "foo",
    ["pods"],
  ],
  [
    "GET",
    "/api/v1/namespaces/other/pods?watch=true&fieldSelector=metadata.name%3Dfoo%2Cspec.nodeName%3Dn",
    "watch",
    "",
    "v1",
    "other",
    "pods",
    "",
    "foo",
    ["pods"],
  ],
  [
    "GET",
    "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3D.",
    "list",
    "",
    "v1",
    "other",
    "pods",
    "",
    "",
    ["pods"],
  ],
  [
    "GET",
    "/api/v1/namespaces/other/pods?fieldSelector=metadata.name!%3Dfoo",
    "list",
    "",
    "v1",
    "other",
    "pods",
    "",
    "",
    ["pods"],
  ],
  // A named GET is a get, whatever its query says: kube-apiserver watches one object only by a
  // field selector on the collection (or the deprecated /watch/ path).
  [
    "GET",
    "/api/v1/namespaces/other/pods/foo?watch=true",
    "get",
    "",
    "v1",
    "other",
    "pods",
    "",
    "foo",
    [
      "pods",
      "foo",
    ],
  ],
  [
    "GET",
    "/api/v1/watch/namespaces/other/pods/foo",
    "watch",
    "",
    "v1",
    "other",
    "pods",
    "",
    "foo",
    ["pods", "foo"],
  ],
  [
    "GET",
    "/apis/cluster.x-k8s.io/v1beta2/namespaces/default/clusters/a%20b",
    "get",
    "cluster.x-k8s.io",
    "v1beta2",
    "default",
    "clusters",
    "",
    "a b",
    ["clusters", "a b"],
  ],
];

for (
  const [method, url, verb, group, version, namespace, resource, sub, name, parts] of resourceCases
) {
  Deno.test(`requestInfo reads ${method} ${url} as kube-apiserver does: ${verb}`, () => {
    const info = requestInfo(method, new URL(url, "https://127.0.0.1"));
    assert.equal(info.isResourceRequest, true);
    assert.deepEqual(
      {
        verb: info.verb,
        apiGroup: info.apiGroup,
        apiVersion: info.apiVersion,
        namespace: info.namespace,
        resource: info.resource,
        subresource: info.subresource,
        name: info.name,
        parts: info.parts,
      },
      {
        verb,
        apiGroup: group,
        apiVersion: version,
        namespace,
        resource,
        subresource: sub,
        name,
        parts,
      },
    );
    assert.equal(info.apiPrefix, group ? "apis" : "api");
  });
}

const nonResourceCases: [string, string][] = [
  ["no resource path", "/"],
  ["just apiversion", "/api/version/"],
  ["just prefix, group, version", "/apis/group/version/"],
  ["bad prefix", "/badprefix/version/resource"],
  ["missing api group", "/apis/version/resource"],
  ["discovery of the core group", "/api/v1"],
  ["the version", "/version"],
  ["health", "/healthz"],
  ["OpenAPI", "/openapi/v3/api/v1"],
];

for (const [what, path] of nonResourceCases) {
  Deno.test(`requestInfo: ${path} (${what}) is not a resource request`, () => {
    const info = requestInfo("GET", new URL(path, "https://127.0.0.1"));
    assert.equal(info.isResourceRequest, false);
    assert.equal(info.verb, "get");
    assert.equal(info.path, path);
  });
}

Deno.test("requestInfo refuses a special verb with nothing after it, as kube-apiserver does", () => {
  assert.throws(
    () => requestInfo("GET", new URL("https://127.0.0.1/api/v1/watch")),
    /unable to determine kind and namespace/,
  );
});
