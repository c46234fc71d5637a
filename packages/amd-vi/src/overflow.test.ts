import { describe, expect, it } from 'vitest';
import { createHost } from '@ioasid/core';
import { amdPresetById, plugin } from './index.js';
import { parseAmdLogLine } from './logs.js';

describe('event log overflow', () => {
  it('restarts the log as amd_iommu_restart_event_logging() does, once per drain', async () => {
    const profile = amdPresetById('amd-zen3-milan-epyc');
    const host = createHost({ plugins: [plugin], profile });
    const fd = host.openIommufd();
    const dev = host.device(profile.devices[0].bdf);
    dev.bindIommufd(fd);
    dev.attachPt(fd.ioas.alloc());
    // More faults than the 512-entry event log holds before the interrupt thread runs.
    const n = host.units[0].ops.faultQueueDepth! + 40;
    await Promise.allSettled(Array.from({ length: n }, (_, i) => dev.dma.read(BigInt(i) << 12n, 4)));
    await new Promise((r) => setTimeout(r, 0));
    const lines = host.log.lines;
    expect(lines.filter((l) => l === 'AMD-Vi: IOMMU Event log restarting')).toHaveLength(1);
    expect(lines.filter((l) => l.includes('Event logged [IO_PAGE_FAULT')).length).toBe(512);
    expect(host.faultStats.overflows).toBe(40);
    const r = parseAmdLogLine('[ 12.5] AMD-Vi: IOMMU PPR log restarting');
    expect(r.ok && r.value).toEqual({ kind: 'log-restart', log: 'PPR' });
  });
});
