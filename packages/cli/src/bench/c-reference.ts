/**
 * The C reference of the benchmark: the same algorithms as the TypeScript hot paths, written plainly in
 * C, compiled at bench time (`cc -O2`) into a temporary directory and run in the same session, so that
 * every ratio compares two measurements taken under the same machine load.
 *
 * What "the same algorithm" means for each figure:
 * - walk: a 4-level radix walk of a second-stage table (64-bit entries, R|W present, PS bit 7), every
 *   level read from table memory, no paging-structure cache, no IOTLB.
 * - walk_psc: the same walk behind the same paging-structure cache as the VT-d format (1,024 direct-mapped
 *   slots keyed by the 2 MiB region, leaf table pointer and upper-level permissions; the leaf PTE is read).
 * - iotlb_hit: the same direct-mapped IOTLB (4,096 32-byte entries, slot = page ^ page >> 32 ^ tag *
 *   0x9e3779b1, key page + tag + PASID, permission test) over 512 pages.
 * - map_4k / unmap_4k: one map of 1 GiB in 4 KiB pages written in runs per table page (tables taken
 *   from a free list and zeroed), and one range unmap that clears runs and releases emptied tables
 *   (a table partly covered is scanned for live entries, as the format does; a leaf table covered
 *   whole is counted from its live count and released without clearing it first, at the end of the
 *   unmap with runs of consecutive frames zeroed by one memset, as the engine and its frame allocator do).
 * - dma_read_4k / dma_write_4k: an IOTLB hit and a 4 KiB memcpy between simulated memory and the
 *   caller's buffer, at random pages of a 512-page mapping.
 * The random pages come from the same xorshift32 (seed 2463534242) as the TypeScript workloads.
 * It prints one JSON line in the worker format ({ metrics, extra }).
 */
