/**
 * Where a task runs: the BullMQ queue it is enqueued on and a note for its
 * task row (`placement`). The job service asks a `PlacementResolver` for
 * every task it enqueues; the cluster service provides the real one.
 */
import { QueueName, SHARED_POOL } from '../queues/queue-names.ts';

export interface Placement {
  queue: string;
  /** Human-readable reason, shown on the task (e.g. "cluster a (held by alice)"). */
  placement: string;
}

/** Owner = the job's owner (principal name); hint = the task's node hint (`cluster:<id|name>` or a node id). */
export type PlacementResolver = (owner: string | null, hint: string | null) => Promise<Placement>;

export function sharedPoolPlacement(hint: string | null, why?: string): Placement {
  const note = why ?? (hint ? `requested node ${hint} is a placement hint only` : undefined);
  return { queue: QueueName.Tasks, placement: note ? `${SHARED_POOL} (${note})` : SHARED_POOL };
}

/** Used until a cluster service is wired in: everything runs in the shared pool. */
export const sharedPoolOnly: PlacementResolver = async (_owner, hint) => sharedPoolPlacement(hint);
