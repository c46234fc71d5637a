/** The probe-and-plan view: boot logs or host profiles in, units and the vIOMMU plan per policy out. */
import type { NormalizedCaps } from '@ioasid/core/driver';
import type { Plan } from '@ioasid/planner';
import { loadHost, planHosts, type HostText, type LoadedHost, type PolicyAnswer } from '../logic/plan.js';
import { presetList, vendors } from '../logic/plugins.js';
import { copyButton, h, table } from '../dom.js';
import type { ViewContext } from './decode.js';

/** Hosts travel in the fragment as JSON: pasted texts in full, built-in presets by id. */
type SavedHost = { name: string; text: string } | { preset: string };

function parseSaved(input: string): SavedHost[] {
  if (input.trim() === '') return [];
  try {
    const v: unknown = JSON.parse(input);
    if (!Array.isArray(v)) return [];
    return v.filter((x): x is SavedHost => typeof x === 'object' && x !== null && (typeof (x as { preset?: unknown }).preset === 'string' || (typeof (x as { name?: unknown }).name === 'string' && typeof (x as { text?: unknown }).text === 'string')));
  } catch {
    return [{ name: 'pasted text', text: input }];
  }
}

function toText(s: SavedHost): HostText | null {
  if ('preset' in s) {
    const p = presetList().find((x) => x.id === s.preset);
    return p ? { name: p.profile.name, text: JSON.stringify(p.profile) } : null;
  }
  return s;
}

function capabilityList(c: NormalizedCaps): string {
  const aw = c.hostStage ? `${Math.max(...c.hostStage.inputBits)}-bit IOVA` : 'no host stage';
  const flags: Array<[boolean, string]> = [
    [c.nesting, 'nesting'],
    [c.pasidBits > 0, `PASID ${c.pasidBits} bits`],
    [c.pri, 'PRI'],
    [c.ats, 'ATS'],
    [c.stall, 'stall'],
    [c.dirtyTracking, 'dirty tracking'],
    [c.interruptRemapping, 'interrupt remapping'],
  ];
  return [aw, ...flags.filter(([on]) => on).map(([, name]) => name)].join(', ');
}

function unitsView(host: LoadedHost & { ok: true }): HTMLElement {
  const vs = vendors();
  const rows = host.profile.units.map((u) => {
    const v = vs.find((x) => x.id === u.vendor);
    const d = v?.decodeRegisters(u.registers);
    const caps = d?.ok ? d.value.caps : undefined;
    return [
      h('code', {}, u.id),
      u.vendor,
      d?.ok ? d.value.hwId : `cannot decode: ${d ? d.error : 'no plugin'}`,
      caps ? capabilityList(caps) : '',
    ];
  });
  return h(
    'section',
    { class: 'host', 'data-host': host.name },
    h('h3', {}, host.name, h('span', { class: 'badge' }, host.source)),
    table(['Unit', 'Vendor', 'Hardware', 'Capabilities'], rows),
    host.profile.devices.length ? h('p', {}, `${host.profile.devices.length} device(s): `, host.profile.devices.map((d) => d.bdf).join(', ')) : h('p', {}, 'No devices placed on units by this input.'),
    ...host.warnings.map((w) => h('p', { class: 'warning' }, w)),
  );
}

function planView(a: PolicyAnswer): HTMLElement {
  const title = h('h3', {}, `Policy: ${a.policy}`);
  if (!a.plan) return h('section', { class: 'plan error', 'data-policy': a.policy }, title, h('p', {}, a.error ?? 'no plan'));
  const p: Plan = a.plan;
  const props = Object.entries(p.viommu.properties).map(([k, v]) => `${k}=${typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v)}`);
  return h(
    'section',
    { class: `plan ${p.ok ? 'ok' : 'refused'}`, 'data-policy': a.policy },
    title,
    h('p', {}, h('strong', {}, p.viommu.model), props.length ? ` ${props.join(', ')}` : '', p.ok ? '' : ' (QEMU or a device refuses it)'),
    a.limitedBy?.length ? h('p', { class: 'limited' }, `Limited by: ${a.limitedBy.join(', ')}`) : null,
    table(['Device', 'Host', 'Unit', 'Backing', 'Why'], p.devices.map((d) => [h('code', {}, d.bdf), d.host, d.unit, d.mode, h('ul', {}, ...d.reasons.map((r) => h('li', {}, r)))])),
    ...p.errors.map((e) => h('p', { class: 'error' }, e)),
    ...p.warnings.map((w) => h('p', { class: 'warning' }, w)),
    h('div', { class: 'output' }, h('p', {}, 'QEMU ', copyButton('Copy QEMU options', () => p.qemu)), h('pre', { class: 'qemu' }, p.qemu)),
    h('div', { class: 'output' }, h('p', {}, 'libvirt ', copyButton('Copy libvirt XML', () => p.libvirt)), h('pre', { class: 'libvirt' }, p.libvirt)),
  );
}

