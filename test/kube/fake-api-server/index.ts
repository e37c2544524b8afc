/** The fake Kubernetes API server test harness. See test/kube/README.md. */
export { InProcessClient } from './in-process-client.js';
export { fakeKubeConfig, writeKubeConfig } from './kubeconfig.js';
export { PatchTypes } from './patch.js';
export type { JsonObject, ResourceType } from './resources.js';
export type { RequestRecord } from './routes.js';
export { formatLabelSelector } from './selectors.js';
export { FakeApiServer, type FakeApiServerOptions } from './server.js';
export type { Change, MutationRecord } from './storage.js';
