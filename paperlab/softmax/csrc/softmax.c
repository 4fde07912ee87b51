/*
 * paperlab.softmax._csoftmax: two-pass, three-pass (recompute, reload) and online softmax
 * over rows of float32/float64 matrices, with run-time dispatch to AVX-512F, AVX2+FMA or
 * portable C. The kernels live in kernels.h, included once per instruction set; this file
 * holds what they share (the double-precision merges of partial sums), the instantiations
 * and the Python bindings. Every call releases the GIL, so Python threads can run blocks
 * of rows (or blocks of one long row) in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* PAPERLAB_SOFTMAX_PORTABLE_ONLY builds what a non-x86 machine gets (used by the tests). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && \
    !defined(PAPERLAB_SOFTMAX_PORTABLE_ONLY)
#define HAVE_X86_KERNELS 1
#include <immintrin.h>
#else
#define HAVE_X86_KERNELS 0
#endif

#define ALG_TWO_PASS 0
#define ALG_RECOMPUTE 1
#define ALG_RELOAD 2
#define ALG_ONLINE 3

#define M_LN2_D 0.69314718055994530942
/* Software prefetch distance, in elements (4 KiB of float32). */
#ifndef AHEAD
#define AHEAD 1024
#endif
/* Two-pass rows whose largest exponent n = round(x log2 e) exceeds this go to three-pass. */
#define EXT_LIMIT 1048576.0

/* A sum value * 2^exponent, kept apart so that it cannot overflow. */
typedef struct {
    double value, exponent;
} ext_sum;

/* Online softmax's running maximum and normaliser sum(exp(x - max)). */
typedef struct {
    double max, norm;
} online_sum;

/* v * 2^d for d <= 0 (exact power-of-two scaling; a NaN v stays NaN). */
static double scale_pow2(double v, double d)
{
    if (!(d >= -2100.0)) return v * 0.0;
    return ldexp(v, (int)d);
}

static ext_sum ext_merge(ext_sum a, ext_sum b)
{
    if (a.exponent < b.exponent) {
        ext_sum t = a;
        a = b;
        b = t;
    }
    a.value += scale_pow2(b.value, b.exponent - a.exponent);
    return a;
}

static online_sum online_merge(online_sum a, online_sum b)
{
    double m = a.max > b.max ? a.max : b.max;
    if (m == -INFINITY) return a; /* both empty */
    online_sum r = {m, a.norm * exp(a.max - m) + b.norm * exp(b.max - m)};
    return r;
}

/* ---- portable C, float32 --------------------------------------------------------- */

/* 2^k for integral k in [-127, 127] from its bit pattern (k = -127 gives 0). */
static inline float pow2_f32(float k)
{
    union {
        uint32_t u;
        float f;
    } b;
    b.u = (uint32_t)((int32_t)k + 127) << 23;
    return b.f;
}

/* v * 2^d for integral d <= 0, flushing below 2^-127 (partial sums); NaN d gives 0. */
static inline float scale_acc_f32(float v, float d)
{
    return v * pow2_f32(d > -127.0f ? d : -127.0f);
}

/* v * 2^d for integral d <= 0 in two steps, exact down to the denormals. */
static inline float scale_out_f32(float v, float d)
{
    float d1 = d > -64.0f ? d : -64.0f;
    float d2 = d - d1 > -127.0f ? d - d1 : -127.0f;
    return v * pow2_f32(d1) * pow2_f32(d2);
}

/* round to nearest by the 1.5 * 2^23 trick, valid for |x| < 2^22 (inputs are clamped) */
static inline float round_f32(float x)
{
    const float big = 0x1.8p23f;
    return (x + big) - big;
}

