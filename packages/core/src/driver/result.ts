/**
 * The one result type of the plugin contract and its helpers: decoders, validators and parsers return
 * `Result` instead of throwing, so hostile input (a register value, a log line, a user buffer) never
 * crashes a caller. `E` is a message by default; uAPI-facing checks use `VendorError` (errno + reason).
 */
export type Result<T, E = string> =
  | {
      /** Discriminant: true on success. */
      readonly ok: true;
      /** What the call produced. */
      readonly value: T;
    }
  | {
      /** Discriminant: false on failure. */
      readonly ok: false;
      /** Why it failed: a message, or a VendorError for uAPI-facing checks. */
      readonly error: E;
    };

/** A successful result. */
export function ok<T>(value: T): {
  /** Always true. */
  readonly ok: true;
  /** The value given. */
  readonly value: T;
} {
  return { ok: true, value };
}

/** A failed result. */
export function err<E>(error: E): {
  /** Always false. */
  readonly ok: false;
  /** The error given. */
  readonly error: E;
} {
  return { ok: false, error };
}
