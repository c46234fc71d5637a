/** Bytes as little-endian 32-bit words, the way specifications print descriptors (dword 0 first). */
export function hexWords(bytes: Uint8Array): string {
  const words: string[] = [];
  for (let i = 0; i < bytes.length; i += 4) {
    let w = 0;
    for (let b = Math.min(3, bytes.length - i - 1); b >= 0; b--) w = w * 256 + bytes[i + b];
    words.push(w.toString(16).padStart(Math.min(4, bytes.length - i) * 2, '0'));
  }
  return words.join(' ');
}
