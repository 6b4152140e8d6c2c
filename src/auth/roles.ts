/** Roles, weakest first. A role may do everything a weaker role may. */
export enum Role {
  Reader = 'reader',
  Operator = 'operator',
  Admin = 'admin',
}

const RANK: Record<Role, number> = { [Role.Reader]: 0, [Role.Operator]: 1, [Role.Admin]: 2 };

export function roleAllows(have: Role, need: Role): boolean {
  return RANK[have] >= RANK[need];
}

export function parseRole(s: string): Role | undefined {
  return (Object.values(Role) as string[]).includes(s) ? (s as Role) : undefined;
}

/** Who is calling. `open` = no tokens are defined (loopback-only mode): the caller acts as admin. */
export interface Principal {
  role: Role;
  tokenId?: string;
  name: string;
  open: boolean;
}
