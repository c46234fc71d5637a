/** What the workloads produce, shared by the orchestrator and the worker processes. */

export interface Metric {
  value: number;
  unit: string;
}

export interface WorkloadResult {
  metrics: Record<string, Metric>;
  /** Secondary numbers for the table and docs (not part of the JSON contract). */
  extra: Record<string, number | string>;
}

/** Worker process name -> the metric keys it produces, in output order. */
export const WORKERS: Record<string, readonly string[]> = {
  walk: ['walk'],
  iotlb_hit: ['iotlb_hit'],
  map_unmap: ['map_4k', 'unmap_4k'],
  ioas_map_4k_calls: ['ioas_map_4k_calls'],
  fault_roundtrip: ['fault_roundtrip', 'fault_p99_us'],
  bytes_per_mapped_page: ['bytes_per_mapped_page'],
};
