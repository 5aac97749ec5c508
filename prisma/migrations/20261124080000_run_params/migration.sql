-- AlterTable: the report params a run fetched with, pinned by the fetch stage with its report and
-- version (null: not fetched yet). A task edited while its run is under way (another version, whose
-- params the fetched one does not take) no longer fails that run's transform, and the run renders
-- with the filters its data was fetched with.
ALTER TABLE "Run" ADD COLUMN "params" JSONB;
