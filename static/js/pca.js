// Principal component analysis of a few hundred hidden states: the covariance (H x H) and
// its eigenvectors by cyclic Jacobi rotations, exact to rounding for the symmetric
// matrices a run gives (H <= 128). Used by the trajectory view; no DOM here.

const SWEEPS = 60; // Jacobi converges quadratically: a dozen sweeps is typical
const TOLERANCE = 1e-22; // off-diagonal mass (relative to the diagonal's) counted as zero

/**
 * Eigen-decomposition of a symmetric matrix.
 * @param {number[][]} matrix (n, n), symmetric; not modified
 * @returns {{values: number[], vectors: number[][]}} values descending; vectors[k] is the
 *   unit eigenvector of values[k] (length n)
 */
export function symmetricEigen(matrix) {
  const n = matrix.length;
  const a = matrix.map((row) => Float64Array.from(row));
  const v = Array.from({ length: n }, (_, i) => {
    const row = new Float64Array(n);
    row[i] = 1;
    return row;
  });
  for (let sweep = 0; sweep < SWEEPS; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += a[i][i] * a[i][i];
      for (let j = i + 1; j < n; j++) off += a[i][j] * a[i][j];
    }
    if (off <= TOLERANCE * Math.max(diag, Number.MIN_VALUE)) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p][q];
        if (apq === 0) continue;
        // the rotation that zeroes a[p][q] (Golub and Van Loan, Algorithm 8.4.1)
        const theta = (a[q][q] - a[p][p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k][p];
          const akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k];
          const aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p];
          const vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j][j] - a[i][i]);
  return {
    values: order.map((i) => a[i][i]),
    vectors: order.map((i) => Array.from({ length: n }, (_, k) => v[k][i])),
  };
}

/**
 * Fit PCA on rows (each an array-like of H numbers; non-finite rows are left out of the fit).
 * Each component's sign is fixed so that its largest entry is positive.
 * @param {ArrayLike<number>[]} rows (N, H)
 * @param {number} k components to keep
 * @returns {{mean: number[], components: number[][], variances: number[], explained: number[],
 *   project: (row: ArrayLike<number>) => number[] | null}}
 */
export function fitPCA(rows, k = 2) {
  const finite = rows.filter((r) => r != null && Array.prototype.every.call(r, Number.isFinite));
  if (!finite.length) throw new Error("PCA: no finite states to fit");
  const H = finite[0].length;
  const mean = new Array(H).fill(0);
  for (const r of finite) for (let u = 0; u < H; u++) mean[u] += r[u] / finite.length;
  const cov = Array.from({ length: H }, () => new Array(H).fill(0));
  const denom = Math.max(1, finite.length - 1);
  for (const r of finite) {
    for (let i = 0; i < H; i++) {
      const di = r[i] - mean[i];
      for (let j = i; j < H; j++) cov[i][j] += (di * (r[j] - mean[j])) / denom;
    }
  }
  for (let i = 0; i < H; i++) for (let j = 0; j < i; j++) cov[i][j] = cov[j][i];
  const { values, vectors } = symmetricEigen(cov);
  const total = values.reduce((s, x) => s + Math.max(0, x), 0);
  const kept = Math.min(k, H);
  const components = vectors.slice(0, kept).map((vec) => {
    let big = 0;
    for (const x of vec) if (Math.abs(x) > Math.abs(big)) big = x;
    return big < 0 ? vec.map((x) => -x) : vec;
  });
  while (components.length < k) components.push(new Array(H).fill(0)); // H = 1: a flat PC2
  const variances = values.slice(0, kept).map((x) => Math.max(0, x));
  while (variances.length < k) variances.push(0);
  return {
    mean,
    components,
    variances,
    explained: variances.map((x) => (total > 0 ? x / total : 0)),
    project(row) {
      if (row == null || !Array.prototype.every.call(row, Number.isFinite)) return null;
      return components.map((c) => {
        let s = 0;
        for (let u = 0; u < H; u++) s += (row[u] - mean[u]) * c[u];
        return s;
      });
    },
  };
}
