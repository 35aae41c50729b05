// Principal component analysis of a few hundred hidden states: the covariance (H x H) and
// its eigenvectors by Householder tridiagonalisation and the implicit QL method (tred2 and
// tql2, as in EISPACK and JAMA), exact to rounding for the symmetric matrices a run gives
// (H <= 128). ~4n^3 flops: about 3 ms at H = 64, where cyclic Jacobi took 40-100 ms, a
// task each training snapshot. Used by the trajectory view; no DOM here.

const MAX_SHIFTS = 60; // QL steps per eigenvalue (two or three are typical)

/**
 * Eigen-decomposition of a symmetric matrix.
 * @param {number[][]} matrix (n, n), symmetric; not modified
 * @returns {{values: number[], vectors: number[][]}} values descending; vectors[k] is the
 *   unit eigenvector of values[k] (length n)
 */
export function symmetricEigen(matrix) {
  const n = matrix.length;
  const V = matrix.map((row) => Float64Array.from(row)); // V[k][i]: entry k of vector i
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { values: [], vectors: [] };
  tridiagonalise(V, d, e);
  diagonalise(V, d, e);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[j] - d[i]);
  return {
    values: order.map((i) => d[i]),
    vectors: order.map((i) => Array.from({ length: n }, (_, k) => V[k][i])),
  };
}

/** Householder reduction of V (symmetric, overwritten by the orthogonal transform) to the
 * tridiagonal matrix with diagonal d and subdiagonal e[1..n-1] (tred2). */
function tridiagonalise(V, d, e) {
  const n = V.length;
  for (let j = 0; j < n; j++) d[j] = V[n - 1][j];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = V[i - 1][j];
        V[i][j] = 0;
        V[j][i] = 0;
      }
    } else {
      // the Householder vector, scaled against under- and overflow
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j];
        V[j][i] = f;
        g = e[j] + V[j][j] * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k][j] * d[k];
          e[k] += V[k][j] * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      for (let j = 0; j < i; j++) {
        f = d[j];
        g = e[j];
        for (let k = j; k <= i - 1; k++) V[k][j] -= f * e[k] + g * d[k];
        d[j] = V[i - 1][j];
        V[i][j] = 0;
      }
    }
    d[i] = h;
  }
  // accumulate the transformations
  for (let i = 0; i < n - 1; i++) {
    V[n - 1][i] = V[i][i];
    V[i][i] = 1;
    const h = d[i + 1];
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k][i + 1] / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k][i + 1] * V[k][j];
        for (let k = 0; k <= i; k++) V[k][j] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) V[k][i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[n - 1][j];
    V[n - 1][j] = 0;
  }
  V[n - 1][n - 1] = 1;
  e[0] = 0;
}

/** The implicit QL method with Wilkinson-like shifts on the tridiagonal (d, e), rotating
 * V's columns along: d ends as the eigenvalues, V's columns as their vectors (tql2). */
function diagonalise(V, d, e) {
  const n = V.length;
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      for (let shift = 0; ; shift++) {
        if (shift === MAX_SHIFTS) throw new Error("PCA: the eigenvalues did not converge");
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          for (let k = 0; k < n; k++) {
            const vk = V[k];
            h = vk[i + 1];
            vk[i + 1] = s * vk[i] + c * h;
            vk[i] = c * vk[i] - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
        if (!(Math.abs(e[l]) > eps * tst1)) break;
      }
    }
    d[l] += f;
    e[l] = 0;
  }
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
