/* Decode-step attention on a CPU for every row of a batch in one call (crosstune.models.backends.native).
 *
 * Each row has `g` query heads per key/value head and attends to its own contiguous region of a shared pool laid
 * out (kv_heads, capacity, head_dim), float32. torch's fused attention runs one call per row and reaches about a
 * quarter of this core's read bandwidth on such short queries. Here, per row and key/value head:
 * - scores: 4 keys at a time against 2 queries, or 8 against one (8 independent accumulators, summed 4 at once), the
 *   keys 16 ahead and the values of the same keys prefetched, so the values are in cache for the second pass;
 * - softmax over the row's scores with the maximum subtracted, exponentials 8 at a time;
 * - values: blocks of 16 keys, each weight broadcast over 32 features of up to 3 queries.
 * Each key and value is read from memory once; a step costs little more than reading the cache once.
 *
 * Same math as torch's scaled_dot_product_attention: scores = scale * q.k, softmax with the row maximum
 * subtracted, weights normalised by their sum at the end. The additions inside a dot product run in another order
 * and e^x is Cephes' single-precision polynomial (within ~2 ulp of expf; 0 below -87, where e^x is denormal), so
 * results agree with torch to float rounding. Written with GCC/Clang vector extensions (the shuffles spelled for
 * each): compiles for any target.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t i8v __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
#define LOAD(p) (*(const v8u *)(p))
#define STORE(p, x) (*(v8u *)(p) = (x))
#define SPLAT(s) ((v8){(s), (s), (s), (s), (s), (s), (s), (s)})
#define AHEAD 16 /* keys prefetched ahead in the scores pass */
#ifdef __clang__
#define SHUFFLE2(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#define SHUFFLE1(a, ...) __builtin_shufflevector(a, a, __VA_ARGS__)
#else
#define SHUFFLE2(a, b, ...) __builtin_shuffle(a, b, (i8v){__VA_ARGS__})
#define SHUFFLE1(a, ...) __builtin_shuffle(a, (i8v){__VA_ARGS__})
#endif

static inline v8 vmax(v8 a, v8 b) { return (v8)(((i8v)a & (a > b)) | ((i8v)b & ~(a > b))); }

/* e^x, 8 at a time: x = n ln2 + r, e^r by Cephes' expf polynomial, times 2^n built in the exponent bits */
static inline v8 vexp(v8 x) {
    const i8v live = x >= SPLAT(-87.0f);
    x = vmax(x, SPLAT(-87.0f));
    const v8 magic = SPLAT(12582912.0f); /* 1.5 * 2^23: adding it rounds to the nearest integer */
    const v8 t = x * SPLAT(1.44269504088896341f) + magic, n = t - magic;
    const i8v ni = (i8v)t - (i8v)magic;
    v8 r = x - n * SPLAT(0.693359375f);
    r = r - n * SPLAT(-2.12194440e-4f);
    v8 p = SPLAT(1.9875691500e-4f);
    p = p * r + SPLAT(1.3981999507e-3f);
    p = p * r + SPLAT(8.3334519073e-3f);
    p = p * r + SPLAT(4.1665795894e-2f);
    p = p * r + SPLAT(1.6666665459e-1f);
    p = p * r + SPLAT(5.0000001201e-1f);
    p = p * r * r + r + SPLAT(1.0f);
    return (v8)((i8v)(p * (v8)((ni + 127) << 23)) & live);
}

/* out[e * stride] = the sum of a_e's 8 lanes, e = 0..3 */
static inline void sum4(v8 a0, v8 a1, v8 a2, v8 a3, float *out, int64_t stride) {
    const v8 x = SHUFFLE2(a0, a1, 0, 1, 2, 3, 8, 9, 10, 11) + SHUFFLE2(a0, a1, 4, 5, 6, 7, 12, 13, 14, 15);
    const v8 y = SHUFFLE2(a2, a3, 0, 1, 2, 3, 8, 9, 10, 11) + SHUFFLE2(a2, a3, 4, 5, 6, 7, 12, 13, 14, 15);
    const v8 z = SHUFFLE2(x, y, 0, 1, 8, 9, 4, 5, 12, 13) + SHUFFLE2(x, y, 2, 3, 10, 11, 6, 7, 14, 15);
    const v8 w = z + SHUFFLE1(z, 1, 0, 3, 2, 5, 4, 7, 6);
    out[0] = w[0];
    out[stride] = w[4];
    out[2 * stride] = w[2];
    out[3 * stride] = w[6];
}

