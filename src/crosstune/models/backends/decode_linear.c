/* Decode-step matrix product on a CPU: out = w @ xt for a few columns (crosstune.models.backends.native).
 *
 * A decode step multiplies every weight matrix (O, K), row-major, by the batch's activations held feature-major,
 * xt (K, N) with N the live rows (1-32). Each weight is read once from memory per step, so the product should run
 * at the speed of that read; oneDNN and MKL reach about a third of a core's multiply-add rate on so few columns.
 * Here blocks of 6 weight rows are multiplied by 16 (or 8) columns at a time with the columns as the vector lanes:
 * each weight element is broadcast once and meets 16 columns in two fused multiply-adds, the 12 accumulators stay in
 * registers, and the next block's rows are prefetched while this one runs.
 *
 * Each out[r][c] is the sum over k = 0..K-1 in order of w[r][k] * xt[k][c] (fused multiply-add where the target has
 * it): the same numbers at any thread count and any N, differing from a BLAS product only in the order of the sums.
 * Written with GCC/Clang vector extensions, so it compiles for any target (AVX2 here, NEON on ARM).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
#define LOAD(p) (*(const v8u *)(p))
#define SPLAT(s) ((v8){(s), (s), (s), (s), (s), (s), (s), (s)})
#define ROWS 6

/* rows [r, r + ROWS) against one 16-column tile xp (K, 16); the first `nc` columns go to out (row stride ldo) */
static void block16(const float *w, int64_t K, const float *xp, float *out, int64_t ldo, int64_t nc) {
    v8 a[ROWS][2] = {{{0}}};
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
        const int64_t end = k0 + 16 < K ? k0 + 16 : K;
        for (int i = 0; i < ROWS; i++)  /* the next block's rows, one cache line each per 16 columns of k */
            __builtin_prefetch(w + (ROWS + i) * K + k0, 0, 0);
#pragma GCC unroll 16
        for (int64_t k = k0; k < end; k++) {
            const v8 x0 = LOAD(xp + 16 * k), x1 = LOAD(xp + 16 * k + 8);
            for (int i = 0; i < ROWS; i++) {
                const v8 b = SPLAT(w[i * K + k]);
                a[i][0] += b * x0;
                a[i][1] += b * x1;
            }
        }
    }
    float t[16];
    for (int i = 0; i < ROWS; i++) {
        memcpy(t, &a[i][0], sizeof t / 2);
        memcpy(t + 8, &a[i][1], sizeof t / 2);
        memcpy(out + i * ldo, t, sizeof(float) * (size_t)nc);
    }
}

/* the same with an 8-column tile (N's last 1-8 columns): half the multiply-adds per weight element */
static void block8(const float *w, int64_t K, const float *xp, float *out, int64_t ldo, int64_t nc) {
    v8 a[ROWS] = {{0}};
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
        const int64_t end = k0 + 16 < K ? k0 + 16 : K;
        for (int i = 0; i < ROWS; i++)
            __builtin_prefetch(w + (ROWS + i) * K + k0, 0, 0);
#pragma GCC unroll 16
        for (int64_t k = k0; k < end; k++) {
            const v8 x0 = LOAD(xp + 8 * k);
            for (int i = 0; i < ROWS; i++)
                a[i] += SPLAT(w[i * K + k]) * x0;
        }
    }
    float t[8];
    for (int i = 0; i < ROWS; i++) {
        memcpy(t, &a[i], sizeof t);
        memcpy(out + i * ldo, t, sizeof(float) * (size_t)nc);
    }
}

/* one weight row against a tile of `width` (8 or 16) columns: the rows left over after the blocks of ROWS */
static void row(const float *w, int64_t K, const float *xp, int64_t width, float *out, int64_t nc) {
    float acc[16] = {0};
    for (int64_t k = 0; k < K; k++)
        for (int64_t c = 0; c < width; c++)
            acc[c] += w[k] * xp[width * k + c];
    memcpy(out, acc, sizeof(float) * (size_t)nc);
}

/* Rows [o0, o1) of out (O, N) row-major = w (O, K) row-major @ xt (K, N) row-major. Returns 0, or -1 when out of
 * memory for the packed columns. */
int crosstune_decode_linear(const float *w, const float *xt, float *out, int64_t o0, int64_t o1, int64_t K,
                            int64_t N) {
    const int64_t tiles = (N + 15) / 16;
    float *xp = malloc(sizeof(float) * (size_t)(tiles * 16 * K));
    if (!xp)
        return -1;
    /* tile t: columns [16t, 16t + nc), packed (K, width): 16 wide, 8 when 8 or fewer columns are left */
#define NC(t) (N - 16 * (t) < 16 ? N - 16 * (t) : 16)
#define WIDTH(t) (NC(t) <= 8 ? 8 : 16)
    for (int64_t t = 0; t < tiles; t++) {
        float *dst = xp + 16 * t * K;
        for (int64_t k = 0; k < K; k++) {
            memcpy(dst + WIDTH(t) * k, xt + k * N + 16 * t, sizeof(float) * (size_t)NC(t));
            memset(dst + WIDTH(t) * k + NC(t), 0, sizeof(float) * (size_t)(WIDTH(t) - NC(t)));
        }
    }
    int64_t r = o0;
    for (; r + ROWS <= o1; r += ROWS)
        for (int64_t t = 0; t < tiles; t++)
            (WIDTH(t) == 16 ? block16 : block8)(w + r * K, K, xp + 16 * t * K, out + r * N + 16 * t, N, NC(t));
    for (; r < o1; r++)
        for (int64_t t = 0; t < tiles; t++)
            row(w + r * K, K, xp + 16 * t * K, WIDTH(t), out + r * N + 16 * t, NC(t));
    free(xp);
    return 0;
}
