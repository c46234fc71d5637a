/**
 * The permission model of a translation. A DMA request asks for some of read, write and execute, as
 * an unprivileged (user) or a privileged (supervisor) request (PERM_* request bits; PERM_PRIV marks a
 * privileged request, as IOMMU_PGFAULT_PERM_PRIV does in a fault record). A walk answers with what
 * each privilege level may do at that page (grant bits): the three PERM_READ / PERM_WRITE / PERM_EXEC
 * bits for unprivileged requests and PERM_PRIV_READ / PERM_PRIV_WRITE / PERM_PRIV_EXEC for privileged
 * ones. The two sets are independent, so a format can say what real hardware says:
 *
 * - a supervisor-only page (x86 U/S = 0, RISC-V U = 0, Arm AP[1] = 0): only the PERM_PRIV_* bits;
 * - a user page a privileged request may not touch (RISC-V without SUM, Arm PAN): only the user bits;
 * - execute for one level but not the other (Arm UXN / PXN, x86 SMEP, RISC-V S-mode on a U page).
 *
 * A format without privilege levels (VT-d second stage, Arm stage 2, AMD-Vi v1) grants the same to
 * both: `grantBoth(PERM_READ | PERM_WRITE)`. Granted is checked with `permAllowed`, never with a bare
 * "granted contains requested".
 */

/** Request bits (and unprivileged grant bits). */
export const PERM_READ = 1 << 0;
export const PERM_WRITE = 1 << 1;
export const PERM_EXEC = 1 << 2;
/** Request bit: the request is privileged. Never a grant bit. */
export const PERM_PRIV = 1 << 3;
/** Grant bits for privileged requests. */
export const PERM_PRIV_READ = 1 << 4;
/** Grant bit: privileged requests may write the page. */
export const PERM_PRIV_WRITE = 1 << 5;
/** Grant bit: privileged requests may execute from the page. */
export const PERM_PRIV_EXEC = 1 << 6;

/** Read, write and execute (either set). */
export const PERM_RWX = PERM_READ | PERM_WRITE | PERM_EXEC;
/** Every grant bit: what a translation that restricts nothing grants. */
export const PERM_GRANT_ALL = PERM_RWX | (PERM_RWX << 4);

/** Grants `rwx` (PERM_READ | PERM_WRITE | PERM_EXEC bits) to unprivileged and privileged requests alike. */
export function grantBoth(rwx: number): number {
  return (rwx & PERM_RWX) | ((rwx & PERM_RWX) << 4);
}

/**
 * The accesses one request asks for, as a fault record or page request descriptor spells them: each member is a
 * flag, set when `true` or non-zero (a record's 1-bit field can be passed as it is) and clear when absent.
 */
export interface PermRequestFlags {
  /** The request reads (PERM_READ). */
  readonly read?: boolean | number;
  /** The request writes (PERM_WRITE). */
  readonly write?: boolean | number;
  /** The request fetches instructions (PERM_EXEC). */
  readonly exec?: boolean | number;
  /** The request is privileged, a supervisor access (PERM_PRIV). */
  readonly priv?: boolean | number;
}

/**
 * The PERM_* request bits of a request given as flags, what a codec's decodePageRequest and decodeFault report in
 * `IommuFault.perm`: `permOf({ read: d.rd_req, write: d.wr_req, exec: d.exe_req, priv: d.pm_req })`.
 */
export function permOf(flags: PermRequestFlags): number {
  return (flags.read ? PERM_READ : 0) | (flags.write ? PERM_WRITE : 0) | (flags.exec ? PERM_EXEC : 0) | (flags.priv ? PERM_PRIV : 0);
}

/** The grant bits a request needs: its R/W/X, moved to the privileged set when PERM_PRIV is set. */
export function permNeeded(request: number): number {
  return (request & PERM_PRIV) !== 0 ? (request & PERM_RWX) << 4 : request & PERM_RWX;
}

/** True when `granted` (grant bits) allows every access of `request` at its privilege level. */
export function permAllowed(granted: number, request: number): boolean {
  const need = (request & PERM_PRIV) !== 0 ? (request & PERM_RWX) << 4 : request & PERM_RWX;
  return (granted & need) === need;
}

/** The grant bits of `granted` that apply at the privilege of `request`, as PERM_READ/WRITE/EXEC. */
export function permAtLevel(granted: number, request: number): number {
  return ((request & PERM_PRIV) !== 0 ? granted >>> 4 : granted) & PERM_RWX;
}

/** The TranslationFailure values a refused permission gives (see permFailure). */
export type PermissionFailure = 'permission-read' | 'permission-write' | 'permission-exec' | 'permission-priv';


/**
 * Why `request` is refused by `granted` (call only when permAllowed is false): 'permission-priv' when
 * the page grants nothing at the request's privilege level but does at the other one (a user request to
 * a supervisor-only page, a privileged data access to a user page under PAN or without SUM), else the
 * first missing access in the order write, read, execute.
 */
export function permFailure(granted: number, request: number): PermissionFailure {
  const have = permAtLevel(granted, request);
  const other = ((request & PERM_PRIV) !== 0 ? granted : granted >>> 4) & PERM_RWX;
  const missing = request & PERM_RWX & ~have;
  // Everything missing is allowed at the other privilege level: the privilege is what is wrong.
  if (missing !== 0 && (missing & other) === missing) return 'permission-priv';
  return missing & PERM_WRITE ? 'permission-write' : missing & PERM_READ ? 'permission-read' : 'permission-exec';
}
