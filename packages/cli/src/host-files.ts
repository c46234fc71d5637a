/**
 * Reading a host's files for `ioasid probe --sysfs`: the live root, a directory a capture was unpacked into,
 * or the capture archive itself (a ustar archive, gzip-compressed, as `ioasid capture` writes it). Symbolic
 * links are followed the way the kernel's sysfs links are (relative to the link's directory), so a capture
 * reads exactly like the host it came from.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, posix } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { SysfsReader } from '@ioasid/planner';

/** Largest file and archive the readers accept: a capture is a few MiB; anything above is not one. */
const MAX_FILE = 1 << 20;
const MAX_ARCHIVE = 256 << 20;

/** The live host or an unpacked capture: paths are relative to `root`. */
export class DirReader implements SysfsReader {
  constructor(private readonly root: string) {}
  private abs(p: string): string {
    return join(this.root, p);
  }
  list(path: string): string[] | null {
    try {
      return readdirSync(this.abs(path));
    } catch {
      return null;
    }
  }
  readText(path: string): string | null {
    const b = this.readBytes(path);
    return b === null ? null : Buffer.from(b).toString('utf8');
  }
  readBytes(path: string): Uint8Array | null {
    try {
      const st = lstatSync(this.abs(path), { throwIfNoEntry: false });
      if (st?.isDirectory()) return null;
      // sysfs files report a size of 4096 whatever they hold; read, and refuse what no sysfs file is.
      const b = readFileSync(this.abs(path));
      return b.length > MAX_FILE ? null : new Uint8Array(b);
    } catch {
      return null;
    }
  }
  readlink(path: string): string | null {
    try {
      return readlinkSync(this.abs(path));
    } catch {
      return null;
    }
  }
}

interface Entry {
  type: 'file' | 'dir' | 'link';
  data?: Uint8Array;
  link?: string;
}

function norm(p: string): string {
  return posix.normalize(p).replace(/^\/+/, '').replace(/\/+$/, '');
}

/** A capture archive held in memory. */
export class ArchiveReader implements SysfsReader {
  private readonly entries = new Map<string, Entry>();
  private readonly children = new Map<string, Set<string>>();

  constructor(files: ReadonlyArray<{ path: string } & Entry>) {
    for (const f of files) this.add(norm(f.path), f);
  }

  private add(path: string, e: Entry): void {
    if (!path || path.startsWith('..')) return;
    this.entries.set(path, e);
    let cur = path;
    while (cur.includes('/')) {
      const dir = cur.slice(0, cur.lastIndexOf('/'));
      const set = this.children.get(dir) ?? new Set<string>();
      set.add(cur.slice(dir.length + 1));
      this.children.set(dir, set);
      if (!this.entries.has(dir)) this.entries.set(dir, { type: 'dir' });
      cur = dir;
    }
    const top = this.children.get('') ?? new Set<string>();
    top.add(cur);
    this.children.set('', top);
  }

  /** The path with every link in it followed (at most 40, as the kernel's path walk). */
  private resolve(path: string): string | null {
    let parts = norm(path).split('/').filter(Boolean);
    let done: string[] = [];
    for (let hops = 0; parts.length; ) {
      const next = [...done, parts[0]].join('/');
      const e = this.entries.get(next);
      if (e?.type === 'link' && e.link !== undefined) {
        if (++hops > 40) return null;
        const target = e.link.startsWith('/') ? norm(e.link) : norm(posix.join(done.join('/'), e.link));
        parts = [...target.split('/').filter(Boolean), ...parts.slice(1)];
        done = [];
        continue;
      }
      done.push(parts[0]);
      parts = parts.slice(1);
    }
    return done.join('/');
  }