/* p[i][j] = scale * q_i . k_j for G queries and keys j in [0, n): KEYS keys at a time (G * KEYS accumulators; with
 * the keys' and one query's vectors that fits the 16 vector registers of AVX2) */
#define SCORES(G, KEYS)                                                                                        \
    static void scores##G(const float *q, const float *k, const float *v, int64_t n, int64_t d, float scale,   \
                          float *p, int64_t ldp, int fetch) {                                                  \
        int64_t j = 0;                                                                                         \
        for (; j + KEYS <= n; j += KEYS) {                                                                     \
            const float *kj = k + j * d;                                                                       \
            for (int64_t e = 0; fetch && e < KEYS * d; e += 16) {                                              \
                __builtin_prefetch(kj + AHEAD * d + e, 0, 0);                                                  \
                __builtin_prefetch(v + j * d + e, 0, 1);                                                       \
            }                                                                                                  \
            v8 acc[G][KEYS] = {{{0}}};                                                                         \
            for (int64_t e = 0; e < d; e += 8) {                                                               \
                v8 kv[KEYS];                                                                                   \
                for (int t = 0; t < KEYS; t++)                                                                 \
                    kv[t] = LOAD(kj + t * d + e);                                                              \
                for (int i = 0; i < G; i++) {                                                                  \
                    const v8 qi = LOAD(q + i * d + e);                                                         \
                    for (int t = 0; t < KEYS; t++)                                                             \
                        acc[i][t] += qi * kv[t];                                                               \
                }                                                                                              \
            }                                                                                                  \
            for (int i = 0; i < G; i++)                                                                        \
                for (int t = 0; t < KEYS; t += 4)                                                              \
                    sum4(acc[i][t], acc[i][t + 1], acc[i][t + 2], acc[i][t + 3], p + i * ldp + j + t, 1);      \
        }                                                                                                      \
        for (; j < n; j++)                                                                                     \
            for (int i = 0; i < G; i++) {                                                                      \
                v8 acc = {0};                                                                                  \
                for (int64_t e = 0; e < d; e += 8)                                                             \
                    acc += LOAD(q + i * d + e) * LOAD(k + j * d + e);                                          \
                sum4(acc, acc, acc, acc, p + i * ldp + j, 0);                                                  \
            }                                                                                                  \
        for (int i = 0; i < G; i++)                                                                            \
            for (j = 0; j < n; j++)                                                                            \
                p[i * ldp + j] *= scale;                                                                       \
    }

/* out_i = sum_j p[i][j] v_j for G queries: blocks of 16 keys (in cache), 32 features at a time (8 for the last
 * d % 32) */
#define VALUES(G)                                                                                              \
    static void values##G(const float *p, int64_t ldp, const float *v, int64_t n, int64_t d, float *out,       \
                          int64_t ldo) {                                                                       \
        for (int i = 0; i < G; i++)                                                                            \
            memset(out + i * ldo, 0, sizeof(float) * (size_t)d);                                               \
        for (int64_t j0 = 0; j0 < n; j0 += 16) {                                                               \
            const int64_t j1 = j0 + 16 < n ? j0 + 16 : n;                                                      \
            int64_t c = 0;                                                                                     \
            for (; c + 32 <= d; c += 32) {                                                                     \
                v8 acc[G][4];                                                                                  \
                for (int i = 0; i < G; i++)                                                                    \
                    for (int e = 0; e < 4; e++)                                                                \
                        acc[i][e] = LOAD(out + i * ldo + c + 8 * e);                                           \
                for (int64_t j = j0; j < j1; j++) {                                                            \
                    const float *vj = v + j * d + c;                                                           \
                    for (int i = 0; i < G; i++) {                                                              \
                        const v8 s = SPLAT(p[i * ldp + j]);                                                    \
                        for (int e = 0; e < 4; e++)                                                            \
                            acc[i][e] += s * LOAD(vj + 8 * e);                                                 \
                    }                                                                                          \
                }                                                                                              \
                for (int i = 0; i < G; i++)                                                                    \
                    for (int e = 0; e < 4; e++)                                                                \
                        STORE(out + i * ldo + c + 8 * e, acc[i][e]);                                           \
            }                                                                                                  \
            for (; c < d; c += 8)                                                                              \
                for (int i = 0; i < G; i++) {                                                                  \
                    v8 acc = LOAD(out + i * ldo + c);                                                          \
                    for (int64_t j = j0; j < j1; j++)                                                          \
                        acc += SPLAT(p[i * ldp + j]) * LOAD(v + j * d + c);                                    \
                    STORE(out + i * ldo + c, acc);                                                             \
                }                                                                                              \
        }                                                                                                      \
    }

