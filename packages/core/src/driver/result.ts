/**
 * The one result type of the plugin contract and its helpers: decoders, validators and parsers return
 * `Result` instead of throwing, so hostile input (a register value, a log line, a user buffer) never
 * crashes a caller. `E` is a message by default; uAPI-facing checks use `VendorError` (errno + reason).
 */
export type Result<T, E = string> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

/** A successful result. */
export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

/** A failed result. */
export function err<E>(error: E): { readonly ok: false; readonly error: E } {
  return { ok: false, error };
}