export const C_REFERENCE_SOURCE = String.raw`
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GIB_PAGES 262144u
#define PA_BASE_PFN GIB_PAGES
#define SEED 2463534242u
#define PTE_R 1ull
#define PTE_W 2ull
#define PTE_PS (1ull << 7)
#define ADDR_MASK 0x000ffffffffff000ull
#define POOL_FRAMES 1024u
#define PSC_SLOTS 1024u
#define TLB_SIZE 4096u
#define DATA_PAGES 512u

static uint64_t *pool;          /* table memory: POOL_FRAMES frames of 512 entries */
static uint32_t next_frame = 1; /* frame 0 is never handed out */
static uint32_t free_list[POOL_FRAMES];
static uint32_t free_count;
static uint16_t live[POOL_FRAMES]; /* present entries per table, as the engine keeps them */
static uint64_t root;
static long table_pages;

/* CPU time of the process, as the TypeScript side measures (the machine may be shared). */
static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static uint64_t alloc_table(void) {
  uint32_t f = free_count ? free_list[--free_count] : next_frame++;
  if (f >= POOL_FRAMES) { fprintf(stderr, "table pool exhausted\n"); exit(1); }
  memset(pool + (uint64_t)f * 512, 0, 4096);
  live[f] = 0;
  table_pages++;
  return f;
}

static void release_table(uint64_t f) {
  memset(pool + f * 512, 0, 4096);
  free_list[free_count++] = (uint32_t)f;
  table_pages--;
}

/* Leaf tables an unmap covers whole are released at the end of the unmap, as the engine does: a run of
 * consecutive frames (either direction) is zeroed with one memset, its frames freed in the order they
 * were emptied. */
static uint32_t run_first, run_last, run_count;

static void flush_releases(void) {
  if (!run_count) return;
  uint32_t lo = run_first < run_last ? run_first : run_last;
  memset(pool + (uint64_t)lo * 512, 0, (size_t)run_count * 4096);
  int32_t step = run_last >= run_first ? 1 : -1;
  for (uint32_t i = 0, f = run_first; i < run_count; i++, f += step) free_list[free_count++] = f;
  table_pages -= run_count;
  run_count = 0;
}

static void release_later(uint32_t f) {
  if (run_count == 1 && (f == run_last + 1 || f + 1 == run_last)) { run_last = f; run_count++; return; }
  if (run_count > 1) {
    int32_t step = run_last >= run_first ? 1 : -1;
    if (f == run_last + step) { run_last = f; run_count++; return; }
  }
  flush_releases();
  run_first = run_last = f;
  run_count = 1;
}

static int map_level(uint64_t table, int level, uint64_t iova, uint64_t pa, uint64_t n, uint64_t attr) {
  uint64_t *t = pool + table * 512;
  if (level == 0) {
    uint64_t *p = t + (iova & 511);
    for (uint64_t i = 0; i < n; i++) {
      if (p[i] & (PTE_R | PTE_W)) return -17;
      p[i] = ((pa + i) << 12) | attr;
    }
    live[table] += (uint16_t)n;
    return 0;
  }
  uint64_t span = 1ull << (9 * level);
  uint64_t idx = (iova >> (9 * level)) & 511;
  while (n > 0) {
    uint64_t off = iova & (span - 1), take = n < span - off ? n : span - off;
    uint64_t e = t[idx], child;
    if (!(e & (PTE_R | PTE_W))) {
      child = alloc_table();
      t[idx] = (child << 12) | PTE_R | PTE_W;
      live[table]++;
    } else if (e & PTE_PS) return -17;
    else child = (e & ADDR_MASK) >> 12;
    int r = map_level(child, level - 1, iova, pa, take, attr);
    if (r) return r;
    iova += take; pa += take; n -= take; idx++;
  }
  return 0;
}

static int table_empty(uint64_t table) {
  return live[table] == 0;
}

static uint64_t unmap_level(uint64_t table, int level, uint64_t iova, uint64_t n) {
  uint64_t *t = pool + table * 512;
  if (level == 0) {
    uint64_t *p = t + (iova & 511), cnt = 0;
    /* A run covering the whole table takes the count instead of scanning, as the engine does. */
    if (n == 512) cnt = live[table];
    else for (uint64_t i = 0; i < n; i++) cnt += (p[i] & (PTE_R | PTE_W)) != 0;
    memset(p, 0, n * 8);
    live[table] -= (uint16_t)cnt;
    return cnt;
  }
  uint64_t span = 1ull << (9 * level), removed = 0;
  uint64_t idx = (iova >> (9 * level)) & 511;
  while (n > 0) {
    uint64_t off = iova & (span - 1), take = n < span - off ? n : span - off;
    uint64_t e = t[idx];
    if (e & (PTE_R | PTE_W)) {
      uint64_t child = (e & ADDR_MASK) >> 12;
      if (level == 1 && take == span) {
        /* A leaf table covered whole: its live count is what it maps, and it is released without
         * clearing its entries first (release_table scrubs it), as the engine does. */
        removed += live[child];
        live[child] = 0;
        t[idx] = 0; live[table]--; release_later((uint32_t)child);
      } else {
        removed += unmap_level(child, level - 1, iova, take);
        if (take == span || table_empty(child)) { flush_releases(); t[idx] = 0; live[table]--; release_table(child); }
      }
    }
    iova += take; n -= take; idx++;
  }
  return removed;
}

static uint64_t unmap_range(uint64_t iova, uint64_t n) {
  uint64_t removed = unmap_level(root, 3, iova, n);
  flush_releases();
  return removed;
}

/* The three upper levels of a walk: the leaf table, with the permissions they grant in *perm. */
static inline uint64_t *leaf_table(uint64_t iova, uint64_t *perm) {
  uint64_t table = root;
  uint64_t p = PTE_R | PTE_W | 4;
  for (int level = 3; level > 0; level--) {
    uint64_t e = pool[table * 512 + ((iova >> (9 * level)) & 511)];
    if (!(e & (PTE_R | PTE_W)) || (e & PTE_PS)) return NULL;
    p &= e;
    table = (e & ADDR_MASK) >> 12;
  }
  *perm = p;
  return pool + table * 512;
}

static inline int leaf(const uint64_t *t, uint64_t iova, uint64_t p, uint64_t *pfn, uint32_t *perm) {
  uint64_t e = t[iova & 511];
  if (!(e & (PTE_R | PTE_W))) return 0;
  *pfn = (e & ADDR_MASK) >> 12;
  *perm = (uint32_t)(p & e & 7);
  return 1;
}

/* The full walk: every level read from table memory. */
static inline int walk(uint64_t iova, uint64_t *pfn, uint32_t *perm) {
  uint64_t p;
  const uint64_t *t = leaf_table(iova, &p);
  return t && leaf(t, iova, p, pfn, perm);
}

static int32_t psc_key[PSC_SLOTS];
static uint64_t *psc_leaf[PSC_SLOTS];
static uint64_t psc_perm[PSC_SLOTS];

static inline int walk_psc(uint64_t iova, uint64_t *pfn, uint32_t *perm) {
  uint32_t region = (uint32_t)(iova >> 9), s = region & (PSC_SLOTS - 1);
  if (psc_key[s] == (int32_t)region && leaf(psc_leaf[s], iova, psc_perm[s], pfn, perm)) return 1;
  uint64_t p;
  uint64_t *t = leaf_table(iova, &p);
  if (!t) return 0;
  psc_key[s] = (int32_t)region;
  psc_leaf[s] = t;
  psc_perm[s] = p;
  return leaf(t, iova, p, pfn, perm);
}

struct tlb_entry { double page; int32_t tag, pasid; double out; int32_t perm, pad; };
static struct tlb_entry tlb[TLB_SIZE];

static inline uint32_t tlb_slot(int32_t tag, uint64_t page) {
  return ((uint32_t)page ^ (uint32_t)(page >> 32) ^ ((uint32_t)tag * 0x9e3779b1u)) & (TLB_SIZE - 1);
}

static inline int translate(int32_t tag, int32_t pasid, uint64_t page, uint32_t perm, uint64_t *pfn) {
  struct tlb_entry *e = &tlb[tlb_slot(tag, page)];
  if (e->page == (double)page && e->tag == tag && e->pasid == pasid && ((uint32_t)e->perm & perm) == perm) {
    *pfn = (uint64_t)e->out;
    return 1;
  }
  uint32_t granted;
  if (!walk(page, pfn, &granted) || (granted & perm) != perm) return 0;
  e->page = (double)page; e->tag = tag; e->pasid = pasid; e->out = (double)*pfn; e->perm = (int32_t)granted;
  return 1;
}

static uint32_t xs;
static inline uint32_t xorshift(void) {
  xs ^= xs << 13; xs ^= xs >> 17; xs ^= xs << 5;
  return xs;
}

enum { MODE_WALK, MODE_PSC, MODE_TLB };

static double translate_loop(int mode, uint32_t count, uint32_t mask) {
  xs = SEED;
  uint64_t pfn = 0;
  uint32_t perm = 0;
  double t0 = now_ms();
  for (uint32_t i = 0; i < count; i++) {
    uint32_t page = xorshift() & mask;
    int ok = mode == MODE_WALK ? walk(page, &pfn, &perm) : mode == MODE_PSC ? walk_psc(page, &pfn, &perm) : translate(1, -1, page, 1, &pfn);
    if (!ok || pfn != PA_BASE_PFN + page) { fprintf(stderr, "translation of page %u failed\n", page); exit(1); }
  }
  return now_ms() - t0;
}

static uint8_t data[DATA_PAGES * 4096];
static uint8_t buffer[4096];

static double dma_loop(int write, uint32_t count) {
  /* The 512 data pages sit at PA 1 GiB + page, stored from data[0]. */
  xs = SEED;
  uint64_t pfn = 0;
  unsigned sum = 0;
  double t0 = now_ms();
  for (uint32_t i = 0; i < count; i++) {
    uint32_t page = xorshift() & (DATA_PAGES - 1);
    if (!translate(1, -1, page, write ? 2 : 1, &pfn)) { fprintf(stderr, "dma translation failed\n"); exit(1); }
    uint8_t *frame = data + (pfn - PA_BASE_PFN) * 4096;
    if (write) { buffer[0] = (uint8_t)i; memcpy(frame, buffer, 4096); }
    else { memcpy(buffer, frame, 4096); sum += buffer[i & 4095]; }
  }
  double ms = now_ms() - t0;
  if (sum == 0xffffffffu) puts("");
  return ms;
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  uint32_t translations = quick ? 1000000u : 10000000u;
  uint32_t rounds = quick ? 2 : 40;
  uint32_t dma = quick ? 200000u : 2000000u;
  pool = aligned_alloc(4096, (size_t)POOL_FRAMES * 4096);
  if (!pool) return 1;
  memset(data, 0xa5, sizeof data);

  root = alloc_table();
  for (uint32_t r = 0; r < 2; r++) {
    if (map_level(root, 3, 0, PA_BASE_PFN, GIB_PAGES, PTE_R | PTE_W)) return 1;
    if (unmap_range(0, GIB_PAGES) != GIB_PAGES) return 1;
  }
  double map_ms = 0, unmap_ms = 0;
  for (uint32_t r = 0; r < rounds; r++) {
    double t0 = now_ms();
    if (map_level(root, 3, 0, PA_BASE_PFN, GIB_PAGES, PTE_R | PTE_W)) return 1;
    double t1 = now_ms();
    if (unmap_range(0, GIB_PAGES) != GIB_PAGES) return 1;
    double t2 = now_ms();
    map_ms += t1 - t0;
    unmap_ms += t2 - t1;
  }
  if (map_level(root, 3, 0, PA_BASE_PFN, GIB_PAGES, PTE_R | PTE_W)) return 1;

  translate_loop(MODE_WALK, translations / 5, GIB_PAGES - 1);
  double walk_ms = translate_loop(MODE_WALK, translations, GIB_PAGES - 1);
  for (uint32_t s = 0; s < PSC_SLOTS; s++) psc_key[s] = -1;
  translate_loop(MODE_PSC, translations / 5, GIB_PAGES - 1);
  double psc_ms = translate_loop(MODE_PSC, translations, GIB_PAGES - 1);
  for (uint32_t s = 0; s < TLB_SIZE; s++) tlb[s].page = -1;
  translate_loop(MODE_TLB, translations / 5, 511);
  double tlb_ms = translate_loop(MODE_TLB, translations, 511);
  dma_loop(0, dma / 5);
  double read_ms = dma_loop(0, dma);
  dma_loop(1, dma / 5);
  double write_ms = dma_loop(1, dma);

  double pages = (double)rounds * GIB_PAGES;
  printf("{\"metrics\":{"
         "\"walk\":{\"value\":%.6g,\"unit\":\"translations/s\"},"
         "\"walk_psc\":{\"value\":%.6g,\"unit\":\"translations/s\"},"
         "\"iotlb_hit\":{\"value\":%.6g,\"unit\":\"translations/s\"},"
         "\"map_4k\":{\"value\":%.6g,\"unit\":\"pages/s\"},"
         "\"unmap_4k\":{\"value\":%.6g,\"unit\":\"pages/s\"},"
         "\"dma_read_4k\":{\"value\":%.6g,\"unit\":\"bytes/s\"},"
         "\"dma_write_4k\":{\"value\":%.6g,\"unit\":\"bytes/s\"}},"
         "\"extra\":{\"table_pages\":%ld}}\n",
         translations / walk_ms * 1e3, translations / psc_ms * 1e3, translations / tlb_ms * 1e3,
         pages / map_ms * 1e3, pages / unmap_ms * 1e3,
         dma * 4096.0 / read_ms * 1e3, dma * 4096.0 / write_ms * 1e3, table_pages);
  return 0;
}
`;
