/** Every queue in one place (task kinds: domain/task-model.ts). Queue names are used under a hash-tagged prefix (Redis Cluster safe). */
export enum QueueName {
  /** The shared pool: tasks of users holding no cluster. */
  Tasks = 'tasks',
}

/** The `placement` note of a task in the shared pool. */
export const SHARED_POOL = 'shared pool';

/** Queue of a leased cluster's workers. */
export function clusterQueueName(clusterName: string): string {
  return `tasks-cluster-${clusterName}`;
}

/** BullMQ prefix for a configured queue prefix: braces make every key of every queue hash to one slot. */
export function bullPrefix(prefix: string): string {
  return `{${prefix}}`;
}
