-- AlterTable: the destination a run delivers to, pinned when delivery first begins (every
-- delivery attempt of the run goes there, whatever its task says since). Null until then, and
-- for runs delivered before this column: those deliver to their task's destination.
ALTER TABLE "Run" ADD COLUMN "destinationId" UUID;
