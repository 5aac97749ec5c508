-- The transform stage fixes each run's report path (Run.staging->>'reportKey',
-- "tenants/<uuid>/runs/<uuid>/report/<path>": the path starts at character 95) so that no two
-- windows of a task share a file name (libs/storage claimReportPath). It looks the path up among
-- the task's runs, without case; without this index that read every run of the task (220 ms for
-- 200,000 runs). Only runs that have a report path are indexed. The schema cannot say an
-- expression index: it names it in a comment on Run.

-- CreateIndex
CREATE INDEX "Run_taskId_reportPath_idx" ON "Run"("taskId", lower(substr("staging" ->> 'reportKey', 95))) WHERE "staging" ? 'reportKey';
