-- AlterTable
ALTER TABLE "Source" ADD COLUMN     "deletedAt" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "Destination" ADD COLUMN     "deletedAt" TIMESTAMPTZ(3);

