/** The generator's result type (the same shape as @ioasid/core's, without depending on core). */
export type Result<T, E = string> =
  | {
      /** Success: `value` holds the result. */
      readonly ok: true;
      /** The result of the operation. */
      readonly value: T;
    }
  | {
      /** Failure: `error` says why; nothing was written. */
      readonly ok: false;
      /** Why the operation failed, in words fit for the command line. */
      readonly error: E;
    };