#define T float
#define V float
#define W 1
#define U 4
#define BLOCK 256
#define ALIGN 1
#define NAME(f) f##_c_f32
#define TAIL(f) f##_c_f32
#define TARGET
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSTREAM(p, v) (*(p) = (v))
#define VSET1(s) ((float)(s))
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VFMA(a, b, c) fmaf(a, b, c)
#define VMAX_B(a, b) ((a) > (b) ? (a) : (b))
#define VROUND(x) round_f32(x)
#define POLY_EXP 1
#define VSCALE_ACC(v, d) scale_acc_f32(v, d)
#define VSCALE_OUT(v, d) scale_out_f32(v, d)
#define VFENCE() ((void)0)
#define PREFETCH(p) ((void)0)
#define XCLAMP 1.0e6f
#define ZMIN (-200.0f)
#define TMAX FLT_MAX
#include "kernels.h"

/* ---- portable C, float64 (libm exp of the reduced argument) ------------------------ */

static inline int clamp_exponent_d(double d)
{
    if (!(d >= -2200.0)) return -2200;
    return d > 2200.0 ? 2200 : (int)d;
}

static inline double exp_reduced_c_f64(double x, double *n_out)
{
    const double big = 0x1.8p52;
    double n = (x * 0x1.71547652b82fep+0 + big) - big;
    double t = fma(n, -0x1.62e42fee00000p-1, x); /* fdlibm's split of ln 2 */
    t = fma(n, -0x1.a39ef35793c76p-33, t);
    *n_out = n;
    return exp(t);
}

#define T double
#define V double
#define W 1
#define U 4
#define BLOCK 256
#define ALIGN 1
#define NAME(f) f##_c_f64
#define TAIL(f) f##_c_f64
#define TARGET
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSTREAM(p, v) (*(p) = (v))
#define VSET1(s) ((double)(s))
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VFMA(a, b, c) fma(a, b, c)
#define VMAX_B(a, b) ((a) > (b) ? (a) : (b))
#define VSCALE_ACC(v, d) ldexp(v, clamp_exponent_d(d))
#define VSCALE_OUT(v, d) ldexp(v, clamp_exponent_d(d))
#define VFENCE() ((void)0)
#define PREFETCH(p) ((void)0)
#define XCLAMP 1.0e6
#define ZMIN (-1000.0)
#define TMAX DBL_MAX
#include "kernels.h"

#if HAVE_X86_KERNELS
/* ---- AVX2 + FMA, float32 --------------------------------------------------------- */
#define TARGET __attribute__((target("avx2,fma")))

TARGET static inline __m256 pow2_avx2(__m256 d) /* 2^d for integral d in [-127, 127] */
{
    __m256i k = _mm256_add_epi32(_mm256_cvtps_epi32(d), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(k, 23));
}

/* v * 2^d for d <= 0, flushing below 2^-127: enough for partial sums. */
TARGET static inline __m256 scale_acc_avx2(__m256 v, __m256 d)
{
    return _mm256_mul_ps(v, pow2_avx2(_mm256_max_ps(d, _mm256_set1_ps(-127.0f))));
}

/* v * 2^d for d <= 0 in two steps, so that results down to the denormals are exact. */
TARGET static inline __m256 scale_out_avx2(__m256 v, __m256 d)
{
    __m256 d1 = _mm256_max_ps(d, _mm256_set1_ps(-64.0f));
    __m256 d2 = _mm256_max_ps(_mm256_sub_ps(d, d1), _mm256_set1_ps(-127.0f));
    return _mm256_mul_ps(_mm256_mul_ps(v, pow2_avx2(d1)), pow2_avx2(d2));
}

#define T float
#define V __m256
#define W 8
#define U 4
#define BLOCK 2048
#define ALIGN 32
#define NAME(f) f##_avx2
#define TAIL(f) f##_c_f32
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VSTREAM(p, v) _mm256_stream_ps(p, v)
#define VSET1(s) _mm256_set1_ps((float)(s))
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VFMA _mm256_fmadd_ps
#define VMAX_B _mm256_max_ps
#define VROUND(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define POLY_EXP 1
#define VSCALE_ACC scale_acc_avx2
#define VSCALE_OUT scale_out_avx2
#define VFENCE() _mm_sfence()
#define PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#define XCLAMP 1.0e6f
#define ZMIN (-200.0f)
#define TMAX FLT_MAX
#include "kernels.h"

