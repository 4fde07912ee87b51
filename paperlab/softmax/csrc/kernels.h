/*
 * Softmax kernels, written once over a tiny vector vocabulary and compiled once per
 * (instruction set, element type) by softmax.c, which defines before each inclusion (and
 * this file undefines at its end):
 *
 *   T, V, W        element type, vector type, lanes per vector
 *   U              independent accumulators in the reductions (hides FMA latency)
 *   BLOCK          elements summed in T before the partial sum moves to double
 *   ALIGN          byte alignment the streaming (non-temporal) store needs
 *   NAME(f)        this instantiation's name for f;  TAIL(f): the scalar one (same T)
 *   TARGET         the per-function target attribute (empty for portable C)
 *   VLOAD VSTORE VSTREAM VSET1 VADD VSUB VMUL VFMA(a,b,c)=a*b+c
 *   VMAX_B(a,b)    max that returns b when either is NaN (the x86 MAXPS rule)
 *   VROUND         round to nearest integer
 *   POLY_EXP       defined: use the float polynomial below as NAME(exp_reduced); else the
 *                  instantiation provides NAME(exp_reduced) itself (float64: libm exp)
 *   VSCALE_ACC(v,d)  v * 2^d for integral d <= 0, may flush below 2^-126 (sums)
 *   VSCALE_OUT(v,d)  v * 2^d for integral d <= 0, exact down to denormals (outputs)
 *   VFENCE()       store fence after streaming stores
 *   PREFETCH(p)    software prefetch of the line at p (no-op in portable C): on one core the
 *                  hardware prefetcher alone falls behind these compute-heavy loops
 *   XCLAMP         |x| clamp of the two-pass kernels; ZMIN: exp(z) is 0 below it
 *   TMAX           largest finite T
 *
 * Semantics shared by every algorithm (they match exp(x - max) / sum in IEEE arithmetic):
 * a NaN or +inf anywhere in a row makes the whole row NaN, a row of -inf is NaN, a -inf
 * element gives 0. Two-pass rows whose largest exponent exceeds EXT_LIMIT (|max x| above
 * ~7.3e5, where the Cody-Waite reduction of the clamped input would lose exactness) are
 * handed to the three-pass kernel, which has no such limit.
 */

/* ---- exp ------------------------------------------------------------------------- */

#ifdef POLY_EXP
/* p with exp(x) = p * 2^n, p in [0.71, 1.42]: Cody-Waite reduction by ln 2 and the
 * degree-5 polynomial of the paper (XNNPACK's constants). n is written to *n_out. */
TARGET static inline V NAME(exp_reduced)(V x, V *n_out)
{
    V n = VROUND(VMUL(x, VSET1(0x1.715476p+0f)));
    V t = VFMA(n, VSET1(-0x1.62E43p-1f), x);
    t = VFMA(n, VSET1(0x1.05C61p-29f), t);
    V p = VSET1(0x1.0F9F9Cp-7f);
    p = VFMA(p, t, VSET1(0x1.573A1Ap-5f));
    p = VFMA(p, t, VSET1(0x1.555A80p-3f));
    p = VFMA(p, t, VSET1(0x1.FFFDC6p-2f));
    p = VFMA(p, t, VSET1(0x1.FFFFF6p-1f));
    *n_out = n;
    return VFMA(p, t, VSET1(1.0f));
}
#endif


/* exp(z) for z <= 0 (or NaN, which propagates): 0 below ZMIN, denormals kept. */
TARGET static inline V NAME(exp_neg)(V z)
{
    V n;
    z = VMAX_B(VSET1(ZMIN), z); /* keeps a NaN z */
    V p = NAME(exp_reduced)(z, &n);
    return VSCALE_OUT(p, n);
}

/* ---- three-pass building blocks --------------------------------------------------- */

/* max over x[0..n); NaN elements are skipped here and poison the sum instead. */
TARGET static T NAME(rmax)(const T *x, size_t n)
{
    V acc[U];
    for (int u = 0; u < U; u++) acc[u] = VSET1(-INFINITY);
    size_t i = 0;
    for (; i + U * W <= n; i += U * W)
        for (int u = 0; u < U; u++) {
            PREFETCH(x + i + u * W + AHEAD);
            acc[u] = VMAX_B(VLOAD(x + i + u * W), acc[u]);
        }
    for (; i + W <= n; i += W) acc[0] = VMAX_B(VLOAD(x + i), acc[0]);
    for (int u = 1; u < U; u++) acc[0] = VMAX_B(acc[u], acc[0]);
    T lanes[W];
    VSTORE(lanes, acc[0]);
    T m = -INFINITY;
    for (int k = 0; k < W; k++) m = lanes[k] > m ? lanes[k] : m;
    if (i < n) {
        T t = TAIL(rmax)(x + i, n - i);
        m = t > m ? t : m;
    }
    return m;
}

