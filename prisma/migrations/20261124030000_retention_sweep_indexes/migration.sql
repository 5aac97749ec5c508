-- The retention sweeps read due runs in (time, id) order, a batch at a time. Without an index each
-- batch scanned the whole Run table. Only runs not yet swept are indexed, so both indexes stay as
-- small as what is still to remove (the schema lists them as plain @@index: Prisma cannot say
-- WHERE). The IS NOT NULL conditions are implied by the sweeps' `<= time` filters.

-- CreateIndex: managed files kept until their expiry (sweepManagedFiles).
CREATE INDEX "Run_fileExpiresAt_id_idx" ON "Run"("fileExpiresAt", "id") WHERE "fileDeletedAt" IS NULL AND "fileExpiresAt" IS NOT NULL;

-- CreateIndex: finished runs whose staging objects are still there (sweepStaging).
CREATE INDEX "Run_finishedAt_id_idx" ON "Run"("finishedAt", "id") WHERE "stagingDeletedAt" IS NULL AND "finishedAt" IS NOT NULL;
