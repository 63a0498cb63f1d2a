/* Decode-step attention on a CPU for every row of a batch in one call (crosstune.models.backends.native).
 *
 * Each row has `g` query heads per key/value head and attends to its own contiguous region of a shared pool laid
 * out (kv_heads, capacity, head_dim), float32. torch's fused attention runs one call per row and reaches about a
 * quarter of this core's read bandwidth on such short queries; here every key and value of a region is read once
 * per head group (the group's other queries reuse it from cache), so a step costs little more than reading the
 * cache once.
 *
 * Same math as torch's scaled_dot_product_attention: scores = scale * q.k, softmax with the row maximum
 * subtracted, weights normalised by their sum at the end. Only the order of the additions inside a dot product
 * differs (8 partial sums added pairwise), so results agree to float rounding.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static float dot(const float *a, const float *b, int64_t d) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t e = 0; e < d; e += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += a[e + l] * b[e + l];
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
    float *p = malloc(sizeof(float) * (size_t)(g * longest));
    float *acc = malloc(sizeof(float) * (size_t)d);
    if (!p || !acc) {
        free(p);
        free(acc);
        return -1;
    }
    for (int64_t r = 0; r < rows; r++) {
        const int64_t n = len[r];
        for (int64_t h = 0; h < kv_heads; h++) {
            const float *kr = k + (h * capacity + start[r]) * d;
            const float *vr = v + (h * capacity + start[r]) * d;
            const float *qr = q + (r * kv_heads + h) * g * d;
            float *orow = out + (r * kv_heads + h) * g * d;
            for (int64_t j = 0; j < n; j++)
                for (int64_t i = 0; i < g; i++)
                    p[i * n + j] = dot(qr + i * d, kr + j * d, d) * scale;
            for (int64_t i = 0; i < g; i++) {
                float *pi = p + i * n;
                float top = -INFINITY, sum = 0.0f;
                for (int64_t j = 0; j < n; j++)
                    top = pi[j] > top ? pi[j] : top;
                for (int64_t j = 0; j < n; j++) {
                    pi[j] = expf(pi[j] - top);
                    sum += pi[j];
                }
                for (int64_t e = 0; e < d; e++)
                    acc[e] = 0.0f;
                for (int64_t j = 0; j < n; j++) {
                    const float w = pi[j], *vj = vr + j * d;
                    for (int64_t e = 0; e < d; e++)
                        acc[e] += w * vj[e];
                }
                for (int64_t e = 0; e < d; e++)
                    orow[i * d + e] = acc[e] / sum;
            }
        }
    }
    free(p);
    free(acc);
    return 0;
}