  list(path: string): string[] | null {
    const p = this.resolve(path);
    if (p === null) return null;
    if (p !== '' && this.entries.get(p)?.type !== 'dir') return null;
    return [...(this.children.get(p) ?? [])];
  }
  readBytes(path: string): Uint8Array | null {
    const p = this.resolve(path);
    const e = p === null ? undefined : this.entries.get(p);
    return e?.type === 'file' && e.data ? e.data : null;
  }
  readText(path: string): string | null {
    const b = this.readBytes(path);
    return b === null ? null : Buffer.from(b).toString('utf8');
  }
  readlink(path: string): string | null {
    const parent = path.includes('/') ? this.resolve(path.slice(0, path.lastIndexOf('/'))) : '';
    if (parent === null) return null;
    const e = this.entries.get(norm(posix.join(parent, path.slice(path.lastIndexOf('/') + 1))));
    return e?.type === 'link' ? (e.link ?? null) : null;
  }
}

// ---------------------------------------------------------------------------------------------
// ustar, as POSIX.1-1988 defines it: 512-byte headers, octal numbers, names split into prefix/name.
// ---------------------------------------------------------------------------------------------

export interface ArchiveFile {
  readonly path: string;
  readonly type: 'file' | 'dir' | 'link';
  readonly data?: Uint8Array;
  readonly link?: string;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function header(f: ArchiveFile, mtime: number): Uint8Array {
  const h = new Uint8Array(512);
  const put = (s: string, off: number, len: number) => {
    const b = Buffer.from(s, 'utf8');
    if (b.length > len) throw new Error(`tar: "${s}" is longer than ${len} bytes`);
    h.set(b, off);
  };
  let name = f.type === 'dir' ? `${f.path}/` : f.path;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 2);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
  }
  put(name, 0, 100);
  put(octal(f.type === 'dir' ? 0o755 : f.type === 'link' ? 0o777 : 0o444, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(f.type === 'file' ? (f.data?.length ?? 0) : 0, 12), 124, 12);
  put(octal(mtime, 12), 136, 12);
  put('        ', 148, 8);
  put(f.type === 'file' ? '0' : f.type === 'link' ? '2' : '5', 156, 1);
  if (f.link) put(f.link, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put(prefix, 345, 155);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

/** A gzip-compressed ustar archive of the files. */
export function writeArchive(files: readonly ArchiveFile[], mtime = Math.floor(Date.now() / 1000)): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of files) {
    parts.push(header(f, mtime));
    if (f.type === 'file' && f.data?.length) {
      parts.push(f.data);
      const pad = (512 - (f.data.length % 512)) % 512;
      if (pad) parts.push(new Uint8Array(pad));
    }
  }
  parts.push(new Uint8Array(1024));
  return new Uint8Array(gzipSync(Buffer.concat(parts)));
}

/** Reads a gzip-compressed (or plain) ustar archive; throws Error with what is wrong. */
export function readArchive(bytes: Uint8Array): ArchiveReader {
  const gz = bytes[0] === 0x1f && bytes[1] === 0x8b;
  const tar = gz ? new Uint8Array(gunzipSync(bytes, { maxOutputLength: MAX_ARCHIVE })) : bytes;
  const files: ArchiveFile[] = [];
  const str = (off: number, len: number) => {
    const s = Buffer.from(tar.subarray(off, off + len)).toString('utf8');
    const z = s.indexOf('\0');
    return z < 0 ? s : s.slice(0, z);
  };
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    const want = Number.parseInt(str(off + 148, 8).trim(), 8);
    if (sum !== want) throw new Error(`not a tar archive: bad header checksum at byte ${off}`);
    const size = Number.parseInt(str(off + 124, 12).trim() || '0', 8);
    if (!Number.isSafeInteger(size) || size < 0 || off + 512 + size > tar.length) throw new Error(`tar: entry at byte ${off} runs past the end of the archive`);
    const prefix = str(off + 345, 155);
    const name = (prefix ? `${prefix}/` : '') + str(off, 100);
    const flag = String.fromCharCode(h[156]);
    if (flag === '0' || flag === '\0') files.push({ path: name, type: 'file', data: tar.slice(off + 512, off + 512 + size) });
    else if (flag === '2') files.push({ path: name, type: 'link', link: str(off + 157, 100) });
    else if (flag === '5') files.push({ path: name, type: 'dir' });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return new ArchiveReader(files.map((f) => ({ ...f })));
}