/* ---- AVX-512F, float32 ------------------------------------------------------------ */
#define TARGET __attribute__((target("avx512f")))

#define T float
#define V __m512
#define W 16
#define U 4
#define BLOCK 4096
#define ALIGN 64
#define NAME(f) f##_avx512
#define TAIL(f) f##_c_f32
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSTREAM(p, v) _mm512_stream_ps(p, v)
#define VSET1(s) _mm512_set1_ps((float)(s))
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VFMA _mm512_fmadd_ps
#define VMAX_B _mm512_max_ps
#define VROUND(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define POLY_EXP 1
#define VSCALE_ACC _mm512_scalef_ps
#define VSCALE_OUT _mm512_scalef_ps
#define VFENCE() _mm_sfence()
#define PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#define XCLAMP 1.0e6f
#define ZMIN (-200.0f)
#define TMAX FLT_MAX
#include "kernels.h"
#endif /* HAVE_X86_KERNELS */

/* ---- dispatch ---------------------------------------------------------------------- */

typedef void (*rows_fn)(const char *, char *, ptrdiff_t, ptrdiff_t, size_t, ptrdiff_t,
                        ptrdiff_t, int, int, int);
typedef ext_sum (*pass1_fn)(const char *, size_t);
typedef void (*pass2_fn)(const char *, char *, size_t, ext_sum, int, int);
typedef float (*read_fn)(const float *, size_t);

typedef struct {
    const char *name;
    rows_fn rows;
    pass1_fn pass1;
    pass2_fn pass2;
    read_fn read;
} isa_kernels;

enum { ISA_PORTABLE, ISA_AVX2, ISA_AVX512, ISA_COUNT };

static const isa_kernels KERNELS[ISA_COUNT] = {
    {"portable", rows_c_f32, pass1_c_f32, pass2_c_f32, rmax_c_f32},
#if HAVE_X86_KERNELS
    {"avx2-fma", rows_avx2, pass1_avx2, pass2_avx2, rmax_avx2},
    {"avx512f", rows_avx512, pass1_avx512, pass2_avx512, rmax_avx512},
#else
    {"avx2-fma", NULL, NULL, NULL, NULL},
    {"avx512f", NULL, NULL, NULL, NULL},
#endif
};

static int isa_supported(int isa)
{
#if HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (isa == ISA_AVX512) return __builtin_cpu_supports("avx512f");
    if (isa == ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return isa == ISA_PORTABLE;
}

static int g_isa = ISA_PORTABLE; /* float32 kernels in use; float64 is always portable */

/* ---- Python bindings --------------------------------------------------------------- */

/* A float32/float64 buffer of 1 or 2 dimensions whose rows are contiguous. */
typedef struct {
    Py_buffer view;
    char *data;
    Py_ssize_t rows, n, row_stride, itemsize;
    int is_double;
} matrix;

static int get_matrix(PyObject *obj, matrix *m, int writable, const char *what)
{
    int flags = PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &m->view, flags) < 0) return -1;
    const char *f = m->view.format ? m->view.format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    m->is_double = strcmp(f, "d") == 0;
    int ok_format = m->is_double || strcmp(f, "f") == 0;
    int nd = m->view.ndim;
    if (!ok_format || (nd != 1 && nd != 2)) {
        PyErr_Format(PyExc_TypeError, "%s must be a 1-D or 2-D float32/float64 buffer "
                     "(got format '%s', %d dimensions)", what, m->view.format, nd);
        PyBuffer_Release(&m->view);
        return -1;
    }
    m->itemsize = m->view.itemsize;
    m->rows = nd == 2 ? m->view.shape[0] : 1;
    m->n = m->view.shape[nd - 1];
    m->row_stride = nd == 2 ? m->view.strides[0] : 0;
    if (m->n > 1 && m->view.strides[nd - 1] != m->itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: elements of a row must be contiguous", what);
        PyBuffer_Release(&m->view);
        return -1;
    }
    if (((uintptr_t)m->view.buf) % (uintptr_t)m->itemsize != 0 ||
        m->row_stride % m->itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "%s: buffer is not aligned to its element size", what);
        PyBuffer_Release(&m->view);
        return -1;
    }
    m->data = (char *)m->view.buf;
    return 0;
}

