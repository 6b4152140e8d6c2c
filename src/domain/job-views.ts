/** Derived views of a job row (progress %, ETA, metrics) shared by GraphQL and job events. */
import type { IncrementalSnapshotProgress, JobMetricsData, JobProgressData, JobStatus } from './job-model.ts';

/** What the views read of a stored job (store/job.repo.ts JobRow has it). */
export interface JobViewSource {
  id: string;
  status: JobStatus;
  status_reason: string | null;
  progress: Partial<JobProgressData>;
  metrics: Partial<JobMetricsData>;
}

export interface JobProgressView { phase: string; rowsDone: number; rowsEstimated: number; percent: number | null; etaSeconds: number | null; chunksDone: number; chunksTotal: number; incrementalSnapshot: (IncrementalSnapshotProgress & { percent: number | null }) | null }
export interface JobMetricsView {
  /** The job's id, for the backlog field (read from Redis when asked); not a GraphQL field itself. */
  jobId: string;
  changesCaptured: number; rowsApplied: number; bytesCaptured: number; lagMs: number | null;
  capturedSequence?: string; appliedSequence?: string; lastCommitAt?: string;
}

export function toProgress(r: JobViewSource): JobProgressView {
  const p = r.progress;
  const done = p.rowsDone ?? 0;
  const est = p.rowsEstimated ?? 0;
  const percent = r.status === 'complete' ? 100 : est > 0 ? Math.min(100, Math.round((done / est) * 1000) / 10) : null;
  let eta: number | null = null;
  if (p.startedAt && percent !== null && percent > 0 && percent < 100) {
    const elapsed = (Date.now() - Date.parse(p.startedAt)) / 1000;
    eta = Math.round((elapsed / percent) * (100 - percent));
  }
  return { phase: p.phase ?? 'pending', rowsDone: done, rowsEstimated: est, percent, etaSeconds: eta, chunksDone: p.chunksDone ?? 0, chunksTotal: p.chunksTotal ?? 0, incrementalSnapshot: incrementalView(p.incrementalSnapshot) };
}

function incrementalView(s: IncrementalSnapshotProgress | undefined): (IncrementalSnapshotProgress & { percent: number | null }) | null {
  if (!s) return null;
  const percent = s.status === 'done' ? 100 : s.rowsEstimated > 0 ? Math.min(99.9, Math.round((s.rowsDone / s.rowsEstimated) * 1000) / 10) : null;
  return { ...s, percent };
}

export function toMetrics(r: JobViewSource): JobMetricsView {
  const m = r.metrics;
  return {
    jobId: r.id, changesCaptured: m.changesCaptured ?? 0, rowsApplied: m.rowsApplied ?? 0, bytesCaptured: m.bytesCaptured ?? 0,
    lagMs: m.lagMs ?? null, capturedSequence: m.capturedSequence, appliedSequence: m.appliedSequence, lastCommitAt: m.lastCommitAt,
  };
}


/** The event published on job-events topics. */
export function jobStatusEvent(r: JobViewSource, kind = 'status', message?: string) {
  return { jobId: r.id, kind, status: r.status, progress: toProgress(r), metrics: toMetrics(r), message: message ?? r.status_reason ?? undefined, at: new Date().toISOString() };
}
