export { createPrisma, idleConnectionClosed, isUniqueViolation, poolOf, type Db } from "./client.js";
export { migrate, MigrationError, DEFAULT_MIGRATIONS_DIR } from "./migrate.js";
export { ensureDatabase } from "./ensure-database.js";
export { raiseAlert, resolveAlert, resolveAlertQuery, type AlertInput } from "./alerts.js";
export { refreshSetupAlerts } from "./setup-alerts.js";
export { tenantScoped, TenantScopeError, type TenantDb } from "./tenant-scope.js";
export * from "./generated/client.js";
export { beginStage, finishStage, skipUnstartedRun, startRefusal, type StartRefusal, completeRun, failStuckRun, hasNotificationSettings, runFailedAlert, runFailureAlertKey, RUN_IN_PROGRESS, stageFinished, stageStatus, type BegunStage, type FailedStuckRun, type PipelineStage, type StageRunFields, type StageTask } from "./run-stages.js";
export { liveSource, liveDestination, activeEncryptionKey, encryptionKeyExists } from "./pipeline-reads.js";
