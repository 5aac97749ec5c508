import { randomUUID } from "node:crypto";
import { z } from "zod";
import { sealJson } from "@transporter/crypto";
import { notificationAlertKey, resolveAlert, runFailureAlertKey } from "@transporter/db";
import type { Prisma, Task, TenantDb } from "@transporter/db";
import { delayMilliseconds, latestCompleteWindow, resumeAfterChange, resumeAfterEnable, sameSchedule } from "@transporter/schedule";
import { endpointUrlProblem } from "@transporter/storage";
import type { GatewayApp } from "../app.js";
import { writeAudit } from "../audit.js";
import { afterCursor, instantField, newestFirst, pageQuery, pageSchema, toPage } from "../pagination.js";
import { conflict, notFound, Problem } from "../problem.js";
import { lockTask, withTenantLocked, type Transaction } from "../row-locks.js";
import { localDaysOf, MAX_REQUESTED_WINDOW_DAYS, requestRun } from "../run-requests.js";
import { checkTask, nextRunAtFor, type TaskDraft } from "../task-rules.js";
import { scheduleOf, taskBody, taskPatchBody, taskView, toTaskView, writableFields, type TaskBody } from "../task-schemas.js";
import { runView, toRunView } from "./run-views.js";
import { idParams } from "./views.js";

function draftOf(task: Task): TaskDraft {
  return {
    description: task.description, reportId: task.reportId, reportVersion: task.reportVersion === "latest" ? "latest" : Number(task.reportVersion), format: task.format,
    schedule: scheduleOf(task), sourceId: task.sourceId, destinationId: task.destinationId, params: task.params as Record<string, unknown>, options: task.options as Record<string, unknown>, enabled: task.enabled,
  };
}

/** Whether a write changed the task (its updatedAt aside): what it shows, its progress or its webhook secret. */
function taskChanged({ before, after }: { before: Task; after: Task }): boolean {
  const state = (t: Task) => JSON.stringify({ ...toTaskView(t), updatedAt: null, coveredUntil: t.coveredUntil?.toISOString() ?? null, sealedWebhookSecret: t.sealedWebhookSecret });
  return state(before) !== state(after);
}

function columnsOf(body: Partial<TaskBody>): Partial<Prisma.TaskUncheckedCreateInput> {
  const data: Partial<Prisma.TaskUncheckedCreateInput> = {};
  if (body.description !== undefined) data.description = body.description;
  if (body.reportId !== undefined) data.reportId = body.reportId;
  if (body.reportVersion !== undefined) data.reportVersion = String(body.reportVersion);
  if (body.format !== undefined) data.format = body.format;
  if (body.schedule !== undefined) {
    data.frequency = body.schedule.frequency;
    data.time = body.schedule.time ?? null;
    data.dayOfWeek = body.schedule.dayOfWeek ?? null;
    data.everyMinutes = body.schedule.everyMinutes ?? null;
    data.delayMinutes = body.schedule.delayMinutes ?? 0;
  }
  if (body.sourceId !== undefined) data.sourceId = body.sourceId;
  if (body.destinationId !== undefined) data.destinationId = body.destinationId;
  if (body.params !== undefined) data.params = body.params as Prisma.InputJsonValue;
  if (body.options !== undefined) data.options = body.options as Prisma.InputJsonValue;
  if (body.enabled !== undefined) data.enabled = body.enabled;
  return data;
}

