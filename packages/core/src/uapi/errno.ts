/** Linux errno values (asm-generic/errno-base.h and errno.h) used by the iommufd uAPI. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  ESPIPE: 29,
  ERANGE: 34,
  ENOSYS: 38,
  EDEADLK: 35,
  ENOTTY: 25,
  EMFILE: 24,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EOVERFLOW: 75,
  ETIMEDOUT: 110,
} as const;

export type ErrnoCode = keyof typeof ERRNO;

const BY_NUMBER = new Map<number, ErrnoCode>(Object.entries(ERRNO).map(([k, v]) => [v, k as ErrnoCode]));

export function errnoName(errno: number): ErrnoCode | undefined {
  return BY_NUMBER.get(Math.abs(errno));
}

/** The kernel's strerror text, for readable output. */
export const ERRNO_TEXT: Record<ErrnoCode, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  E2BIG: 'Argument list too long',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  EINVAL: 'Invalid argument',
  ENOSPC: 'No space left on device',
  ESPIPE: 'Illegal seek',
  ERANGE: 'Numerical result out of range',
  ENOSYS: 'Function not implemented',
  EDEADLK: 'Resource deadlock avoided',
  ENOTTY: 'Inappropriate ioctl for device',
  EMFILE: 'Too many open files',
  EMSGSIZE: 'Message too long',
  EOPNOTSUPP: 'Operation not supported',
  EADDRINUSE: 'Address already in use',
  EOVERFLOW: 'Value too large for defined data type',
  ETIMEDOUT: 'Connection timed out',
};

/**
 * A uAPI failure: what the kernel would return as a negative errno. `command` names the ioctl or file
 * operation that failed (e.g. 'IOMMU_IOAS_MAP', 'read').
 */
export class IommufdError extends Error {
  readonly errno: number;
  constructor(
    readonly code: ErrnoCode,
    readonly command: string,
    readonly detail?: string,
  ) {
    super(`${command}: ${code} (${ERRNO_TEXT[code]})${detail ? `: ${detail}` : ''}`);
    this.name = 'IommufdError';
    this.errno = ERRNO[code];
  }
}

/** A vendor plugin broke the contract (a driver bug, the kernel's WARN_ON). */
export class PluginContractError extends Error {
  constructor(
    readonly plugin: string,
    message: string,
  ) {
    super(`plugin ${plugin}: ${message}`);
    this.name = 'PluginContractError';
  }
}

/**
 * Thrown inside handlers; the dispatcher turns it into an IommufdError naming the command. Handlers
 * throw this so they need not know which command (or file operation) is running them.
 */
export class Errno extends Error {
  constructor(
    readonly code: ErrnoCode,
    readonly detail?: string,
  ) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = 'Errno';
  }
}

export function fail(code: ErrnoCode, detail?: string): never {
  throw new Errno(code, detail);
}
