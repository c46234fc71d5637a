/** The generator's result type (the same shape as @ioasid/core's, without depending on core). */
export type Result<T, E = string> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };
