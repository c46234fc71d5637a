/**
 * The simulated machine: physical memory, the user process, IOMMU units and the devices behind them.
 * `createHost` is the entry point users start from; `openIommufd` is open("/dev/iommu").
 */
import { FrameAllocator, PhysicalMemory } from '../memory/physical.js';
import { HostProcess } from '../memory/process.js';
import { IommufdCtx } from '../iommufd/context.js';
import { Iommufd } from '../iommufd/iommufd.js';
import { bareDeviceHandlers } from '../iommufd/device-layer.js';

export interface HostOptions {
  /** Name shown in reports. */
  name?: string;
}

export class Host {
  readonly mem = new PhysicalMemory();
  readonly frames = new FrameAllocator(this.mem);
  readonly process = new HostProcess(this.mem, this.frames);
  readonly name: string;

  constructor(opts: HostOptions = {}) {
    this.name = opts.name ?? 'bare host';
  }

  /** open("/dev/iommu", O_RDWR). */
  openIommufd(): Iommufd {
    const ctx = new IommufdCtx(this.process, this.mem, this.frames, this);
    return new Iommufd(ctx, bareDeviceHandlers, (ops) => this.process.installFile(ops));
  }
}

export function createHost(opts: HostOptions = {}): Host {
  return new Host(opts);
}
