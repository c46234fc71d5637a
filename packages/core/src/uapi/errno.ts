/** Linux errno values (asm-generic/errno-base.h and errno.h) used by the iommufd uAPI. */
export const ERRNO = {
  /** 1: not permitted (e.g. IOMMU_OPTION RLIMIT_MODE without CAP_SYS_RESOURCE). */
  EPERM: 1,
  /** 2: no object with that id, or of that type. */
  ENOENT: 2,
  /** 3: no such process (the mm behind a pinned range is gone). */
  ESRCH: 3,
  /** 5: I/O error: the hardware or the model could not complete the operation. */
  EIO: 5,
  /** 6: no such device or address (an IOVA or a bus address nothing answers). */
  ENXIO: 6,
  /** 7: argument list too long: a struct larger than the kernel knows with non-zero trailing bytes (copy_struct_from_user). */
  E2BIG: 7,
  /** 9: not an open file descriptor of the right kind. */
  EBADF: 9,
  /** 11: try again: a queue is empty or full for now. */
  EAGAIN: 11,
  /** 12: out of memory: an allocation (a table page, an object) failed. */
  ENOMEM: 12,
  /** 13: permission denied (a write through a read-only mapping). */
  EACCES: 13,
  /** 14: a user pointer that cannot be read or written. */
  EFAULT: 14,
  /** 16: in use: an object still referenced, a device already bound or attached. */
  EBUSY: 16,
  /** 17: already exists: an IOVA range already mapped, an id already taken. */
  EEXIST: 17,
  /** 19: no such device. */
  ENODEV: 19,
  /** 22: invalid argument: bad flags, a non-zero reserved field, a misaligned or empty range. */
  EINVAL: 22,
  /** 28: no space: no free IOVA range of that size, no free domain id. */
  ENOSPC: 28,
  /** 29: illegal seek (a read at an offset on a fault or event fd). */
  ESPIPE: 29,
  /** 34: out of range: a value the kernel cannot represent (e.g. an IOVA past the aperture). */
  ERANGE: 34,
  /** 38: not implemented. */
  ENOSYS: 38,
  /** 35: would deadlock. */
  EDEADLK: 35,
  /** 25: unknown ioctl number for this fd. */
  ENOTTY: 25,
  /** 24: too many open files. */
  EMFILE: 24,
  /** 90: the user buffer is too small; the size needed was written back (IOAS_IOVA_RANGES). */
  EMSGSIZE: 90,
  /** 95: not supported by this IOMMU or this object: an absent driver op or capability. */
  EOPNOTSUPP: 95,
  /** 98: address in use: an IOVA range already claimed (reserved regions, allowed ranges). */
  EADDRINUSE: 98,
  /** 75: an arithmetic overflow: iova + length past U64_MAX, a count too large. */
  EOVERFLOW: 75,
  /** 110: timed out waiting (a page response never came). */
  ETIMEDOUT: 110,
} as const;

/** The symbolic name of an errno this model returns ('EINVAL', 'ENOENT', ...). */
export type ErrnoCode = keyof typeof ERRNO;

const BY_NUMBER = new Map<number, ErrnoCode>(Object.entries(ERRNO).map(([k, v]) => [v, k as ErrnoCode]));

/** The name of errno `errno` (positive, or negative as the kernel returns it); undefined for one the model never returns. */
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
  /** The positive errno number of `code` (EINVAL is 22); a raw ioctl returns its negation. */
  readonly errno: number;
  constructor(
    /** The errno's symbolic name, e.g. 'EINVAL'. */
    readonly code: ErrnoCode,
    /** The ioctl or file operation that failed, e.g. 'IOMMU_IOAS_MAP' or 'read'. */
    readonly command: string,
    /** Why the model refused, in words (which check failed); not part of the kernel's answer. */
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
    /** Name of the plugin at fault (its `name` as registered). */
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
    /** The errno's symbolic name, e.g. 'ENOENT'. */
    readonly code: ErrnoCode,
    /** Why, in words, for diagnostics; carried into the IommufdError. */
    readonly detail?: string,
  ) {
    super(detail ? `${code}: ${detail}` : code);
    this.name = 'Errno';
  }
}

/** Throws an {@link Errno}: how handlers and vendor ops return a kernel error code (`return -EINVAL;` in the kernel). */
export function fail(code: ErrnoCode, detail?: string): never {

  throw new Errno(code, detail);
}
