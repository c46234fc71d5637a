import { readdirSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, buildPage, chromiumPath, serve } from './harness.js';

const CHROMIUM = chromiumPath();
// CI installs Chromium (.ci/run): there the browser tests must run, never quietly skip.
if (!CHROMIUM && process.env.CI) throw new Error('web e2e: CI must have Chromium (.ci/run installs it)');
if (!CHROMIUM) console.warn('web e2e: no Chromium found (apt-get install chromium, or set CHROMIUM_PATH): the browser tests do not run');

const VTD_READ = 'DMAR: [DMA Read NO_PASID] Request device [5c:00.0] fault addr 0x7ff000 [fault reason 0x06] PTE Read access is not set';
const VTD_WRITE = 'DMAR: [DMA Write NO_PASID] Request device [00:02.0] fault addr 0x1000 [fault reason 0x05] PTE Write access is not set';
const BOOT_LOG = [
  '[    0.011234] DMAR: dmar0: reg_base_addr aa3fc000 ver 6:0 cap 9ed008c40780466 ecap 3ee9e86f050df',
  '[    0.412345] pci 0000:00:02.0: Adding to iommu group 0',
].join('\n');

describe.skipIf(!CHROMIUM)('the page in Chromium', () => {
  let dist = '';
  let server: Server;
  let base = '';
  let browser: Browser;
  /** Every request the page made that did not go to the page's own server. */
  const outside: string[] = [];

  beforeAll(async () => {
    dist = await buildPage();
    ({ server, url: base } = await serve(dist));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((ok) => server?.close(ok));
  });

  async function open(hash = '', scheme: 'light' | 'dark' = 'light'): Promise<Page> {
    const page = await browser.newPage({ colorScheme: scheme, viewport: { width: 1200, height: 900 } });
    page.on('request', (r) => {
      if (!r.url().startsWith(base) && !r.url().startsWith('data:')) outside.push(r.url());
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}${hash}`);
    await page.waitForSelector('main h2');
    expect(errors).toEqual([]);
    return page;
  }

  it('decodes pasted fault lines into fields and the Linux line, grouped by device', async () => {
    const page = await open('#decode');
    await page.fill('#decode-input', `${VTD_READ}\n${VTD_WRITE}\n${VTD_READ.replace('0x7ff000', '0x800000')}`);
    await page.click('button[type=submit]');
    await page.waitForSelector('.group');
    const groups = await page.$$eval('.group', (els) => els.map((e) => [e.getAttribute('data-device'), e.querySelectorAll('.item').length]));
    expect(groups).toEqual([
      ['0000:5c:00.0', 2],
      ['0000:00:02.0', 1],
    ]);
    const first = page.locator('.item').first();
    expect(await first.getAttribute('data-vendor')).toBe('vtd');
    expect(await first.locator('table').innerText()).toMatch(/FR\s+6/);
    expect(await first.locator('.linux pre').innerText()).toBe(VTD_READ);
    expect(page.url()).toContain('#decode=DMAR');
    await page.screenshot({ path: join(ARTIFACTS, 'decode.png'), fullPage: true });
    await page.close();
  });

  it('a pasted fault shows the record the hardware wrote as a bit diagram, and what to check next', async () => {
    const amd = 'nvme 0000:01:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000e address=0xfffd0000 flags=0x0020]';
    const page = await open(`#decode=${encodeURIComponent(`${VTD_READ}\n${amd}`)}`);
    await page.waitForSelector('.item .advice');
    const vtd = page.locator('.item[data-vendor=vtd]');
    // The fault recording register: FR (bits 103:96, so 39:32 of the upper qword) is 6, T1 (read) is 1.
    expect(await vtd.locator('figure.word figcaption').allInnerTexts()).toEqual([expect.stringMatching(/^FRCD qword 0/), expect.stringMatching(/^FRCD qword 1/)]);
    expect(await vtd.locator('.bits .field[data-field=FR] .value').innerText()).toBe('6');
    expect(await vtd.locator('.bits .field[data-field=T1] .value').innerText()).toBe('1');
    const checks = await vtd.locator('.advice ol.checks li').allInnerTexts();
    expect(checks[0]).toContain('lspci -vvs 5c:00.0');
    expect(checks[1]).toBe('Which address: 0x7ff000, a read without a PASID.');
    const causes = (await vtd.locator('.advice ul.causes li').allInnerTexts()).join('\n');
    expect(causes).toMatch(/no present bit/);
    expect(causes).toMatch(/already freed or unmapped/);
    // The AMD-Vi line: the event log entry with its flags, RW set and PR clear.
    const a = page.locator('.item[data-vendor=amd-vi]');
    expect(await a.locator('.bits .field[data-field=RW] .value').innerText()).toBe('1');
    expect(await a.locator('.bits .field[data-field=PR] .value').innerText()).toBe('0');
    expect(await a.locator('.advice ul.causes li').first().innerText()).toMatch(/^PR clear/);
    await page.screenshot({ path: join(ARTIFACTS, 'decode-fault-advice.png'), fullPage: true });
    await page.close();
  });

  it('restores a decoded line from a shared link', async () => {
    const page = await open(`#decode=${encodeURIComponent('0xd2008c40660462')}&vendor=vtd&kind=cap`);
    await page.waitForSelector('.item');
    expect(await page.inputValue('#decode-input')).toBe('0xd2008c40660462');
    expect(await page.locator('.item').getAttribute('data-kind')).toBe('cap');
    // The register as a bit diagram: MGAW (bits 21:16) of this real client CAP is 0x26, SAGAW (12:8) is 4.
    expect(await page.locator('.bits .field[data-field=MGAW] .value').innerText()).toBe('0x26');
    expect(await page.locator('.bits .field[data-field=SAGAW] .value').innerText()).toBe('4');
    await page.screenshot({ path: join(ARTIFACTS, 'decode-register.png'), fullPage: true });
    await page.close();
  });

  it('probes a pasted boot log and shows the plan with QEMU and libvirt output', async () => {
    const page = await open('#plan');
    await page.fill('#plan-input', BOOT_LOG);
    await page.click('#plan-add');
    await page.waitForSelector('.plan[data-policy=host]');
    expect(await page.locator('.host h3').first().innerText()).toContain('pasted text 1');
    expect(await page.locator('.host table').first().innerText()).toContain('dmar0');
    const qemu = await page.locator('.plan[data-policy=host] pre.qemu').innerText();
    expect(qemu).toContain('-device intel-iommu');
    expect(qemu).toContain('host=0000:00:02.0');
    expect(await page.locator('.plan[data-policy=host] pre.libvirt').innerText()).toContain("<iommu model='intel'");
    await page.screenshot({ path: join(ARTIFACTS, 'plan.png'), fullPage: true });
    await page.close();
  });

  it('walks an IOVA level by level with the entries the model stores, then hits the IOTLB', async () => {
    const page = await open('#walk&preset=vtd:4');
    await page.waitForSelector('.levels li');
    expect(await page.locator('.iotlb').getAttribute('data-iotlb')).toBe('miss');
    const levels = await page.$$eval('.levels li', (els) => els.map((e) => [e.getAttribute('data-level'), e.getAttribute('data-kind')]));
    expect(levels.at(-1)).toEqual(['0', 'leaf']);
    expect(levels.slice(0, -1).every(([, k]) => k === 'table')).toBe(true);
    // A second-stage leaf of a read/write mapping: R and W (bits 1:0) set, drawn as the last two bits.
    const bits = await page.locator('.levels li').last().locator('.entry-bits').getAttribute('aria-label');
    expect(bits?.endsWith('11')).toBe(true);
    expect(await page.locator('.result.ok').innerText()).toMatch(/-> physical 0x[0-9a-f]+/);
    await page.click('#walk-go');
    await page.waitForSelector('.iotlb[data-iotlb=hit]');
    await page.screenshot({ path: join(ARTIFACTS, 'walk.png'), fullPage: true });
    await page.fill('#walk-iova', '0x7000000000');
    await page.click('#walk-go');
    await page.waitForSelector('pre.linux');
    expect(await page.locator('pre.linux').innerText()).toMatch(/^DMAR: \[DMA Read NO_PASID\] Request device/);
    await page.screenshot({ path: join(ARTIFACTS, 'walk-fault.png'), fullPage: true });
    await page.close();
  });

  it('walks a nested domain: both stages, each stage-1 table page with its own stage-2 walk', async () => {
    for (const [preset, first] of [['vtd:4', 'Level 3'], ['smmuv3:2', 'CD 0, dword 1 (TTB0), ASID 7']] as const) {
      const page = await open(`#walk&preset=${preset}&domain=nested`);
      await page.waitForSelector('.stage[data-stage="stage 2"]');
      expect(await page.inputValue('#walk-domain')).toBe('nested');
      expect(await page.locator('#walk-info').innerText()).toContain('nested domain');
      const s1 = page.locator('.stage[data-stage="stage 1"] > ol.levels > li');
      const kinds = await s1.evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
      expect(kinds.at(-1)).toBe('leaf');
      expect(kinds.slice(0, -1).every((k) => k === 'table')).toBe(true);
      expect(await s1.first().locator(':scope > p > strong').innerText()).toBe(first);
      // Every stage-1 table page is found by a stage-2 walk that ends on a leaf; open the first one.
      const walks = page.locator('.stage[data-stage="stage 1"] details.stage2-of');
      expect(await walks.count()).toBe(kinds.length);
      for (const last of await walks.evaluateAll((els) => els.map((d) => d.querySelector('ol > li:last-child')?.getAttribute('data-kind')))) expect(last).toBe('leaf');
      await walks.first().locator('summary').click();
      expect(await walks.first().locator('ol.nested > li').first().isVisible()).toBe(true);
      const s2 = await page.$$eval('.stage[data-stage="stage 2"] > ol.levels > li', (els) => els.map((e) => e.getAttribute('data-kind')));
      expect(s2.at(-1)).toBe('leaf');
      expect(await page.locator('.result.ok').innerText()).toMatch(/^0x40001000 -> physical 0x[0-9a-f]+/);
      await page.screenshot({ path: join(ARTIFACTS, `walk-nested-${preset.split(':')[0]}.png`), fullPage: true });
      await page.close();
    }
  });

  it('follows a page request from the device to its retry', async () => {
    const page = await open('#pipeline');
    await page.waitForSelector('#pipeline-steps li:has-text("The device retries")');
    const titles = await page.$$eval('#pipeline-steps li > strong', (els) => els.map((e) => e.textContent));
    expect(titles).toContain('The unit writes a page-request record');
    expect(titles).toContain('User space reads the fault fd');
    expect(titles).toContain('The driver responds to the device');
    await page.selectOption('#pipeline-answer', 'invalid');
    await page.waitForSelector('#pipeline-steps li:has-text("The device gives up")');
    expect(page.url()).toContain('answer=invalid');
    await page.screenshot({ path: join(ARTIFACTS, 'pipeline.png'), fullPage: true });
    await page.close();
  });

  it('works from the keyboard alone and in the dark scheme', async () => {
    const page = await open('#decode', 'dark');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(20, 22, 26)');
    await page.keyboard.press('Tab'); // skip link
    await page.keyboard.press('Tab'); // Decode
    await page.keyboard.press('Tab'); // Probe & plan
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Probe & plan');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#plan-input');
    expect(await page.locator('nav a[aria-current=page]').innerText()).toBe('Probe & plan');
    await page.screenshot({ path: join(ARTIFACTS, 'dark.png'), fullPage: true });
    await page.close();
  });

  it('never asks anything of another host, and fits its size budget', () => {
    expect(outside).toEqual([]);
    const assets = join(dist, 'assets');
    const js = readdirSync(assets).filter((f) => f.endsWith('.js')).reduce((n, f) => n + statSync(join(assets, f)).size, 0);
    // The budget stated in the package README: what the page needs (about 716 KB) and some 52 KB for core to grow.
    expect(js).toBeLessThanOrEqual(750 * 1024);
  });
});