SCORES(1, 8)
SCORES(2, 4)
VALUES(1)
VALUES(2)
VALUES(3)

/* softmax numerators in place over p[0, n8) (the entries from n on are -inf, giving 0); returns their sum */
static float softmax(float *p, int64_t n8) {
    v8 top = SPLAT(-INFINITY);
    for (int64_t j = 0; j < n8; j += 8)
        top = vmax(LOAD(p + j), top);
    float m = top[0];
    for (int e = 1; e < 8; e++)
        m = top[e] > m ? top[e] : m;
    v8 acc = {0};
    for (int64_t j = 0; j < n8; j += 8) {
        const v8 e = vexp(LOAD(p + j) - SPLAT(m));
        STORE(p + j, e);
        acc += e;
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* q, out: (rows, kv_heads, g, d); k, v: (kv_heads, capacity, d); row r attends to pool rows
 * [start[r], start[r] + len[r]). d must be a multiple of 8. Returns 0, or -1 when out of memory. */
int crosstune_decode_attention(const float *q, const float *k, const float *v, float *out, const int64_t *start,
                               const int64_t *len, int64_t rows, int64_t kv_heads, int64_t g, int64_t d,
                               int64_t capacity, float scale) {
    int64_t longest = 1;
    for (int64_t r = 0; r < rows; r++)
        if (len[r] > longest)
            longest = len[r];
    const int64_t ldp = (longest + 7) / 8 * 8;
    float *p = malloc(sizeof(float) * (size_t)(g * ldp + g));
    if (!p)
        return -1;
    float *sum = p + g * ldp;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t n = len[r], n8 = (n + 7) / 8 * 8;
        for (int64_t h = 0; h < kv_heads; h++) {
            const float *kr = k + (h * capacity + start[r]) * d;
            const float *vr = v + (h * capacity + start[r]) * d;
            const float *qr = q + (r * kv_heads + h) * g * d;
            float *orow = out + (r * kv_heads + h) * g * d;
            int64_t i = 0;
            for (; i + 2 <= g; i += 2)
                scores2(qr + i * d, kr, vr, n, d, scale, p + i * ldp, ldp, i == 0);
            for (; i < g; i++)
                scores1(qr + i * d, kr, vr, n, d, scale, p + i * ldp, ldp, i == 0);
            for (i = 0; i < g; i++) {
                for (int64_t j = n; j < n8; j++)
                    p[i * ldp + j] = -INFINITY;
                sum[i] = softmax(p + i * ldp, n8);
            }
            for (i = 0; i + 3 <= g; i += 3)
                values3(p + i * ldp, ldp, vr, n, d, orow + i * d, d);
            for (; i + 2 <= g; i += 2)
                values2(p + i * ldp, ldp, vr, n, d, orow + i * d, d);
            for (; i < g; i++)
                values1(p + i * ldp, ldp, vr, n, d, orow + i * d, d);
            for (i = 0; i < g; i++)
                for (int64_t e = 0; e < d; e++)
                    orow[i * d + e] /= sum[i];
        }
    }
    free(p);
    return 0;
}
