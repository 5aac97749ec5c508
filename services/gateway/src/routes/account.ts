import { z } from "zod";
import { refreshSetupAlerts, type TenantDb } from "@transporter/db";
import { lockTask, withTenantLocked } from "../row-locks.js";
import { resumeAfterChange } from "@transporter/schedule";
import type { GatewayApp } from "../app.js";
import { writeAudit } from "../audit.js";
import { Problem } from "../problem.js";
import { tasksBrokenByZone } from "../task-rules.js";
import { scheduleOf } from "../task-schemas.js";
import { timezoneField } from "./views.js";

const accountView = z.object({
  id: z.string(), name: z.string(), accountId: z.string(), timezone: z.string().nullable(),
  taskLimit: z.number().int(), taskCount: z.number().int(), disabled: z.boolean(),
});

/** A tenant's own account: its time zone and how many tasks it may have. */
export default async function accountRoutes(app: GatewayApp) {
  async function view(db: TenantDb, tenantId: string) {
    const tenant = await db.tenant.findFirstOrThrow({ where: { id: tenantId } });
    const taskCount = await db.task.count({ where: { deletedAt: null } });
    return { id: tenant.id, name: tenant.name, accountId: tenant.accountId, timezone: tenant.timezone, taskLimit: tenant.taskLimit, taskCount, disabled: tenant.disabled };
  }

  app.get("/v1/account", { schema: { tags: ["account"], response: { 200: accountView } } }, async (req) => view(req.db, req.auth!.tenantId!));

  app.patch(
    "/v1/account",
    { schema: { tags: ["account"], body: z.object({ timezone: timezoneField }).strict(), response: { 200: accountView } } },
    async (req) => {
      const tenantId = req.auth!.tenantId!;
      // The zone and every task's next run change in one transaction: a scheduler tick sees the
      // old zone with the old schedule positions or the new zone with the new ones, never the new
      // zone with a position computed in the old one (that would lose part of a window). The old
      // zone is read under the lock too: two changes at once then apply one after the other.
      await withTenantLocked(req.db, tenantId, async (tx) => {
        const { timezone: previous } = await tx.tenant.findFirstOrThrow({ select: { timezone: true } });
        // The zone it already has: nothing changes, and nothing is audited.
        if (previous === req.body.timezone) return;
        // The same zone spelt in another case. Known names arrive in their proper case (see
        // timezoneField): the runtime's own spelling ("UTC", "Europe/Paris") is taken. A link the
        // runtime spells otherwise keeps the case it was sent in: one sent with capitals is taken
        // as its proper spelling, one sent all in one case changes nothing. Taken, it corrects a
        // name stored in another case before: audited, and every schedule stays where it is.
        if (previous?.toLowerCase() === req.body.timezone.toLowerCase()) {
          const { timezone } = req.body;
          const canonical = new Intl.DateTimeFormat("en-US", { timeZone: timezone }).resolvedOptions().timeZone === timezone;
          if (!canonical && (timezone === timezone.toLowerCase() || timezone === timezone.toUpperCase())) return;
          await tx.tenant.updateMany({ data: { timezone: req.body.timezone } });
          await writeAudit(tx, req, { action: "account.update", targetType: "tenant", targetId: tenantId, before: { timezone: previous }, after: { timezone: req.body.timezone } });
          return;
        }
        const now = app.deps.now?.() ?? new Date();
        // The look-back rule depends on the zone (a fall-back lengthens a window): a task it held
        // for would fail its run every year when the clocks go back. Checked under the lock, so a
        // task enabled or changed meanwhile is seen.
        const broken = await tasksBrokenByZone(tx, previous, req.body.timezone, now);
        if (broken.length > 0) {
          throw new Problem(
            409,
            "Conflict",
            `in ${req.body.timezone}, ${broken.length} enabled task(s) would reach back further than their report's source serves: ` +
              broken.map((task) => `task ${task.id} ("${task.description}"): ${task.problem}`).join("; ") +
              `; change or disable ${broken.length === 1 ? "it" : "them"} first, or keep the zone`,
            { taskIds: broken.map((task) => task.id) },
          );
        }
        await tx.tenant.updateMany({ data: { timezone: req.body.timezone } });
        // Audited in the same transaction: the events are in the order the changes were made.
        await writeAudit(tx, req, { action: "account.update", targetType: "tenant", targetId: tenantId, before: { timezone: previous }, after: { timezone: req.body.timezone } });
        // Schedules are in the account's zone: every task's next run moves with it, continuing
        // from where its recorded windows end so the first window in the new zone touches them.
        const tasks = await tx.task.findMany({ where: { enabled: true, deletedAt: null }, select: { id: true }, orderBy: { id: "asc" } });
        for (const { id } of tasks) {
          const task = await lockTask(tx, id, tenantId);
          if (!task?.enabled || task.deletedAt) continue;
          const schedule = scheduleOf(task);
          const next = resumeAfterChange({ schedule, timeZone: previous, nextRunAt: task.nextRunAt, coveredUntil: task.coveredUntil }, { schedule, timeZone: req.body.timezone }, now);
          await tx.task.update({ where: { id }, data: next });
        }
      });
      await refreshSetupAlerts(app.deps.prisma, tenantId);
      return view(req.db, tenantId);
    },
  );
}
