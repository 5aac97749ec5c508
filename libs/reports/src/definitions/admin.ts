import { z } from "zod";
import {
  element,
  object,
  optionalArray,
  optionalBoolean,
  optionalId,
  optionalInstant,
  optionalNumber,
  optionalObject,
  optionalText,
  requiredId,
  type Json,
} from "../record-access.js";
import type { ReportDefinition, Row } from "../types.js";
import { column, idList, rowsVersion, TABLE_FORMATS } from "./define.js";
import { includeDeleted } from "./params.js";

/**
 * Account configuration (users v4, skills v2, agent groups v2): one NDJSON line per entity.
 * Snapshots: the run's window is ignored.
 */

const adminParams = z.strictObject({ includeDeleted });
type AdminParams = z.infer<typeof adminParams>;

/** Deleted entities are left out unless the task asks for them. */
function keep(record: Json, params: AdminParams): boolean {
  return params.includeDeleted || optionalBoolean(record, "deleted") !== true;
}

function idsOf(record: Json, key: string): string | null {
  return idList(optionalArray(record, key), key);
}

function managerOf(record: Json): string | null {
  const list = optionalArray(record, "managerOf");
  const ids: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const id = optionalId(element(list, i, "managerOf"), "agentGroupId", `managerOf[${i}]`);
    if (id !== null) ids.push(id);
  }
  return ids.length > 0 ? ids.join(";") : null;
}

function profileNames(record: Json): string | null {
  const list = optionalArray(record, "profiles");
  const names: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const name = optionalText(element(list, i, "profiles"), "name", `profiles[${i}]`);
    if (name !== null) names.push(name);
  }
  return names.length > 0 ? names.join(";") : null;
}

export const adminUsers: ReportDefinition = {
  id: "admin-users",
  name: "Users",
  description: "A snapshot of the account's users (agents, managers, bots) with their skills, group and limits.",
  category: "admin",
  kind: "business",
  source: "account-config-users",
  window: "snapshot",
  malformed: "skip",
  versions: [
    rowsVersion<AdminParams>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: adminParams,
      formats: TABLE_FORMATS,
      columns: [
        column("id", "string", "User id."),
        column("loginName", "string", "Login name."),
        column("fullName", "string", "Full name."),
        column("nickname", "string", "Nickname shown to consumers."),
        column("email", "string", "Email address."),
        column("employeeId", "string", "Employee id."),
        column("enabled", "boolean", "Whether the user may log in."),
        column("deleted", "boolean", "Whether the user was deleted."),
        column("isApiUser", "boolean", "Whether this is an API (system) user."),
        column("userTypeId", "integer", "User type: 1 human, 2 bot/system."),
        column("maxChats", "integer", "Concurrent chat limit."),
        column("maxAsyncChats", "integer", "Concurrent messaging conversation limit."),
        column("skillIds", "string", "Skill ids, separated by ';'."),
        column("agentGroupId", "string", "Group the user belongs to."),
        column("managerOfGroupIds", "string", "Groups the user manages, separated by ';'."),
        column("profiles", "string", "Profile names, separated by ';'."),
        column("dateUpdated", "datetime", "Last change."),
      ],
      map(value, { params }) {
        const r = object(value, "");
        const id = requiredId(r, "id");
        if (!keep(r, params)) return [];
        const memberOf = optionalObject(r, "memberOf");
        const row: Row = [
          id,
          optionalText(r, "loginName"),
          optionalText(r, "fullName"),
          optionalText(r, "nickname"),
          optionalText(r, "email"),
          optionalText(r, "employeeId"),
          optionalBoolean(r, "isEnabled"),
          optionalBoolean(r, "deleted"),
          optionalBoolean(r, "isApiUser"),
          optionalNumber(r, "userTypeId"),
          optionalNumber(r, "maxChats"),
          optionalNumber(r, "maxAsyncChats"),
          idsOf(r, "skillIds"),
          memberOf ? optionalId(memberOf, "agentGroupId", "memberOf") : null,
          managerOf(r),
          profileNames(r),
          optionalInstant(r, "dateUpdatedL", "dateUpdated"),
        ];
        return [row];
      },
    }),
  ],
};

export const adminSkills: ReportDefinition = {
  id: "admin-skills",
  name: "Skills",
  description: "A snapshot of the account's skills.",
  category: "admin",
  kind: "business",
  source: "account-config-skills",
  window: "snapshot",
  malformed: "skip",
  versions: [
    rowsVersion<AdminParams>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: adminParams,
      formats: TABLE_FORMATS,
      columns: [
        column("id", "string", "Skill id."),
        column("name", "string", "Skill name."),
        column("description", "string", "Description."),
        column("deleted", "boolean", "Whether the skill was deleted."),
        column("maxWaitTime", "integer", "Maximum wait time in seconds."),
        column("skillOrder", "integer", "Display order."),
        column("canTransfer", "boolean", "Whether conversations may be transferred from this skill."),
        column("skillTransferList", "string", "Skills it may transfer to, separated by ';'."),
        column("lobIds", "string", "Lines of business, separated by ';'."),
        column("dateUpdated", "datetime", "Last change."),
      ],
      map(value, { params }) {
        const r = object(value, "");
        const id = requiredId(r, "id");
        if (!keep(r, params)) return [];
        return [
          [
            id,
            optionalText(r, "name"),
            optionalText(r, "description"),
            optionalBoolean(r, "deleted"),
            optionalNumber(r, "maxWaitTime"),
            optionalNumber(r, "skillOrder"),
            optionalBoolean(r, "canTransfer"),
            idsOf(r, "skillTransferList"),
            idsOf(r, "lobIds"),
            optionalInstant(r, "dateUpdatedL", "dateUpdated"),
          ],
        ];
      },
    }),
  ],
};

export const adminAgentGroups: ReportDefinition = {
  id: "admin-agent-groups",
  name: "Agent groups",
  description: "A snapshot of the account's agent groups and their hierarchy.",
  category: "admin",
  kind: "business",
  source: "account-config-agent-groups",
  window: "snapshot",
  malformed: "skip",
  versions: [
    rowsVersion<AdminParams>({
      version: 1,
      released: "2026-11-01",
      notes: "First version.",
      params: adminParams,
      formats: TABLE_FORMATS,
      columns: [
        column("id", "string", "Group id."),
        column("name", "string", "Group name."),
        column("description", "string", "Description."),
        column("parentGroupId", "string", "Parent group id (empty for the root group)."),
        column("enabled", "boolean", "Whether the group is enabled."),
        column("deleted", "boolean", "Whether the group was deleted."),
        column("dateUpdated", "datetime", "Last change."),
      ],
      map(value, { params }) {
        const r = object(value, "");
        const id = requiredId(r, "id");
        if (!keep(r, params)) return [];
        return [
          [
            id,
            optionalText(r, "name"),
            optionalText(r, "description"),
            optionalId(r, "parentGroupId"),
            optionalBoolean(r, "isEnabled"),
            optionalBoolean(r, "deleted"),
            optionalInstant(r, "dateUpdatedL", "dateUpdated"),
          ],
        ];
      },
    }),
  ],
};
