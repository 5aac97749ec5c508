-- Alerts are listed newest first by when they were first seen (a value that never changes, so a
-- repeating alert cannot jump over a client's cursor), no longer by their latest activity.
DROP INDEX "Alert_tenantId_lastSeenAt_idx";

-- CreateIndex
CREATE INDEX "Alert_tenantId_firstSeenAt_idx" ON "Alert"("tenantId", "firstSeenAt");