/* sum of exp(x - m) over one block (at most BLOCK elements); if y, also store exp(x - m). */
TARGET static double NAME(sumexp_block)(const T *x, T *y, size_t n, T m)
{
    const V vm = VSET1(m);
    V acc[U];
    for (int u = 0; u < U; u++) acc[u] = VSET1(0);
    size_t i = 0;
    for (; i + U * W <= n; i += U * W)
        for (int u = 0; u < U; u++) {
            PREFETCH(x + i + u * W + AHEAD);
            V e = NAME(exp_neg)(VSUB(VLOAD(x + i + u * W), vm));
            if (y) VSTORE(y + i + u * W, e);
            acc[u] = VADD(acc[u], e);
        }
    for (; i + W <= n; i += W) {
        V e = NAME(exp_neg)(VSUB(VLOAD(x + i), vm));
        if (y) VSTORE(y + i, e);
        acc[0] = VADD(acc[0], e);
    }
    for (int u = 1; u < U; u++) acc[0] = VADD(acc[0], acc[u]);
    T lanes[W];
    VSTORE(lanes, acc[0]);
    double s = 0;
    for (int k = 0; k < W; k++) s += lanes[k];
    if (i < n) s += TAIL(sumexp_block)(x + i, y ? y + i : NULL, n - i, m);
    return s;
}

/* Blocked sum of exp(x - m): float accumulators inside a block, double across blocks,
 * so the rounding error does not grow with the row length. */
TARGET static double NAME(rsumexp)(const T *x, T *y, size_t n, T m)
{
    double s = 0;
    for (size_t b = 0; b < n; b += BLOCK)
        s += NAME(sumexp_block)(x + b, y ? y + b : NULL, n - b < BLOCK ? n - b : BLOCK, m);
    return s;
}

/* Elements before y + head are written with plain stores so the rest is ALIGN-aligned. */
static size_t NAME(stream_head)(const T *y, size_t n, int *nt)
{
    uintptr_t a = (uintptr_t)y;
    if (!*nt || ALIGN <= sizeof(T) || a % sizeof(T) != 0) {
        *nt = 0;
        return 0;
    }
    size_t head = ((ALIGN - a % ALIGN) % ALIGN) / sizeof(T);
    return head < n ? head : n;
}

/* y = exp(x - m) * s (three-pass recompute, pass 3; online, pass 2). */
TARGET static void NAME(vexpscale)(const T *x, T *y, size_t n, T m, T s, int nt)
{
    size_t i = NAME(stream_head)(y, n, &nt);
    if (i) TAIL(vexpscale)(x, y, i, m, s, 0);
    const V vm = VSET1(m), vs = VSET1(s);
    for (; i + W <= n; i += W) {
        V nn;
        PREFETCH(x + i + AHEAD);
        V z = VMAX_B(VSET1(ZMIN), VSUB(VLOAD(x + i), vm));
        V p = NAME(exp_reduced)(z, &nn);
        V r = VSCALE_OUT(VMUL(p, vs), nn);
        if (nt) VSTREAM(y + i, r);
        else VSTORE(y + i, r);
    }
    if (nt) VFENCE();
    if (i < n) TAIL(vexpscale)(x + i, y + i, n - i, m, s, 0);
}

/* y *= s in place (three-pass reload, pass 3). */
TARGET static void NAME(vscale)(T *y, size_t n, T s)
{
    const V vs = VSET1(s);
    size_t i = 0;
    for (; i + W <= n; i += W) {
        PREFETCH(y + i + AHEAD);
        VSTORE(y + i, VMUL(VLOAD(y + i), vs));
    }
    for (; i < n; i++) y[i] *= s;
}

/* y = x - c (every log-softmax ends with it). */
TARGET static void NAME(vsubc)(const T *x, T *y, size_t n, T c)
{
    const V vc = VSET1(c);
    size_t i = 0;
    for (; i + W <= n; i += W) {
        PREFETCH(x + i + AHEAD);
        VSTORE(y + i, VSUB(VLOAD(x + i), vc));
    }
    for (; i < n; i++) y[i] = x[i] - c;
}

/* ---- two-pass: extended-exponent sum (pass 1) and scaling (pass 2) ---------------- */

/* The (p, n) of the two-pass kernels. x is clamped below at -XCLAMP (NaN kept) so that
 * -inf gives a finite n whose term vanishes; no upper clamp is needed, since +inf (NaN p)
 * or x > XCLAMP (exponent over EXT_LIMIT) sends the row to the three-pass kernel anyway. */