/** Tasks: report + format + schedule + source + destination, and the runs asked of them. */
export default async function taskRoutes(app: GatewayApp) {
  const { keyring, queues } = app.deps;
  const now = () => app.deps.now?.() ?? new Date();

  /** A webhook URL is checked when saved as well as before each send: https, not our own network. */
  function checkWebhookUrl(body: Partial<TaskBody>) {
    const url = body.notifications?.webhookUrl;
    if (!url) return;
    const problem = endpointUrlProblem(new URL(url), { allowInsecure: app.deps.config.ALLOW_INSECURE_ENDPOINTS });
    if (problem) throw new Problem(400, "Invalid request", `notifications.webhookUrl: ${problem}`, { errors: [{ path: "body.notifications.webhookUrl", message: problem }] });
  }

  function notificationColumns(tenantId: string, taskId: string, body: Partial<TaskBody>) {
    if (!body.notifications) return {};
    const { webhookSecret, webhookSecretSet: _readOnly, ...rest } = body.notifications;
    return {
      notifications: rest as Prisma.InputJsonValue,
      ...(webhookSecret ? { sealedWebhookSecret: sealJson(webhookSecret, keyring, `tenant:${tenantId}/task:${taskId}/webhook`) } : {}),
    };
  }

  app.post("/v1/tasks", { schema: { tags: ["tasks"], body: taskBody, response: { 201: taskView } } }, async (req, reply) => {
    const tenantId = req.auth!.tenantId!;
    const body = writableFields(req.body);
    const draft: TaskDraft = { ...body, schedule: body.schedule };
    checkWebhookUrl(body);
    const id = randomUUID();
    // Checked and written under the tenant's row lock: the task limit holds under concurrency, and
    // a source, destination or key deleted meanwhile (deletes take the same lock) is seen.
    const task = await withTenantLocked(req.db, tenantId, async (tx) => {
      const { timezone } = await checkTask(tx, draft, now());
      const tenant = await tx.tenant.findFirstOrThrow({ select: { taskLimit: true } });
      const count = await tx.task.count({ where: { deletedAt: null } });
      if (count >= tenant.taskLimit) throw conflict(`your account may have ${tenant.taskLimit} task(s) and has ${count}; delete one or ask your operator to raise the limit`);
      const created = await tx.task.create({
        data: { id, ...columnsOf(body), ...notificationColumns(tenantId, id, body), nextRunAt: nextRunAtFor(draft, timezone, now()) } as Prisma.TaskUncheckedCreateInput,
      });
      // In the same transaction: no task without its audit event (a retry after a failed audit
      // would otherwise make a second task).
      await writeAudit(tx, req, { action: "task.create", targetType: "task", targetId: created.id, after: toTaskView(created) });
      return created;
    });
    return reply.status(201).send(toTaskView(task));
  });

  app.get(
    "/v1/tasks",
    { schema: { tags: ["tasks"], querystring: pageQuery.extend({ enabled: z.enum(["true", "false"]).optional(), reportId: z.string().max(100).optional(), destinationId: z.string().uuid().optional() }), response: { 200: pageSchema(taskView) } } },
    async (req) => {
      const { cursor, limit, enabled, reportId, destinationId } = req.query;
      const rows = await req.db.task.findMany({
        where: { deletedAt: null, ...afterCursor(cursor), ...(enabled ? { enabled: enabled === "true" } : {}), ...(reportId ? { reportId } : {}), ...(destinationId ? { destinationId } : {}) },
        orderBy: newestFirst,
        take: limit + 1,
      });
      return toPage(rows, limit, toTaskView);
    },
  );

  async function liveTask(db: typeof app.deps.prisma, id: string): Promise<Task> {
    const task = await db.task.findUnique({ where: { id } });
    if (!task || task.deletedAt) throw notFound("task");
    return task;
  }

  app.get("/v1/tasks/:id", { schema: { tags: ["tasks"], params: idParams, response: { 200: taskView } } }, async (req) => toTaskView(await liveTask(req.db, req.params.id)));

  /** A task changed, as it was just before (read under its lock) and as it is after. */
  type TaskChange = { before: Task; after: Task };
  /** Writes a change's audit event in the change's own transaction: both happen, or neither. */
  type AuditChange = (tx: Transaction, change: TaskChange) => Promise<void>;

  /** The task under its lock in `tx`, or 404 when it is gone (deleted by a request that went first). */
  async function lockLiveTask(tx: Transaction, task: Task): Promise<Task> {
    const locked = await lockTask(tx, task.id, task.tenantId);
    if (!locked || locked.deletedAt) throw notFound("task");
    return locked;
  }

  async function updateTask(req: { db: TenantDb }, task: Task, body: Partial<TaskBody>, audit: AuditChange): Promise<TaskChange> {
    // Disabling alone changes nothing that needs checking, and must work whatever went wrong
    // around the task (a source that lost a permission, a report version since retired).
    const onlyDisabling = body.enabled === false && Object.keys(body).every((field) => field === "enabled");
    // Coverage is kept: enabling again never reaches back over the windows already recorded.
    if (onlyDisabling) {
      return req.db.$transaction(async (tx) => {
        const before = await lockLiveTask(tx, task);
        // Already disabled: nothing to write or audit.
        if (!before.enabled) return { before, after: before };
        const change = { before, after: await tx.task.update({ where: { id: task.id }, data: { enabled: false, nextRunAt: null } }) };
        await audit(tx, change);
        return change;
      });
    }
    // Checked and written under the tenant's row lock, like creates (see there), from the task as
    // it is under the lock (a change that went first, e.g. a disable, is seen).
    return withTenantLocked(req.db, task.tenantId, async (tx) => {
      const before = await lockLiveTask(tx, task);
      const merged: TaskDraft = { ...draftOf(before), ...body, schedule: body.schedule ?? scheduleOf(before) } as TaskDraft;
      const enabling = merged.enabled && !before.enabled;
      const { timezone } = await checkTask(tx, merged, now(), {
        enabling,
        // Enabling applies today's rules too: the task may have been saved under older ones.
        scheduleOrReport: enabling || body.schedule !== undefined || body.reportId !== undefined || body.reportVersion !== undefined,
        existing: { id: before.id, draft: draftOf(before) },
      });
      const change = { before, after: await writeTaskChange(tx, before, body, merged, timezone) };
      // A change to what the task already is (enabling an enabled task) is not audited.
      if (taskChanged(change)) await audit(tx, change);
      return change;
    });
  }

  async function writeTaskChange(tx: Transaction, before: Task, body: Partial<TaskBody>, merged: TaskDraft, timezone: string | null): Promise<Task> {
    // Enabling starts from now with no backlog (a disabled period is not covered) with the plain
    // window due next, trimmed to start where the recorded windows end if they end inside it. A
    // schedule change continues from where the recorded windows end, so nothing owed is dropped
    // and the new windows touch the old ones. A disabled task keeps its coverage for both.
    const scheduleChanged = body.schedule !== undefined && !sameSchedule(body.schedule, scheduleOf(before));
    const enabling = merged.enabled && !before.enabled;
    const data = { ...columnsOf(body), ...notificationColumns(before.tenantId, before.id, body) } as Prisma.TaskUncheckedUpdateInput;
    if (!merged.enabled) return tx.task.update({ where: { id: before.id }, data: { ...data, nextRunAt: null } });
    if (enabling || !before.nextRunAt) {
      const next = timezone ? resumeAfterEnable(merged.schedule, timezone, before.coveredUntil, now()) : { nextRunAt: null, coveredUntil: before.coveredUntil };
      return tx.task.update({ where: { id: before.id }, data: { ...data, ...next } });
    }
    if (!scheduleChanged || !timezone) return tx.task.update({ where: { id: before.id }, data });
    // `before` was read under the task's lock, which this transaction holds: its progress is current.
    const next = resumeAfterChange({ schedule: scheduleOf(before), timeZone: timezone, nextRunAt: before.nextRunAt, coveredUntil: before.coveredUntil }, { schedule: merged.schedule, timeZone: timezone }, now());
    return tx.task.update({ where: { id: before.id }, data: { ...data, ...next } });
  }

  app.patch("/v1/tasks/:id", { schema: { tags: ["tasks"], params: idParams, body: taskPatchBody, response: { 200: taskView } } }, async (req) => {
    const task = await liveTask(req.db, req.params.id);
    const body = writableFields(req.body);
    checkWebhookUrl(body);
    // Audited from the task as it was under the lock: with changes at once, each event's "before"
    // is the previous one's "after".
    const { after } = await updateTask(req, task, body, (tx, { before, after }) =>
      writeAudit(tx, req, { action: "task.update", targetType: "task", targetId: after.id, before: toTaskView(before), after: toTaskView(after) }),
    );
    return toTaskView(after);
  });

  async function deleteTask(db: TenantDb, task: Task, audit: AuditChange): Promise<TaskChange> {
    // Under the task's lock: of deletes at once, one deletes (and is audited); the others get 404.
    return db.$transaction(async (tx) => {
      const before = await lockLiveTask(tx, task);
      // Soft delete: history keeps its runs (shown as from a deleted task), managed files stay until retention.
      const deleted = { before, after: await tx.task.update({ where: { id: task.id }, data: { deletedAt: new Date(), enabled: false, nextRunAt: null } }) };
      await audit(tx, deleted);
      // Its failure alert can never be resolved by a later success: it goes with the task, under
      // the same lock. A run under way still finishes, and one that fails raises no alert for a
      // deleted task (it reads the task under a share lock, which waits for this one): a failure
      // that went first is resolved here, one that comes after sees the task deleted.
      await resolveAlert(tx, task.tenantId, runFailureAlertKey(task.id));
      // Its notification alerts likewise: its last runs still notify, but raise none for a deleted task.
      for (const channel of ["webhook", "email"] as const) await resolveAlert(tx, task.tenantId, notificationAlertKey(channel, task.id));
      return deleted;
    });
  }

  app.delete("/v1/tasks/:id", { schema: { tags: ["tasks"], params: idParams, response: { 204: z.null() } } }, async (req, reply) => {
    await deleteTask(req.db, await liveTask(req.db, req.params.id), (tx, { before }) =>
      writeAudit(tx, req, { action: "task.delete", targetType: "task", targetId: before.id, before: toTaskView(before) }),
    );
    return reply.status(204).send(null);
  });

  app.post(
    "/v1/tasks/bulk",
    {
      schema: {
        tags: ["tasks"],
        body: z.object({ action: z.enum(["enable", "disable", "delete"]), ids: z.array(z.string().uuid()).min(1).max(500) }).strict(),
        response: { 200: z.object({ results: z.array(z.object({ id: z.string(), ok: z.boolean(), status: z.number(), error: z.string().optional() })) }) },
      },
    },
    async (req) => {
      const results = [];
      // One result per task, however its id was spelled (ids are case-insensitive): the first spelling sent.
      const ids = new Map<string, string>();
      for (const id of req.body.ids) if (!ids.has(id.toLowerCase())) ids.set(id.toLowerCase(), id);
      for (const id of ids.values()) {
        try {
          const task = await liveTask(req.db, id);
          const { action } = req.body;
          // Under the task's id as stored, however the caller spelled it: the audit is searched by it.
          const audit: AuditChange = (tx, { before, after }) =>
            writeAudit(tx, req, { action: `task.${action}`, targetType: "task", targetId: before.id, before: toTaskView(before), after: action === "delete" ? undefined : toTaskView(after) });
          if (action === "delete") await deleteTask(req.db, task, audit);
          else await updateTask(req, task, { enabled: action === "enable" }, audit);
          results.push({ id, ok: true, status: 200 });
        } catch (error) {
          if (error instanceof Problem) results.push({ id, ok: false, status: error.status, error: error.detail ?? error.title });
          else {
            // Ours, not the caller's (a database blip): each id is its own transaction, so this one
            // fails alone, the rest still go, and the caller learns which ids were done.
            req.log.error({ err: { message: (error as Error).message, stack: (error as Error).stack }, taskId: id, action: req.body.action }, "bulk task action failed");
            results.push({ id, ok: false, status: 500, error: `something went wrong on our side; quote request id ${req.id}` });
          }
        }
      }
      return { results };
    },
  );

  app.post(
    "/v1/tasks/:id/runs",
    {
      schema: {
        tags: ["tasks", "runs"],
        params: idParams,
        body: z.object({ windowStart: instantField, windowEnd: instantField }).partial().strict().nullish(),
        response: { 202: runView },
      },
    },
    async (req, reply) => {
      const task = await liveTask(req.db, req.params.id);
      const tenant = await req.db.tenant.findFirstOrThrow();
      // The window is in the account's zone; requestRun checks the rest a run needs.
      if (!tenant.timezone) throw new Problem(409, "Conflict", "choose your account's time zone (PATCH /v1/account) first");
      const body = req.body ?? {};
      let window: { start: Date; end: Date };
      if (body.windowStart || body.windowEnd) {
        if (!body.windowStart || !body.windowEnd) throw new Problem(400, "Invalid request", "send both windowStart and windowEnd, or neither for the latest complete window", { errors: [{ path: body.windowStart ? "body.windowEnd" : "body.windowStart", message: "required with the other" }] });
        window = { start: new Date(body.windowStart), end: new Date(body.windowEnd) };
        if (window.end <= window.start) throw new Problem(400, "Invalid request", "windowEnd must be after windowStart", { errors: [{ path: "body.windowEnd", message: "must be after windowStart" }] });
        if (window.end > now()) throw new Problem(400, "Invalid request", "the window has not ended yet; its data would be incomplete", { errors: [{ path: "body.windowEnd", message: "must not be in the future" }] });
        // The task's delay is how long the platform needs to complete a window's data.
        const complete = new Date(window.end.getTime() + delayMilliseconds(scheduleOf(task)));
        if (complete > now()) throw new Problem(409, "Conflict", `the window's data is complete only at ${complete.toISOString()}: the task waits ${task.delayMinutes ?? 0} minutes after a window ends`, { completeAt: complete.toISOString() });
        if (localDaysOf(window, tenant.timezone) > MAX_REQUESTED_WINDOW_DAYS) {
          throw new Problem(400, "Invalid request", `a window may span at most ${MAX_REQUESTED_WINDOW_DAYS} days (local days in ${tenant.timezone})`, { errors: [{ path: "body.windowEnd", message: `window longer than ${MAX_REQUESTED_WINDOW_DAYS} days` }] });
        }
      } else {
        // Complete means its delay has passed too, as for the scheduled run of the same window.
        const schedule = scheduleOf(task);
        const latest = latestCompleteWindow(schedule, tenant.timezone, new Date(now().getTime() - delayMilliseconds(schedule)));
        window = { start: latest.start, end: latest.end };
      }
      const run = await requestRun(req.db, queues, task, window, "manual", now(), {
        log: req.log,
        audit: (tx, requested) =>
          writeAudit(tx, req, { action: "run.request", targetType: "run", targetId: requested.id, after: { taskId: task.id, windowStart: window.start.toISOString(), windowEnd: window.end.toISOString() } }),
      });
      return reply.status(202).send(toRunView({ ...run, task }));
    },
  );
}
