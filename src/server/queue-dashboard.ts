/**
 * bull-board at /admin/queues: every BullMQ queue (the shared `tasks` queue
 * and each cluster's `tasks-cluster-<name>`), admin role only. The UI's
 * assets come from node_modules (@bull-board/ui); the one external URL in
 * its page (a web font stylesheet) is removed, and a Content-Security-Policy
 * keeps the page on this origin.
 *
 * The dashboard is browser-facing, so besides the `Authorization: Bearer`
 * header it accepts `?token=...`: a valid admin token is stored in an
 * HttpOnly, SameSite=Strict cookie scoped to /admin/queues, and a GET is
 * redirected to the same URL without the token (it stays out of history and
 * access logs). No token: 401; reader or operator: 403. In open mode (no
 * token defined, loopback only) every caller is admin, as everywhere else.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { AuthError, type Authenticator } from '../auth/authenticator.ts';
import { Role } from '../auth/roles.ts';
import { ErrorCode } from '../errors.ts';

export const QUEUE_DASHBOARD_PATH = '/admin/queues';
export const QUEUE_DASHBOARD_COOKIE = 'tributary_admin_token';

export interface QueueDashboardOptions {
  auth: Authenticator;
  /** Names of every queue to show; asked at most every `refreshMs` (default 5000), on requests. */
  queueNames: () => Promise<string[]>;
  /** The queue object for a name (shared producer connection). */
  queue: (name: string) => Queue;
  refreshMs?: number;
  /** "job name: task name" by task id, read with the queue list: the dashboard shows it beside each task's kind. */
  taskLabels?: () => Promise<Map<string, string>>;
}

/** bull-board's name column: the task kind, then whose task it is (the BullMQ ids are UUIDs). */
export function taskName(job: { name?: string; data?: { taskId?: unknown; jobId?: unknown; sinkId?: unknown } }, labels: Map<string, string>): string {
  const kind = job.name ?? '';
  const taskId = typeof job.data?.taskId === 'string' ? job.data.taskId : undefined;
  const label = (taskId && labels.get(taskId))
    ?? (typeof job.data?.sinkId === 'string' ? `sink ${job.data.sinkId}` : undefined)
    ?? (typeof job.data?.jobId === 'string' ? `job ${job.data.jobId}` : undefined);
  return label ? `${kind} · ${label}` : kind;
}

const CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
  "font-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'self'", "form-action 'self'",
].join('; ');

/** Drops any <link> or <script> that points off this origin (bull-board's page links a Google Fonts stylesheet). */
export function stripExternalAssets(html: string): string {
  return html
    .replace(/<link\b[^>]*\bhref\s*=\s*["'](?:https?:)?\/\/[^"']*["'][^>]*>/gi, '')
    .replace(/<script\b[^>]*\bsrc\s*=\s*["'](?:https?:)?\/\/[^"']*["'][^>]*>\s*<\/script>/gi, '');
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of header?.split(';') ?? []) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      try { return decodeURIComponent(part.slice(i + 1).trim()); } catch { return undefined; }
    }
  }
  return undefined;
}

function deny(res: Response, status: 401 | 403, message: string): void {
  if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="tributary"');
  res.status(status).json({ errors: [{ message, extensions: { code: status === 401 ? ErrorCode.Unauthenticated : ErrorCode.Forbidden } }] });
}

export function queueDashboardRouter(opts: QueueDashboardOptions): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(QUEUE_DASHBOARD_PATH);
  const board = createBullBoard({
    queues: [],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Tributary queues' } },
  });
  const refreshMs = opts.refreshMs ?? 5000;
  let shown = '';
  let refreshedAt = 0;
  let labels = new Map<string, string>();
  let refreshing: Promise<void> | undefined;
  const refresh = async (): Promise<void> => {
    if (Date.now() - refreshedAt < refreshMs) return;
    refreshing ??= (async () => {
      try {
        const names = [...new Set(await opts.queueNames())].sort();
        const key = names.join('\n');
        if (opts.taskLabels) labels = await opts.taskLabels().catch(() => labels);
        if (key !== shown) {
          board.replaceQueues(names.map((n) => {
            const adapter = new BullMQAdapter(opts.queue(n));
            adapter.setFormatter('name', (job: Parameters<typeof taskName>[0]) => taskName(job, labels));
            return adapter;
          }));
          shown = key;
        }
        refreshedAt = Date.now();
      } finally {
        refreshing = undefined;
      }
    })();
    await refreshing;
  };

  const router = express.Router();
  router.use(QUEUE_DASHBOARD_PATH, async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const fromQuery = typeof req.query.token === 'string' && req.query.token ? req.query.token : undefined;
    const fromCookie = cookieValue(req.headers.cookie, QUEUE_DASHBOARD_COOKIE);
    const presented = header ?? fromQuery ?? fromCookie;
    try {
      const principal = await opts.auth.authenticate(presented);
      if (principal.role !== Role.Admin) { deny(res, 403, 'the queue dashboard requires the admin role'); return; }
    } catch (err) {
      if (err instanceof AuthError) { deny(res, 401, `the queue dashboard requires an admin token (Authorization: Bearer, or ?token=): ${err.message}`); return; }
      next(err);
      return;
    }
    if (fromQuery && !header) {
      const secure = req.protocol === 'https' || req.headers['x-forwarded-proto'] === 'https';
      res.setHeader('Set-Cookie', `${QUEUE_DASHBOARD_COOKIE}=${encodeURIComponent(fromQuery)}; Path=${QUEUE_DASHBOARD_PATH}; HttpOnly; SameSite=Strict; Max-Age=43200${secure ? '; Secure' : ''}`);
      if (req.method === 'GET') {
        const url = new URL(req.originalUrl, 'http://localhost');
        url.searchParams.delete('token');
        res.setHeader('Cache-Control', 'no-store');
        res.redirect(303, url.pathname + url.search);
        return;
      }
    }
    try { await refresh(); } catch (err) { next(err); return; }
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // bull-board renders its page with res.render(view, params); remove off-origin assets from it.
    const render = res.render.bind(res) as (view: string, params: object, cb: (err: Error | null, html?: string) => void) => void;
    (res as unknown as { render: (view: string, params?: object) => void }).render = (view, params = {}) => {
      render(view, params, (err, html) => {
        if (err) { next(err); return; }
        res.type('html').send(stripExternalAssets(html ?? ''));
      });
    };
    next();
  }, serverAdapter.getRouter() as Router);
  return router;
}
