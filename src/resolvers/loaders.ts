/**
 * Per-request DataLoaders, created lazily on the request's context, so a
 * list of jobs costs one query for all their tasks and one for all their
 * connections instead of one per row.
 */
import DataLoader from 'dataloader';
import type { GraphQLContext } from './context.ts';
import type { ConnectionRow } from '../store/connection.repo.ts';
import type { TaskRow } from '../store/job.repo.ts';

export interface Loaders {
  connection: DataLoader<string, ConnectionRow | undefined>;
  tasksByJob: DataLoader<string, TaskRow[]>;
}

const cache = new WeakMap<object, Loaders>();

export function loaders(ctx: GraphQLContext): Loaders {
  let l = cache.get(ctx);
  if (!l) {
    const s = ctx.services;
    l = {
      connection: new DataLoader((ids) => s.connections.getMany(ids)),
      tasksByJob: new DataLoader(async (jobIds) => {
        const rows = await s.jobs.tasksOf(jobIds);
        return jobIds.map((id) => rows.filter((r) => r.job_id === id));
      }),
    };
    cache.set(ctx, l);
  }
  return l;
}
