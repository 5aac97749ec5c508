-- The report-path look-up folds case under the "C" collation (ASCII only, whatever the
-- database's locale: a Turkish one lowers "I" to "ı"), so its index must fold the same way.

-- DropIndex
DROP INDEX IF EXISTS "Run_taskId_reportPath_idx";

-- CreateIndex
CREATE INDEX "Run_taskId_reportPath_idx" ON "Run"("taskId", lower(substr("staging" ->> 'reportKey', 95) COLLATE "C")) WHERE "staging" ? 'reportKey';
