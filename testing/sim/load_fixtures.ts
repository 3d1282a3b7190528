/**
 * Load for the simulated API server: realistic Pods and floods of objects, for benchmarks and the
 * demo.
 *
 * @module
 */

import type { KubeObject } from "../../src/shared/kube_object.ts";
import { sleep } from "../../src/shared/backoff.ts";
import type { ObjectStore } from "./object_store.ts";
import { NAMESPACE_TYPE, type ResourceType } from "./resource_types.ts";

/** A Pod shaped like a real workload's (about 2 KB of JSON), for load and benchmarks. */
export function realisticPod(namespace: string, index: number): KubeObject {
  const app = `app-${index % 50}`;
  return {
    metadata: {
      generateName: `${app}-7d9f8c6b5-`,
      namespace,
      labels: {
        app,
        "pod-template-hash": "7d9f8c6b5",
        tier: index % 2 ? "backend" : "frontend",
        flood: "true",
      },
      annotations: {
        "sim/created-at": String(Date.now()),
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
      },
      ownerReferences: [{
        apiVersion: "apps/v1",
        kind: "ReplicaSet",
        name: `${app}-7d9f8c6b5`,
        uid: "5f0a6f0e-1c2d-4b5a-9e8f-0a1b2c3d4e5f",
        controller: true,
        blockOwnerDeletion: true,
      }],
    },
    spec: {
      nodeName: `node-${index % 20}`,
      serviceAccountName: "default",
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      containers: [{
        name: "server",
        image: `registry.example.com/${app}:v1.${index % 10}.0`,
        ports: [{ containerPort: 8080, name: "http", protocol: "TCP" }, {
          containerPort: 9090,
          name: "metrics",
          protocol: "TCP",
        }],
        env: [
          { name: "LOG_LEVEL", value: "info" },
          { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
          { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
        ],
        resources: {
          requests: { cpu: "100m", memory: "128Mi" },
          limits: { cpu: "500m", memory: "256Mi" },
        },
        readinessProbe: { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 10 },
        livenessProbe: {
          httpGet: { path: "/livez", port: 8080 },
          periodSeconds: 20,
          failureThreshold: 3,
        },
        volumeMounts: [{
          name: "kube-api-access",
          mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
          readOnly: true,
        }],
      }],
      volumes: [{
        name: "kube-api-access",
        projected: {
          sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: "token" } }],
        },
      }],
      tolerations: [{
        key: "node.kubernetes.io/not-ready",
        operator: "Exists",
        effect: "NoExecute",
        tolerationSeconds: 300,
      }],
    },
    status: {
      phase: "Running",
      podIP: `10.0.${index % 250}.${(index * 7) % 250}`,
      hostIP: `192.168.0.${index % 20}`,
      conditions: [
        { type: "Initialized", status: "True", lastTransitionTime: "2026-01-01T00:00:00Z" },
        { type: "Ready", status: "True", lastTransitionTime: "2026-01-01T00:00:05Z" },
        { type: "ContainersReady", status: "True", lastTransitionTime: "2026-01-01T00:00:05Z" },
        { type: "PodScheduled", status: "True", lastTransitionTime: "2026-01-01T00:00:00Z" },
      ],
      containerStatuses: [{
        name: "server",
        ready: true,
        restartCount: 0,
        image: `registry.example.com/${app}:v1.${index % 10}.0`,
        imageID:
          "registry.example.com/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        containerID:
          "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        started: true,
        state: { running: { startedAt: "2026-01-01T00:00:04Z" } },
      }],
      qosClass: "Burstable",
      startTime: "2026-01-01T00:00:00Z",
    },
  };
}

/**
 * Creates `count` ConfigMaps (or realistic Pods) in `namespace` as fast as the store takes them,
 * yielding every 250 so the server keeps answering. Each carries its creation time (ConfigMaps in
 * `data.t`, Pods in the `sim/created-at` annotation).
 *
 * @param typeOf The served type of a core plural.
 * @returns The names created.
 */
export async function flood(
  store: ObjectStore,
  typeOf: (plural: "pods" | "configmaps") => ResourceType,
  options: {
    count: number;
    namespace?: string;
    payloadBytes?: number;
    kind?: "configmaps" | "pods";
  },
  signal: AbortSignal,
): Promise<string[]> {
  const namespace = options.namespace ?? "default";
  if (!store.get(NAMESPACE_TYPE, "", namespace)) {
    store.create(NAMESPACE_TYPE, { metadata: { name: namespace } });
  }
  const pods = options.kind === "pods";
  const type = typeOf(pods ? "pods" : "configmaps");
  const payload = "x".repeat(options.payloadBytes ?? 64);
  const names: string[] = [];
  for (let i = 0; i < options.count; i++) {
    const object = store.create(
      type,
      pods ? realisticPod(namespace, i) : {
        metadata: { generateName: "flood-", namespace, labels: { flood: "true" } },
        data: { payload, t: String(Date.now()) },
      },
      { keepStatus: true },
    );
    names.push(object.metadata!.name!);
    if (i % 250 === 249) await sleep(0, signal);
  }
  return names;
}