/* get_matrix, then insist on exactly max_rows rows (0: any number). */
static int get_rows(PyObject *obj, matrix *m, int writable, const char *what, Py_ssize_t max_rows)
{
    if (get_matrix(obj, m, writable, what) < 0) return -1;
    if (max_rows && m->rows != max_rows) {
        PyErr_Format(PyExc_ValueError, "%s must be a single row", what);
        PyBuffer_Release(&m->view);
        return -1;
    }
    return 0;
}

/* x (read) and y (written) of one shape and dtype. */
static int get_pair(PyObject *xo, PyObject *yo, matrix *x, matrix *y, Py_ssize_t max_rows)
{
    if (get_rows(xo, x, 0, "x", max_rows) < 0) return -1;
    if (get_rows(yo, y, 1, "y", max_rows) < 0) {
        PyBuffer_Release(&x->view);
        return -1;
    }
    if (x->rows != y->rows || x->n != y->n || x->is_double != y->is_double) {
        PyErr_SetString(PyExc_ValueError, "x and y must have the same shape and dtype");
        PyBuffer_Release(&x->view);
        PyBuffer_Release(&y->view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(rows_doc, "rows(x, y, algorithm, log, start, stop, nt)\n--\n\n"
             "Softmax (log=1: log-softmax) of rows [start, stop) of x into y; GIL released.");

static PyObject *py_rows(PyObject *self, PyObject *args)
{
    PyObject *xo, *yo;
    int algorithm, log_out, nt;
    Py_ssize_t r0, r1;
    matrix x, y;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOiinnp", &xo, &yo, &algorithm, &log_out, &r0, &r1, &nt))
        return NULL;
    if (algorithm < ALG_TWO_PASS || algorithm > ALG_ONLINE)
        return PyErr_Format(PyExc_ValueError, "unknown algorithm code %d", algorithm);
    if (get_pair(xo, yo, &x, &y, 0) < 0) return NULL;
    int ok = 0 <= r0 && r0 <= r1 && r1 <= x.rows;
    if (ok) {
        rows_fn fn = x.is_double ? rows_c_f64 : KERNELS[g_isa].rows;
        Py_BEGIN_ALLOW_THREADS
        fn(x.data, y.data, x.row_stride, y.row_stride, (size_t)x.n, r0, r1, algorithm, log_out,
           nt);
        Py_END_ALLOW_THREADS
    } else {
        PyErr_Format(PyExc_IndexError, "row range [%zd, %zd) outside 0..%zd", r0, r1, x.rows);
    }
    PyBuffer_Release(&x.view);
    PyBuffer_Release(&y.view);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(pass1_doc, "extexp_sum(x)\n--\n\n"
             "Two-pass pass 1 over a contiguous 1-D block: (value, exponent) with\n"
             "sum(exp(x)) = value * 2**exponent; GIL released.");

static PyObject *py_pass1(PyObject *self, PyObject *arg)
{
    matrix x;
    ext_sum s;
    (void)self;
    if (get_rows(arg, &x, 0, "x", 1) < 0) return NULL;
    pass1_fn fn = x.is_double ? pass1_c_f64 : KERNELS[g_isa].pass1;
    Py_BEGIN_ALLOW_THREADS
    s = fn(x.data, (size_t)x.n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&x.view);
    return Py_BuildValue("dd", s.value, s.exponent);
}

PyDoc_STRVAR(pass2_doc, "extexp_scale(x, y, value, exponent, log, nt)\n--\n\n"
             "Two-pass pass 2 over a 1-D block: y = exp(x) / (value * 2**exponent), or\n"
             "x - log(value * 2**exponent) when log; GIL released.");

static PyObject *py_pass2(PyObject *self, PyObject *args)
{
    PyObject *xo, *yo;
    ext_sum s;
    int log_out, nt;
    matrix x, y;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOddpp", &xo, &yo, &s.value, &s.exponent, &log_out, &nt))
        return NULL;
    if (get_pair(xo, yo, &x, &y, 1) < 0) return NULL;
    pass2_fn fn = x.is_double ? pass2_c_f64 : KERNELS[g_isa].pass2;
    Py_BEGIN_ALLOW_THREADS
    fn(x.data, y.data, (size_t)x.n, s, log_out, nt);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&x.view);
    PyBuffer_Release(&y.view);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(read_doc, "read_pass(x)\n--\n\n"
             "Maximum of a contiguous 1-D float32 block by the kernels in use: one read of\n"
             "4 bytes per element and nothing else, to measure read bandwidth; GIL released.");

static PyObject *py_read_pass(PyObject *self, PyObject *arg)
{
    matrix x;
    float m = 0;
    (void)self;
    if (get_rows(arg, &x, 0, "x", 1) < 0) return NULL;
    int ok = !x.is_double;
    if (ok) {
        read_fn fn = KERNELS[g_isa].read;
        Py_BEGIN_ALLOW_THREADS
        m = fn((const float *)x.data, (size_t)x.n);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&x.view);
    if (!ok) return PyErr_Format(PyExc_TypeError, "read_pass takes float32");
    return PyFloat_FromDouble(m);
}

static PyObject *py_isa(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyUnicode_FromString(KERNELS[g_isa].name);
}

static PyObject *py_supported_isas(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyObject *list = PyList_New(0);
    if (!list) return NULL;
    for (int i = 0; i < ISA_COUNT; i++) {
        if (!isa_supported(i)) continue;
        PyObject *s = PyUnicode_FromString(KERNELS[i].name);
        if (!s || PyList_Append(list, s) < 0) {
            Py_XDECREF(s);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(s);
    }
    return list;
}

PyDoc_STRVAR(set_isa_doc, "set_isa(name)\n--\n\n"
             "Use the float32 kernels of one instruction set (for tests and benchmarks);\n"
             "returns the previous name. Not thread-safe against running calls.");

static PyObject *py_set_isa(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    for (int i = 0; i < ISA_COUNT; i++) {
        if (strcmp(name, KERNELS[i].name) != 0) continue;
        if (!isa_supported(i))
            return PyErr_Format(PyExc_ValueError, "this CPU does not support %s", name);
        const char *previous = KERNELS[g_isa].name;
        g_isa = i;
        return PyUnicode_FromString(previous);
    }
    return PyErr_Format(PyExc_ValueError, "unknown instruction set '%s'", name);
}

static PyMethodDef methods[] = {
    {"rows", py_rows, METH_VARARGS, rows_doc},
    {"extexp_sum", py_pass1, METH_O, pass1_doc},
    {"extexp_scale", py_pass2, METH_VARARGS, pass2_doc},
    {"read_pass", py_read_pass, METH_O, read_doc},
    {"isa", py_isa, METH_NOARGS, "Name of the float32 kernels in use."},
    {"supported_isas", py_supported_isas, METH_NOARGS, "Instruction sets this CPU runs."},
    {"set_isa", py_set_isa, METH_O, set_isa_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_csoftmax",
    "C softmax kernels (two-pass, three-pass, online) with run-time CPU dispatch.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__csoftmax(void)
{
    for (int i = ISA_COUNT - 1; i >= 0; i--)
        if (isa_supported(i)) {
            g_isa = i;
            break;
        }
    return PyModule_Create(&module);
}
