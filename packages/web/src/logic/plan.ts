/**
 * The probe-and-plan view's logic: each dropped or pasted text becomes a host (a host profile in YAML or
 * JSON, or a boot log probed with the vendor plugins), then the planner answers for each policy. For a
 * fleet, the hosts that limit the baseline are named: those whose removal changes the vIOMMU it offers.
 */
import type { HostProfile } from '@ioasid/core';
import type { IommuVendor } from '@ioasid/core/driver';
import { loadProfile, plan, probeDmesg, type Plan, type Policy } from '@ioasid/planner';

export interface HostText {
  /** A file name, or "pasted text 1". */
  readonly name: string;
  readonly text: string;
}

export type LoadedHost =
  | { readonly ok: true; readonly name: string; readonly source: 'profile' | 'boot log'; readonly profile: HostProfile; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly name: string; readonly error: string };

/** A profile starts with `{` (JSON) or has a top-level `units:` key (YAML); anything else is a log. */
function looksLikeProfile(text: string): boolean {
  return /^\s*\{/.test(text) || /^units\s*:/m.test(text);
}

export function loadHost(input: HostText, vendors: readonly IommuVendor[]): LoadedHost {
  if (looksLikeProfile(input.text)) {
    try {
      const checked = loadProfile(input.text, { vendors, file: input.name });
      return { ok: true, name: input.name, source: 'profile', profile: checked.profile, warnings: [] };
    } catch (e) {
      return { ok: false, name: input.name, error: e instanceof Error ? e.message : String(e) };
    }
  }
  try {
    const r = probeDmesg(input.text, vendors, { name: input.name });
    if (r.profile.units.length === 0) {
      return { ok: false, name: input.name, error: ['no IOMMU unit found in this log', ...r.warnings].join('\n') };
    }
    return { ok: true, name: input.name, source: 'boot log', profile: r.profile, warnings: r.warnings };
  } catch (e) {
    return { ok: false, name: input.name, error: e instanceof Error ? e.message : String(e) };
  }
}

export interface PolicyAnswer {
  readonly policy: Policy;
  readonly plan?: Plan;
  readonly error?: string;
  /** Baseline of several hosts: the hosts whose removal changes the offered vIOMMU. */
  readonly limitedBy?: readonly string[];
}

function tryPlan(profiles: readonly HostProfile[], policy: Policy, vendors: readonly IommuVendor[]): { plan?: Plan; error?: string } {
  try {
    return { plan: plan({ profiles, policy, vendors }) };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

function specKey(p: Plan): string {
  return JSON.stringify([p.viommu.model, Object.entries(p.viommu.properties).sort(([a], [b]) => a.localeCompare(b))]);
}

/** `host` for one host (it copies that host), `baseline` always. */
export function planHosts(profiles: readonly HostProfile[], vendors: readonly IommuVendor[]): PolicyAnswer[] {
  if (profiles.length === 0) return [];
  const out: PolicyAnswer[] = [];
  if (profiles.length === 1) out.push({ policy: 'host', ...tryPlan(profiles, 'host', vendors) });
  const base = tryPlan(profiles, 'baseline', vendors);
  let limitedBy: string[] | undefined;
  if (base.plan && profiles.length > 1) {
    const key = specKey(base.plan);
    limitedBy = profiles
      .filter((_, i) => {
        const rest = tryPlan(
          profiles.filter((__, j) => j !== i),
          'baseline',
          vendors,
        );
        return rest.plan !== undefined && specKey(rest.plan) !== key;
      })
      .map((p) => p.name);
  }
  out.push({ policy: 'baseline', ...base, ...(limitedBy ? { limitedBy } : {}) });
  return out;
}
