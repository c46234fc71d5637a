/**
 * The hex formats of the AMD-Vi records and lines. Bit fields, little-endian access, Result and the
 * log-prefix stripper come from @ioasid/core/driver.
 */

/**
 * `%#llx` as the kernel's vsprintf prints it: "0x" and lowercase hex, zero included ("0x0"; unlike
 * C libraries, the kernel's SPECIAL flag prefixes zero too, as real "Extended features (..., 0x0)" lines show).
 */
export function hex(value: bigint | number): string {
  return `0x${BigInt.asUintN(64, BigInt(value)).toString(16)}`;
}

/** `0x%0Nx`. */
export function hexPad(value: bigint | number, digits: number): string {
  return `0x${BigInt.asUintN(64, BigInt(value)).toString(16).padStart(digits, '0')}`;
}

