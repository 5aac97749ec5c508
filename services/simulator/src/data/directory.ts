import { FIRST_NAMES, GROUP_NAMES, LAST_NAMES, SKILL_NAMES } from "./text.js";
import { hash32, platformTime, rngFor } from "./random.js";

/** An account's people and routing: agents (users), skills and agent groups. Small and fixed per seed. */
export interface Agent {
  id: number;
  loginName: string;
  fullName: string;
  nickname: string;
  email: string;
  employeeId: string;
  skillIds: number[];
  groupId: number;
  deleted: boolean;
  isEnabled: boolean;
  maxChats: number;
  maxAsyncChats: number;
  isApiUser: boolean;
  dateUpdated: string;
}
export interface Skill {
  id: number;
  name: string;
  description: string;
  deleted: boolean;
  maxWaitTime: number;
  skillOrder: number;
  canTransfer: boolean;
  dateUpdated: string;
}
export interface AgentGroup {
  id: number;
  name: string;
  description: string;
  parentGroupId: number | null;
  deleted: boolean;
  isEnabled: boolean;
  dateUpdated: string;
}
export interface Directory {
  agents: Agent[];
  skills: Skill[];
  groups: AgentGroup[];
}

const cache = new Map<string, Directory>();
/** A fixed "last updated" instant so the directory does not depend on the clock. */
const UPDATED_AT = Date.UTC(2026, 0, 15, 9, 30, 0);

/** The account's directory: the same for a given (accountId, seed), whatever the window. */
export function directoryFor(accountId: string, seed: string): Directory {
  const key = `${seed}\u0000${accountId}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const rng = rngFor(seed, accountId, "directory");
  const base = 1_000_000 + (hash32(seed, accountId) % 8_000_000);

  const groups: AgentGroup[] = GROUP_NAMES.map((name, i) => ({
    id: i === 0 ? -1 : base * 10 + 100 + i,
    name,
    description: i === 0 ? "Root group" : `Group ${i}`,
    parentGroupId: i === 0 ? null : -1,
    deleted: false,
    isEnabled: true,
    dateUpdated: platformTime(UPDATED_AT + i * 1000),
  }));
  const skills: Skill[] = SKILL_NAMES.map((name, i) => ({
    id: base * 10 + 200 + i,
    name,
    description: `${name} queue`,
    deleted: i === SKILL_NAMES.length - 1,
    maxWaitTime: 120 + i * 30,
    skillOrder: i,
    canTransfer: true,
    dateUpdated: platformTime(UPDATED_AT + i * 2000),
  }));
  const agentCount = 12;
  const agents: Agent[] = [];
  for (let i = 0; i < agentCount; i++) {
    const first = rng.pick(FIRST_NAMES);
    const last = rng.pick(LAST_NAMES);
    const login = `agent${i + 1}@brand-${accountId}.example`;
    const own = skills.filter((_, s) => (i + s) % 3 === 0 || s === i % skills.length).map((s) => s.id);
    agents.push({
      id: base * 10 + 1000 + i,
      loginName: login,
      fullName: `${first} ${last}`,
      nickname: first,
      email: login,
      employeeId: `E${String(1000 + i)}`,
      skillIds: own,
      groupId: groups[i % groups.length]!.id,
      deleted: i === agentCount - 1,
      isEnabled: i !== agentCount - 2,
      maxChats: rng.int(2, 6),
      maxAsyncChats: rng.int(4, 12),
      isApiUser: i === 0,
      dateUpdated: platformTime(UPDATED_AT + i * 3000),
    });
  }
  const directory = { agents, skills, groups };
  cache.set(key, directory);
  return directory;
}

/** Users as `GET …/configuration/le-users/users?v=4.0` returns them. */
export function usersResource(accountId: string, seed: string): unknown[] {
  const { agents } = directoryFor(accountId, seed);
  return agents.map((a) => ({
    id: a.id,
    deleted: a.deleted,
    loginName: a.loginName,
    fullName: a.fullName,
    nickname: a.nickname,
    isEnabled: a.isEnabled,
    maxChats: a.maxChats,
    email: a.email,
    disabledManually: !a.isEnabled,
    skillIds: a.skillIds,
    profiles: [{ roleTypeId: 1, name: "Agent", id: 1 }],
    profileIds: [1],
    lobIds: [],
    changePwdNextLogin: false,
    memberOf: { agentGroupId: String(a.groupId), assignmentDate: a.dateUpdated },
    managerOf: [],
    permissionGroups: ["1"],
    description: "",
    mobileNumber: "",
    employeeId: a.employeeId,
    maxAsyncChats: a.maxAsyncChats,
    dateUpdated: a.dateUpdated,
    lastPwdChangeDate: a.dateUpdated,
    isApiUser: a.isApiUser,
    userTypeId: a.isApiUser ? 2 : 1,
  }));
}

/** Skills as `GET …/configuration/le-users/skills?v=2.0` returns them. */
export function skillsResource(accountId: string, seed: string): unknown[] {
  return directoryFor(accountId, seed).skills.map((s) => ({
    id: s.id,
    name: s.name,
    description: s.description,
    deleted: s.deleted,
    maxWaitTime: s.maxWaitTime,
    skillOrder: s.skillOrder,
    canTransfer: s.canTransfer,
    skillTransferList: [],
    lobIds: [],
    dateUpdated: s.dateUpdated,
  }));
}

/** Agent groups as `GET …/configuration/le-users/agentGroups?v=2.0` returns them. */
export function agentGroupsResource(accountId: string, seed: string): unknown[] {
  return directoryFor(accountId, seed).groups.map((g) => ({
    id: g.id,
    name: g.name,
    description: g.description,
    ...(g.parentGroupId === null ? {} : { parentGroupId: g.parentGroupId }),
    deleted: g.deleted,
    isEnabled: g.isEnabled,
    dateUpdated: g.dateUpdated,
  }));
}
