/**
 * The checks QEMU makes when a vIOMMU meets the host IOMMU behind an assigned (vfio-pci, iommufd)
 * device, in QEMU's order and with QEMU's messages. Each model's checks live in models/<model>.ts; this
 * dispatches to the model and applies what holds for all: a configuration QEMU refuses refuses every device.
 */
import type { DeviceFacts } from './facts.js';
import { modelDef } from './models.js';
import type { EvaluateOptions, Evaluation, ViommuSpec } from './models/types.js';

export type { DeviceMode, PlannedDevice, ViommuInstance, FrozenState, Evaluation, EvaluateOptions } from './models/types.js';

/** Evaluates one vIOMMU configuration against every device (cold plug, or hot plug with `frozen`). */
export function evaluate(spec: ViommuSpec, devices: readonly DeviceFacts[], opts: EvaluateOptions = {}): Evaluation {
  const ev = modelDef(spec.model).evaluate(spec, devices, opts);
  if (ev.errors.length && !opts.frozen) {
    // QEMU does not start: every device shares the fate of the configuration.
    const devicesOut = ev.devices.map((d) =>
      d.mode === 'refused' ? d : { ...d, mode: 'refused' as const, reasons: [`the VM does not start: ${ev.errors[0]}`, ...d.reasons.slice(1)] },
    );
    return { ...ev, devices: devicesOut };
  }
  return ev;
}
