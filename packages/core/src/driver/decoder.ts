/**
 * The optional presentation part of a plugin: explaining a register value, a fault record or a kernel
 * log line for people (`ioasid decode`, the web page's decode view). No unit needs it, so it is not in
 * the driver ops (`IommuVendor`, `UnitOps`): a plugin without a decoder works for everything but
 * decode. It sits on the plugin object next to `register()` (`IommuPlugin.decoder`).
 */
import type { BitField } from './bitfield.js';
import type { Result } from './result.js';

/** A register or record word and the layout of its fields, for a bit diagram (the web page draws it). */
export interface DecodedWord {
  /** The register's or word's name in the specification (CAP_REG, IDR0, dword 0). */
  readonly name: string;
  /** The word's raw value. */
  readonly value: bigint;
  /** Bits in the word: 32 or 64. */
  readonly width: number;
  /** Its fields, low bit first, so a tool can draw the word bit by bit. */
  readonly layout: readonly BitField[];
}

/** Plain-language help for a decoded fault or event record: why it usually happens, what to look at next. */
export interface DecodeAdvice {
  /** The usual causes of such a record, most likely first. */
  readonly causes: readonly string[];
  /** What to check next, in the order worth checking. */
  readonly checks: readonly string[];
}

/** What a decoder answers: what `ioasid decode` prints and the web page shows. */
export interface DecodeOutput {
  /** Id of the vendor whose decoder produced it. */
  readonly vendor: string;

  /** What the input was: a register name (cap, idr0), a record (frcd, event) or a log line. */
  readonly kind: string;
  /** Every field under the specification's name. */
  readonly fields: Readonly<Record<string, string | number | boolean>>;
  /** One line saying what it means. */
  readonly summary: string;
  /** The line the Linux driver prints for it ('' when the driver prints none). */
  readonly linux: string;
  /** The decoded words with their field layouts, for registers and raw records alike. */
  readonly words?: readonly DecodedWord[];
  /** For a fault or event record: its usual causes and what to check next. */
  readonly advice?: DecodeAdvice;
}

/** The decoder of one vendor family (`IommuPlugin.decoder`). */
export interface IommuDecoder {
  /** The `IommuVendor.id` whose values it explains. */
  readonly vendor: string;
  /**
   * Explains a register value, record words or a log line. `kind` names what `what` is (cap, idr0,
   * event, ...); without it the decoder guesses from the text. Bad input is an `err` saying what was
   * expected, never a throw.
   */
  decode(what: string, kind?: string): Result<DecodeOutput>;
}
