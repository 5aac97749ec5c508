-- AlterTable: what a run actually used, so its history stays true after the task changes (and the
-- transform renders the report the run fetched, not one the task was switched to meanwhile).
ALTER TABLE "Run" ADD COLUMN     "format" TEXT,
ADD COLUMN     "reportId" TEXT;
