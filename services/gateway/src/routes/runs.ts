import type { FastifyBaseLogger } from "fastify";
import { z } from "zod";
import { decryptStream, DecryptionError } from "@transporter/crypto";
import { openManagedFile } from "@transporter/storage";
import type { GatewayApp } from "../app.js";
import { writeAudit } from "../audit.js";
import { afterRunCursor, encodeRunCursor, instantField, pageQuery, pageSchema, runsNewestFirst, toPage } from "../pagination.js";
import { badRequest, notFound, Problem } from "../problem.js";
import { localDaysOf, MAX_REQUESTED_WINDOW_DAYS, requestRun } from "../run-requests.js";
import { runView, toRunView } from "./run-views.js";
import { idParams } from "./views.js";

const RUN_STATUSES = ["PENDING", "FETCHING", "TRANSFORMING", "ENCRYPTING", "DELIVERING", "SUCCEEDED", "FAILED", "SKIPPED"] as const;

/** History: every run with its window, stages, counts and outcome; retries; managed file downloads. */
export default async function runRoutes(app: GatewayApp) {
  const now = () => app.deps.now?.() ?? new Date();

  app.get(
    "/v1/runs",
    {
      schema: {
        tags: ["runs"],
        querystring: pageQuery.extend({
          taskId: z.string().uuid().optional(),
          status: z.enum(RUN_STATUSES).optional(),
          from: instantField.optional(),
          to: instantField.optional(),
        }),
        response: { 200: pageSchema(runView) },
      },
    },
    async (req) => {
      const { cursor, limit, taskId, status, from, to } = req.query;
      if (from && to && new Date(from) > new Date(to)) throw badRequest("from must not be after to", [{ path: "querystring.to", message: "before from" }]);
      const rows = await req.db.run.findMany({
        where: {
          ...afterRunCursor(cursor),
          ...(taskId ? { taskId } : {}),
          ...(status ? { status } : {}),
          ...(from || to ? { windowStart: { ...(from ? { gte: new Date(from) } : {}), ...(to ? { lt: new Date(to) } : {}) } } : {}),
        },
        include: { task: true },
        orderBy: runsNewestFirst,
        take: limit + 1,
      });
      return toPage(rows, limit, toRunView, encodeRunCursor);
    },
  );

  async function findRun(db: typeof app.deps.prisma, id: string) {
    const run = await db.run.findUnique({ where: { id }, include: { task: true } });
    if (!run) throw notFound("run");
    return run;
  }

  app.get("/v1/runs/:id", { schema: { tags: ["runs"], params: idParams, response: { 200: runView } } }, async (req) => toRunView(await findRun(req.db, req.params.id)));

  app.post("/v1/runs/:id/retry", { schema: { tags: ["runs"], params: idParams, response: { 202: runView } } }, async (req, reply) => {
    const original = await findRun(req.db, req.params.id);
    if (original.task.deletedAt) throw new Problem(409, "Conflict", "the task of this run was deleted; it cannot run again");
    if (original.status !== "FAILED" && original.status !== "SKIPPED") {
      throw new Problem(409, "Conflict", `only failed or skipped runs can be retried; this one is ${original.status}`);
    }
    // The scheduler records a long outage beyond its catch-up limit as one SKIPPED entry for
    // the whole gap; that is history, not a window to fetch in one go. Counted in the account's
    // local days, as a window asked for is (without a zone no run can go: requestRun says so).
    const { timezone } = await req.db.tenant.findFirstOrThrow({ select: { timezone: true } });
    const days = localDaysOf({ start: original.windowStart, end: original.windowEnd }, timezone ?? "UTC");
    if (days > MAX_REQUESTED_WINDOW_DAYS) {
      throw new Problem(
        409,
        "Conflict",
        `this run covers ${Math.round(days)} days (${original.windowStart.toISOString()} to ${original.windowEnd.toISOString()}) and a run may cover at most ${MAX_REQUESTED_WINDOW_DAYS}; ask for the windows you need with POST /v1/tasks/${original.taskId}/runs`,
      );
    }
    const run = await requestRun(req.db, app.deps.queues, original.task, { start: original.windowStart, end: original.windowEnd }, "retry", now(), {
      retryOfId: original.id,
      log: req.log,
      audit: (tx, retry) => writeAudit(tx, req, { action: "run.retry", targetType: "run", targetId: retry.id, after: { retryOf: original.id } }),
    });
    return reply.status(202).send(toRunView({ ...run, task: original.task }));
  });

  async function managedFile(req: { db: typeof app.deps.prisma; id: string; log: FastifyBaseLogger }, id: string) {
    const run = await findRun(req.db, id);
    if (!run.destinationPath || run.status !== "SUCCEEDED") throw new Problem(404, "Not found", "this run has no delivered file");
    // The run's own record says where it went: the deliverer sets an expiry on managed deliveries
    // only. The task's current destination does not count: a run delivered to the tenant's own
    // S3 or SFTP records a path the tenant chose, which must never be read from managed storage.
    if (!run.fileExpiresAt) throw new Problem(404, "Not found", "this run delivered to your own storage; only managed files can be downloaded here");
    const expired = (at: { fileExpiresAt: Date | null; fileDeletedAt: Date | null }) => at.fileDeletedAt !== null || (at.fileExpiresAt !== null && at.fileExpiresAt <= now());
    const gone = (expiresAt: Date) => new Problem(410, "Gone", `the file expired on ${expiresAt.toISOString()} and was removed by retention`, { expiredAt: expiresAt.toISOString() });
    if (expired(run)) throw gone(run.fileExpiresAt);
    const store = app.deps.managedStore;
    if (!store) throw new Problem(503, "Unavailable", "managed storage is not configured on this gateway");
    const file = await openManagedFile(store, { tenantId: run.tenantId, runId: run.id }, run.destinationPath);
    if (!file) {
      // Retention may have removed it since the run was read (its expiry came meanwhile): gone.
      const current = await req.db.run.findUnique({ where: { id: run.id }, select: { fileExpiresAt: true, fileDeletedAt: true } });
      if (!current) throw notFound("run");
      if (expired(current)) throw gone(current.fileExpiresAt ?? run.fileExpiresAt);
      // Missing before its expiry: the platform lost a file it should still hold. Not "gone" (with
      // an expiry date still to come), and nothing the tenant can fix: ours to look into.
      req.log.error({ runId: run.id, tenantId: run.tenantId, path: run.destinationPath, fileExpiresAt: run.fileExpiresAt.toISOString() }, "managed file missing from managed storage before its expiry");
      throw new Problem(500, "Internal error", `the file is missing from managed storage before its expiry (${run.fileExpiresAt.toISOString()}); quote request id ${req.id}`);
    }
    return { run, file };
  }

  app.get("/v1/runs/:id/file", { schema: { tags: ["runs"], params: idParams } }, async (req, reply) => {
    const { run, file } = await managedFile(req, req.params.id);
    return reply
      .header("content-type", "application/pgp-encrypted")
      .header("content-length", String(file.bytes))
      .header("content-disposition", `attachment; filename="${run.fileName ?? "report.pgp"}"`)
      .header("x-key-fingerprint", run.keyFingerprint ?? "")
      .send(file.body);
  });

  app.post(
    "/v1/runs/:id/file/decrypt",
    { schema: { tags: ["runs"], params: idParams, body: z.object({ privateKey: z.string().min(1).max(100_000), passphrase: z.string().max(1000) }).strict() } },
    async (req, reply) => {
      const { run, file } = await managedFile(req, req.params.id);
      let plain;
      try {
        // The private key and passphrase live only in this request; nothing is kept or logged.
        plain = await decryptStream(file.body, req.body.privateKey, req.body.passphrase);
      } catch (error) {
        file.body.destroy();
        if (error instanceof DecryptionError) throw new Problem(400, "Cannot decrypt", error.message);
        throw error;
      }
      const name = (run.fileName ?? "report").replace(/\.(pgp|asc)$/, "");
      return reply.header("content-type", "application/octet-stream").header("content-disposition", `attachment; filename="${name}"`).send(plain);
    },
  );
}
