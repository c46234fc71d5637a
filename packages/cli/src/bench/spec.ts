/** What the workloads produce, shared by the orchestrator and the worker processes. */

export interface Metric {
  value: number;
  unit: string;
  /** The C reference's figure measured in the same session (when it has one and a compiler was found). */
  c?: number;
  /** value / c, or c / value for figures where lower is better: the fraction of C's speed reached. */
  ratio_to_c?: number;
}

export interface WorkloadResult {
  metrics: Record<string, Metric>;
  /** Secondary numbers for the table and docs (not part of the JSON contract). */
  extra: Record<string, number | string>;
}

/** Worker process name -> the metric keys it produces, in output order. */
export const WORKERS: Record<string, readonly string[]> = {
  walk: ['walk'],
  walk_psc: ['walk_psc'],
  iotlb_hit: ['iotlb_hit'],
  map_unmap: ['map_4k', 'unmap_4k'],
  dma: ['dma_read_4k', 'dma_write_4k', 'dma_read_4k_sync', 'dma_write_4k_sync'],
  ioas_map_4k_calls: ['ioas_map_4k_calls'],
  ioas_map_random_1m_areas: ['ioas_map_random_1m_areas'],
  fault_roundtrip: ['fault_roundtrip', 'fault_p99_us', 'fault_p999_us', 'fault_max_us', 'fault_skeleton'],
  bytes_per_mapped_page: ['bytes_per_mapped_page'],
  bytes_per_mapped_page_uapi: ['bytes_per_mapped_page_uapi'],
  map_64g_huge: ['map_64g_huge_ms'],
  cli_help: ['cli_help_ratio'],
};

/** Metrics the C reference (c-reference.ts) measures too. */
export const C_METRICS: readonly string[] = ['walk', 'walk_psc', 'iotlb_hit', 'map_4k', 'unmap_4k', 'dma_read_4k', 'dma_write_4k'];

/** Our metric -> the C reference's figure it is compared with (itself unless listed here). */
export const C_COUNTERPART: Readonly<Record<string, string>> = { dma_read_4k_sync: 'dma_read_4k', dma_write_4k_sync: 'dma_write_4k' };
