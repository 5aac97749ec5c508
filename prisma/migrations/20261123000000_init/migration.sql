-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "ApiKeyRole" AS ENUM ('operator', 'admin', 'viewer');

-- CreateEnum
CREATE TYPE "KeyOrigin" AS ENUM ('generated', 'imported');

-- CreateEnum
CREATE TYPE "SourceKind" AS ENUM ('liveperson');

-- CreateEnum
CREATE TYPE "DestinationKind" AS ENUM ('managed', 'sftp', 's3', 'gcs');

-- CreateEnum
CREATE TYPE "Frequency" AS ENUM ('daily', 'weekly', 'interval');

-- CreateEnum
CREATE TYPE "RunTrigger" AS ENUM ('schedule', 'manual', 'retry');

-- CreateEnum
CREATE TYPE "RunStatus" AS ENUM ('PENDING', 'FETCHING', 'TRANSFORMING', 'ENCRYPTING', 'DELIVERING', 'SUCCEEDED', 'FAILED', 'SKIPPED');

-- CreateEnum
CREATE TYPE "AlertSeverity" AS ENUM ('info', 'warning', 'error');

-- CreateTable
CREATE TABLE "Tenant" (
    "id" UUID NOT NULL,
    "accountId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "timezone" TEXT,
    "taskLimit" INTEGER NOT NULL DEFAULT 50,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Tenant_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ApiKey" (
    "id" UUID NOT NULL,
    "tenantId" UUID,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "secretHash" TEXT NOT NULL,
    "role" "ApiKeyRole" NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" TIMESTAMPTZ(3),
    "revokedAt" TIMESTAMPTZ(3),

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "EncryptionKey" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "name" TEXT,
    "publicKey" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "algorithm" TEXT NOT NULL,
    "bits" INTEGER,
    "origin" "KeyOrigin" NOT NULL,
    "active" BOOLEAN NOT NULL DEFAULT false,
    "expiresAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deletedAt" TIMESTAMPTZ(3),

    CONSTRAINT "EncryptionKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Source" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "kind" "SourceKind" NOT NULL,
    "accountId" TEXT NOT NULL,
    "sealedCredentials" TEXT NOT NULL,
    "permissions" JSONB,
    "verifiedAt" TIMESTAMPTZ(3),
    "lastError" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Source_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Destination" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "kind" "DestinationKind" NOT NULL,
    "config" JSONB NOT NULL,
    "sealedCredentials" TEXT,
    "verifiedAt" TIMESTAMPTZ(3),
    "lastError" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Destination_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Task" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "description" TEXT NOT NULL,
    "reportId" TEXT NOT NULL,
    "reportVersion" TEXT NOT NULL DEFAULT 'latest',
    "format" TEXT NOT NULL,
    "frequency" "Frequency" NOT NULL,
    "time" TEXT,
    "dayOfWeek" INTEGER,
    "everyMinutes" INTEGER,
    "delayMinutes" INTEGER NOT NULL DEFAULT 0,
    "params" JSONB NOT NULL DEFAULT '{}',
    "options" JSONB NOT NULL DEFAULT '{}',
    "notifications" JSONB NOT NULL DEFAULT '{}',
    "sealedWebhookSecret" TEXT,
    "sourceId" UUID,
    "destinationId" UUID NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT false,
    "nextRunAt" TIMESTAMPTZ(3),
    "deletedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Task_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Run" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "taskId" UUID NOT NULL,
    "windowStart" TIMESTAMPTZ(3) NOT NULL,
    "windowEnd" TIMESTAMPTZ(3) NOT NULL,
    "scheduledFor" TIMESTAMPTZ(3) NOT NULL,
    "trigger" "RunTrigger" NOT NULL,
    "status" "RunStatus" NOT NULL DEFAULT 'PENDING',
    "retryOfId" UUID,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "reportVersion" INTEGER,
    "enqueuedAt" TIMESTAMPTZ(3),
    "fetchStartedAt" TIMESTAMPTZ(3),
    "fetchFinishedAt" TIMESTAMPTZ(3),
    "transformStartedAt" TIMESTAMPTZ(3),
    "transformFinishedAt" TIMESTAMPTZ(3),
    "encryptStartedAt" TIMESTAMPTZ(3),
    "encryptFinishedAt" TIMESTAMPTZ(3),
    "deliverStartedAt" TIMESTAMPTZ(3),
    "deliveredAt" TIMESTAMPTZ(3),
    "finishedAt" TIMESTAMPTZ(3),
    "records" INTEGER,
    "rows" INTEGER,
    "skippedRecords" INTEGER,
    "sourceCalls" INTEGER,
    "bytes" BIGINT,
    "fileName" TEXT,
    "destinationPath" TEXT,
    "checksum" TEXT,
    "keyFingerprint" TEXT,
    "staging" JSONB NOT NULL DEFAULT '{}',
    "notes" JSONB NOT NULL DEFAULT '[]',
    "errorCode" TEXT,
    "error" TEXT,
    "fileExpiresAt" TIMESTAMPTZ(3),
    "fileDeletedAt" TIMESTAMPTZ(3),
    "stagingDeletedAt" TIMESTAMPTZ(3),
    "traceparent" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Run_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Alert" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "severity" "AlertSeverity" NOT NULL,
    "title" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "dedupeKey" TEXT NOT NULL,
    "taskId" UUID,
    "runId" UUID,
    "destinationId" UUID,
    "occurrences" INTEGER NOT NULL DEFAULT 1,
    "firstSeenAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSeenAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "acknowledgedAt" TIMESTAMPTZ(3),
    "acknowledgedBy" TEXT,
    "resolvedAt" TIMESTAMPTZ(3),

    CONSTRAINT "Alert_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AuditEvent" (
    "id" UUID NOT NULL,
    "tenantId" UUID,
    "actorKeyId" UUID,
    "actorRole" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "targetType" TEXT NOT NULL,
    "targetId" TEXT,
    "before" JSONB,
    "after" JSONB,
    "requestId" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AuditEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Tenant_accountId_key" ON "Tenant"("accountId");

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_prefix_key" ON "ApiKey"("prefix");

-- CreateIndex
CREATE INDEX "ApiKey_tenantId_idx" ON "ApiKey"("tenantId");

-- CreateIndex
CREATE UNIQUE INDEX "EncryptionKey_tenantId_fingerprint_key" ON "EncryptionKey"("tenantId", "fingerprint");

-- CreateIndex
CREATE INDEX "Source_tenantId_idx" ON "Source"("tenantId");

-- CreateIndex
CREATE INDEX "Destination_tenantId_idx" ON "Destination"("tenantId");

-- CreateIndex
CREATE INDEX "Task_nextRunAt_idx" ON "Task"("nextRunAt");

-- CreateIndex
CREATE INDEX "Task_tenantId_idx" ON "Task"("tenantId");

-- CreateIndex
CREATE INDEX "Run_tenantId_createdAt_id_idx" ON "Run"("tenantId", "createdAt" DESC, "id");

-- CreateIndex
CREATE INDEX "Run_taskId_windowStart_idx" ON "Run"("taskId", "windowStart");

-- CreateIndex
CREATE INDEX "Run_status_idx" ON "Run"("status");

-- CreateIndex
CREATE INDEX "Alert_tenantId_lastSeenAt_idx" ON "Alert"("tenantId", "lastSeenAt");

-- CreateIndex
CREATE INDEX "AuditEvent_tenantId_createdAt_idx" ON "AuditEvent"("tenantId", "createdAt");

-- AddForeignKey
ALTER TABLE "ApiKey" ADD CONSTRAINT "ApiKey_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EncryptionKey" ADD CONSTRAINT "EncryptionKey_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Source" ADD CONSTRAINT "Source_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Destination" ADD CONSTRAINT "Destination_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Task" ADD CONSTRAINT "Task_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Task" ADD CONSTRAINT "Task_sourceId_fkey" FOREIGN KEY ("sourceId") REFERENCES "Source"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Task" ADD CONSTRAINT "Task_destinationId_fkey" FOREIGN KEY ("destinationId") REFERENCES "Destination"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Run" ADD CONSTRAINT "Run_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Run" ADD CONSTRAINT "Run_taskId_fkey" FOREIGN KEY ("taskId") REFERENCES "Task"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Alert" ADD CONSTRAINT "Alert_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "AuditEvent" ADD CONSTRAINT "AuditEvent_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Constraints Prisma's schema language cannot express (kept out of schema.prisma, so later
-- `migrate diff` runs neither see nor drop them).

-- A scheduled window is run once per task; manual runs and retries may repeat a window.
CREATE UNIQUE INDEX "Run_schedule_window_key" ON "Run"("taskId", "windowStart") WHERE "trigger" = 'schedule';

-- Exactly one active encryption key per tenant.
CREATE UNIQUE INDEX "EncryptionKey_one_active_per_tenant" ON "EncryptionKey"("tenantId") WHERE "active" AND "deletedAt" IS NULL;

-- One open alert per dedupe key (repeats bump occurrences instead).
CREATE UNIQUE INDEX "Alert_open_dedupe_key" ON "Alert"("tenantId", "dedupeKey") WHERE "resolvedAt" IS NULL;

-- The scheduler's due-task scan touches only enabled, live tasks.
CREATE INDEX "Task_due_idx" ON "Task"("nextRunAt") WHERE "enabled" AND "deletedAt" IS NULL;
