-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "coveredUntil" TIMESTAMPTZ(3);

-- A scheduled window is recorded once per task: the key includes windowEnd, so a different
-- window that shares a start with an earlier one (after a schedule change) is never dropped.
DROP INDEX "Run_schedule_window_key";
CREATE UNIQUE INDEX "Run_schedule_window_key" ON "Run"("taskId", "windowStart", "windowEnd") WHERE "trigger" = 'schedule';