#define TWO_PASS_REDUCE(xv, nptr) NAME(exp_reduced)(VMAX_B(VSET1(-XCLAMP), (xv)), (nptr))

/* Pass 1 over one block: per-lane accumulators (v, e) represent v * 2^e; each element
 * moves the accumulator to the larger exponent before adding, so nothing overflows. */
TARGET static ext_sum NAME(extexp_block)(const T *x, size_t n)
{
    V v[U], e[U];
    for (int u = 0; u < U; u++) {
        v[u] = VSET1(0);
        e[u] = VSET1(-TMAX); /* finite, so e - e' never becomes -inf - -inf */
    }
    size_t i = 0;
    for (; i + U * W <= n; i += U * W)
        for (int u = 0; u < U; u++) {
            V nn;
            PREFETCH(x + i + u * W + AHEAD);
            V p = TWO_PASS_REDUCE(VLOAD(x + i + u * W), &nn);
            V emax = VMAX_B(nn, e[u]); /* a NaN exponent keeps e; p carries the NaN */
            v[u] = VADD(VSCALE_ACC(v[u], VSUB(e[u], emax)), VSCALE_ACC(p, VSUB(nn, emax)));
            e[u] = emax;
        }
    for (; i + W <= n; i += W) {
        V nn;
        V p = TWO_PASS_REDUCE(VLOAD(x + i), &nn);
        V emax = VMAX_B(nn, e[0]);
        v[0] = VADD(VSCALE_ACC(v[0], VSUB(e[0], emax)), VSCALE_ACC(p, VSUB(nn, emax)));
        e[0] = emax;
    }
    for (int u = 1; u < U; u++) {
        V emax = VMAX_B(e[u], e[0]);
        v[0] = VADD(VSCALE_ACC(v[0], VSUB(e[0], emax)), VSCALE_ACC(v[u], VSUB(e[u], emax)));
        e[0] = emax;
    }
    T lv[W], le[W];
    VSTORE(lv, v[0]);
    VSTORE(le, e[0]);
    ext_sum s = {0.0, -INFINITY};
    for (int k = 0; k < W; k++) s = ext_merge(s, (ext_sum){lv[k], le[k]});
    if (i < n) s = ext_merge(s, TAIL(extexp_block)(x + i, n - i));
    return s;
}

TARGET static ext_sum NAME(raddextexp)(const T *x, size_t n)
{
    ext_sum s = {0.0, -INFINITY};
    for (size_t b = 0; b < n; b += BLOCK)
        s = ext_merge(s, NAME(extexp_block)(x + b, n - b < BLOCK ? n - b : BLOCK));
    return s;
}

/* Pass 2: y = p * (1 / sum.value) * 2^(n - sum.exponent), recomputing (p, n) from x. */
TARGET static void NAME(vscaleextexp)(const T *x, T *y, size_t n, ext_sum sum, int nt)
{
    size_t i = NAME(stream_head)(y, n, &nt);
    if (i) TAIL(vscaleextexp)(x, y, i, sum, 0);
    const V vs = VSET1((T)(1.0 / sum.value)), ve = VSET1((T)sum.exponent);
    for (; i + W <= n; i += W) {
        V nn;
        PREFETCH(x + i + AHEAD);
        V p = TWO_PASS_REDUCE(VLOAD(x + i), &nn);
        V r = VSCALE_OUT(VMUL(p, vs), VSUB(nn, ve));
        if (nt) VSTREAM(y + i, r);
        else VSTORE(y + i, r);
    }
    if (nt) VFENCE();
    if (i < n) TAIL(vscaleextexp)(x + i, y + i, n - i, sum, 0);
}

/* ---- online softmax (Milakov & Gimelshein): running (max, normaliser) ------------- */

