# __PACKAGE__

The __NAME__ IOMMU plugin for [ioasid](https://github.com/ioasid/ioasid), the executable model of the
Linux iommufd uAPI. It registers the `__ID__` vendor (its capability register, units and paging domains)
and the `__ID__-pt` page-table format, its fault records, and ships host profiles (`presets`) with __NAME__ units.

ESM only, Node.js 20.19 or later.

## Install

```sh
npm install __PACKAGE__ @ioasid/core tsyringe reflect-metadata
```

## A first host

```js
import { createHost } from '@ioasid/core';
import { plugin, presets } from '__PACKAGE__';

const host = createHost({ plugins: [plugin], profile: presets[0] });
for (const unit of host.units) console.log(unit.ops.name, unit.ops.decoded.hwId);
```

Importing the package has no side effects: `plugin.register(container)` adds the vendor and the format
to the container core gives it, one per host. `plugin.decoder` (src/decode.ts) is the optional part that
explains a CAP value or a fault record for people (`ioasid decode __ID__ 0x3fd3010 --kind cap`); a plugin
without it works for everything but decode.

## Registers

A unit's profile holds one register, `cap` (64 bits, a hex string):

| field | bits | meaning |
| --- | --- | --- |
| VER_MINOR, VER_MAJOR | 3:0, 7:4 | architecture version |
| IAS | 13:8 | input (IOVA) address width: 39 (3 levels) or 48 (4 levels) |
| OAS | 19:14 | output address width, 32 to 52 |
| PS2M, PS1G | 20, 21 | 2 MiB and 1 GiB blocks |
| AD | 22 | hardware access and dirty bits (dirty tracking) |
| COH | 23 | DMA can be forced cache-coherent |
| IR | 24 | interrupt remapping |
| RI | 25 | range invalidation |

A booting driver prints `__ID__ <unit>: CAP 0x<value>` for each unit; `probeLine` (src/probe.ts) reads such
lines back into a unit's registers (`ioasid probe`).

## Files

The package has the file roles every ioasid vendor package has: `registers.ts` (the CAP layout, decode and
encode), `probe.ts` (a unit from a host profile or from its probe line), `pgtable.ts` (the page-table format),
`unit.ts` (the unit and its paging domains), `records.ts` (the fault, page-request and page-response records
and their encode / decode), `fault-codec.ts` (the `FaultCodec` over those records and the fault line),
`presets.ts`, `decode.ts` (the decoder), `vendor.ts` and `index.ts`.

## Tests

`src/conformance.test.ts` runs core's conformance kit (`describeConformance` from `@ioasid/core/conformance`)
on every preset; `src/registers.test.ts` checks the register decode and the probe line, `src/records.test.ts`
the records and the fault codec, and `src/decode.test.ts` the decoder.

## License

Apache-2.0
