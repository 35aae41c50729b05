// The one decoder of the binary transport (docs/transport.md; the encoder is
// app/api/transport.py): a message's JSON header, and its arrays as typed arrays.

const MAGIC = "UNRL";
const VERSION = 1;

/** float16 bits -> float32 value, for every one of the 65,536 patterns (built on first use). */
let HALF_TABLE = null;

function halfTable() {
  if (HALF_TABLE) return HALF_TABLE;
  HALF_TABLE = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    let value;
    if (exponent === 0) value = sign * 2 ** -14 * (fraction / 1024); // subnormal
    else if (exponent === 31) value = fraction ? NaN : sign * Infinity;
    else value = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
    HALF_TABLE[bits] = value;
  }
  return HALF_TABLE;
}

/** float16 bit patterns (Uint16Array) -> their values (Float32Array). */
export function widenHalf(bits) {
  const table = halfTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

/** An n-dimensional array: row-major `data` and its `shape`; `nonfinite` values counted by the server. */
export class NDArray {
  constructor(data, shape, nonfinite = 0) {
    this.data = data;
    this.shape = shape;
    this.nonfinite = nonfinite;
  }
}

function view(buffer, { dtype, shape, offset, nonfinite }) {
  const count = shape.reduce((a, b) => a * b, 1);
  if (dtype === "f4") return new NDArray(new Float32Array(buffer, offset, count), shape, nonfinite);
  if (dtype === "f8") return new NDArray(new Float64Array(buffer, offset, count), shape, nonfinite);
  if (dtype === "f2") {
    // a view where the browser has float16 arrays (no copy: ~25 ms less for the largest
    // trace's gates), else each value widened through a table
    if (typeof Float16Array !== "undefined") return new NDArray(new Float16Array(buffer, offset, count), shape, nonfinite);
    return new NDArray(widenHalf(new Uint16Array(buffer, offset, count)), shape, nonfinite);
  }
  throw new Error(`transport: unknown dtype ${dtype}`);
}

/** True for a binary message of this format. */
export function isBinaryFrame(buffer) {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < 12) return false;
  const head = new Uint8Array(buffer, 0, 4);
  return String.fromCharCode(...head) === MAGIC;
}

/**
 * The frame in one binary message: its JSON with every {"$array": i} replaced by an NDArray
 * whose data views the message's bytes (float16 widened to a new Float32Array).
 * @param {ArrayBuffer} buffer
 */
export function decodeFrame(buffer) {
  if (!isBinaryFrame(buffer)) throw new Error("transport: not an Unroll binary frame");
  const info = new DataView(buffer);
  const version = info.getUint8(4);
  if (version !== VERSION) throw new Error(`transport: format ${version}, expected ${VERSION}`);
  const size = info.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 12, size)));
  const arrays = header.arrays.map((a) => view(buffer, a));
  const walk = (value) => {
    if (Array.isArray(value)) return value.map(walk);
    if (value && typeof value === "object") {
      if ("$array" in value && Object.keys(value).length === 1) return arrays[value.$array];
      const out = {};
      for (const [key, v] of Object.entries(value)) out[key] = walk(v);
      return out;
    }
    return value;
  };
  return walk(header.frame);
}