TARGET static online_sum NAME(online_block)(const T *x, size_t n)
{
    V m[U], d[U];
    for (int u = 0; u < U; u++) {
        m[u] = VSET1(-TMAX); /* finite, so a -inf element gives exp(-inf) = 0, not NaN */
        d[u] = VSET1(0);
    }
    size_t i = 0;
    for (; i + U * W <= n; i += U * W)
        for (int u = 0; u < U; u++) {
            PREFETCH(x + i + u * W + AHEAD);
            V xv = VLOAD(x + i + u * W);
            V mnew = VMAX_B(xv, m[u]);
            d[u] = VFMA(d[u], NAME(exp_neg)(VSUB(m[u], mnew)), NAME(exp_neg)(VSUB(xv, mnew)));
            m[u] = mnew;
        }
    for (; i + W <= n; i += W) {
        V xv = VLOAD(x + i);
        V mnew = VMAX_B(xv, m[0]);
        d[0] = VFMA(d[0], NAME(exp_neg)(VSUB(m[0], mnew)), NAME(exp_neg)(VSUB(xv, mnew)));
        m[0] = mnew;
    }
    T lm[W], ld[W];
    online_sum s = {-INFINITY, 0.0};
    for (int u = 0; u < U; u++) {
        VSTORE(lm, m[u]);
        VSTORE(ld, d[u]);
        for (int k = 0; k < W; k++) s = online_merge(s, (online_sum){lm[k], ld[k]});
    }
    if (i < n) s = online_merge(s, TAIL(online_block)(x + i, n - i));
    return s;
}

TARGET static online_sum NAME(ronline)(const T *x, size_t n)
{
    online_sum s = {-INFINITY, 0.0};
    for (size_t b = 0; b < n; b += BLOCK)
        s = online_merge(s, NAME(online_block)(x + b, n - b < BLOCK ? n - b : BLOCK));
    return s;
}

/* ---- one row ----------------------------------------------------------------------- */

static void NAME(fill)(T *y, size_t n, T value)
{
    for (size_t i = 0; i < n; i++) y[i] = value;
}

/* Softmax (or log-softmax) of one contiguous row; y may alias x. */
TARGET static void NAME(row)(const T *x, T *y, size_t n, int algorithm, int log_out, int nt)
{
    if (n == 0) return;
    if (algorithm == ALG_TWO_PASS) {
        ext_sum s = NAME(raddextexp)(x, n);
        if (fabs(s.exponent) <= EXT_LIMIT) {
            if (log_out) NAME(vsubc)(x, y, n, (T)(log(s.value) + s.exponent * M_LN2_D));
            else NAME(vscaleextexp)(x, y, n, s, nt);
            return;
        }
        algorithm = ALG_RECOMPUTE; /* extreme row: see the note at the top */
    }
    if (algorithm == ALG_ONLINE) {
        online_sum s = NAME(ronline)(x, n);
        if (s.norm == 0.0) { /* every element -inf */
            NAME(fill)(y, n, (T)NAN);
        } else if (log_out) {
            NAME(vsubc)(x, y, n, (T)(s.max + log(s.norm)));
        } else {
            NAME(vexpscale)(x, y, n, (T)s.max, (T)(1.0 / s.norm), nt);
        }
        return;
    }
    T m = NAME(rmax)(x, n);
    if (log_out) {
        NAME(vsubc)(x, y, n, (T)(m + log(NAME(rsumexp)(x, NULL, n, m))));
    } else if (algorithm == ALG_RELOAD) {
        NAME(vscale)(y, n, (T)(1.0 / NAME(rsumexp)(x, y, n, m)));
    } else {
        NAME(vexpscale)(x, y, n, m, (T)(1.0 / NAME(rsumexp)(x, NULL, n, m)), nt);
    }
}

/* Rows [r0, r1) of a row-major matrix with byte row strides xs, ys. */
static void NAME(rows)(const char *x, char *y, ptrdiff_t xs, ptrdiff_t ys, size_t n,
                       ptrdiff_t r0, ptrdiff_t r1, int algorithm, int log_out, int nt)
{
    for (ptrdiff_t r = r0; r < r1; r++)
        NAME(row)((const T *)(x + r * xs), (T *)(y + r * ys), n, algorithm, log_out, nt);
}

/* The two-pass passes on their own, for splitting one long row over threads. */
static ext_sum NAME(pass1)(const char *x, size_t n)
{
    return NAME(raddextexp)((const T *)x, n);
}

static void NAME(pass2)(const char *x, char *y, size_t n, ext_sum sum, int log_out, int nt)
{
    if (log_out) NAME(vsubc)((const T *)x, (T *)y, n, (T)(log(sum.value) + sum.exponent * M_LN2_D));
    else NAME(vscaleextexp)((const T *)x, (T *)y, n, sum, nt);
}

#undef T
#undef V
#undef W
#undef U
#undef BLOCK
#undef ALIGN
#undef NAME
#undef TAIL
#undef TARGET
#undef VLOAD
#undef VSTORE
#undef VSTREAM
#undef VSET1
#undef VADD
#undef VSUB
#undef VMUL
#undef VFMA
#undef VMAX_B
#undef VROUND
#undef POLY_EXP
#undef VSCALE_ACC
#undef VSCALE_OUT
#undef VFENCE
#undef PREFETCH
#undef XCLAMP
#undef ZMIN
#undef TMAX