export function renderPlan(root: HTMLElement, ctx: ViewContext): void {
  const saved: SavedHost[] = parseSaved(ctx.state.input);
  const list = h('ul', { id: 'plan-hosts' });
  const out = h('section', { id: 'plan-results', 'aria-live': 'polite' });
  const paste = h('textarea', { id: 'plan-input', rows: '6', spellcheck: 'false', placeholder: 'Paste a boot log (dmesg) or a host profile (YAML or JSON), then Add host.' });
  const presetSel = h('select', { id: 'plan-preset' }, h('option', { value: '' }, 'a built-in host…'), ...presetList().map((p) => h('option', { value: p.id }, `${p.vendor}: ${p.profile.name}`)));
  const files = h('input', { id: 'plan-files', type: 'file', multiple: true, accept: '.txt,.log,.json,.yaml,.yml' });

  const update = () => {
    ctx.save(saved.length ? JSON.stringify(saved) : '', {});
    list.replaceChildren(
      ...saved.map((s, i) =>
        h('li', {}, 'preset' in s ? `built-in ${s.preset}` : s.name, ' ', h('button', { type: 'button', class: 'link', 'aria-label': `Remove host ${i + 1}`, onclick: (() => (saved.splice(i, 1), update())) as EventListener }, 'remove')),
      ),
    );
    out.replaceChildren();
    const vs = vendors();
    const hosts = saved.map(toText).filter((t): t is HostText => t !== null).map((t) => loadHost(t, vs));
    for (const host of hosts) out.append(host.ok ? unitsView(host) : h('section', { class: 'host error' }, h('h3', {}, host.name), h('pre', {}, host.error)));
    const good = hosts.filter((x): x is LoadedHost & { ok: true } => x.ok);
    if (good.length) out.append(h('h2', {}, good.length > 1 ? `The fleet of ${good.length} hosts` : 'The plan'), ...planHosts(good.map((g) => g.profile), vs).map(planView));
  };

  const addText = (name: string, text: string) => {
    if (text.trim() === '') return;
    saved.push({ name, text });
    update();
  };
  const readFiles = async (fl: FileList | null | undefined) => {
    for (const f of Array.from(fl ?? [])) {
      // The same cap the CLI uses for input files; a larger file is not a boot log.
      if (f.size > 64 << 20) {
        out.prepend(h('p', { class: 'error' }, `${f.name}: ${f.size} bytes is more than the 64 MiB a boot log or profile can be`));
        continue;
      }
      addText(f.name, await f.text());
    }
  };
  files.addEventListener('change', () => void readFiles(files.files));
  root.addEventListener('dragover', (e) => e.preventDefault());
  root.addEventListener('drop', (e) => {
    e.preventDefault();
    void readFiles(e.dataTransfer?.files);
  });

  root.append(
    h('h2', {}, 'Probe & plan'),
    h('p', {}, 'Drop or paste boot logs and host profiles. One host gets the plan that copies it (host) and the migration-safe one (baseline); several hosts get the baseline of the fleet and the hosts that limit it.'),
    h(
      'div',
      { class: 'controls' },
      h('label', { for: 'plan-input' }, 'Boot log or host profile'),
      paste,
      h(
        'div',
        { class: 'row' },
        h('button', { type: 'button', id: 'plan-add', onclick: (() => (addText(`pasted text ${saved.length + 1}`, paste.value), (paste.value = ''))) as EventListener }, 'Add host'),
        h('label', {}, 'or files ', files),
        h('label', {}, 'or ', presetSel),
        copyButton('Copy link', ctx.link),
      ),
    ),
    list,
    out,
  );
  presetSel.addEventListener('change', () => {
    if (presetSel.value) saved.push({ preset: presetSel.value });
    presetSel.value = '';
    update();
  });
  update();
}
