-- AlterTable: the notification outbox. A finished run of a task with notification settings owes
-- a notification until the notify job has handled it; the reconciler finds the owed ones whose
-- job never reached the queue.
ALTER TABLE "Run" ADD COLUMN     "notificationDueAt" TIMESTAMPTZ(3);

-- Only owed notifications are indexed: the reconciler's scan stays as small as what is owed.
CREATE INDEX "Run_notificationDueAt_idx" ON "Run"("notificationDueAt", id) WHERE "notificationDueAt" IS NOT NULL;
