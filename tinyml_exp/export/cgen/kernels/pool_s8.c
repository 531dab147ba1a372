/* ---- tme pool_s8: int8 MAX_POOL_2D / AVERAGE_POOL_2D (TFLite reference_integer_ops) ------------
 * Windows are clipped to the input (padding taps are skipped, not zeros); the average divides by
 * the number of taps inside, rounding half away from zero with integer division like the reference.
 */
typedef struct {
    int32_t in_h, in_w, ch, out_h, out_w, f_h, f_w, stride_h, stride_w, pad_h, pad_w;
    int32_t is_avg, act_min, act_max;
} tme_pool_params_t;

static TME_UNUSED void tme_pool_s8(const tme_pool_params_t *p, const int8_t *in, int8_t *out) {
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_h;
        const int32_t fy0 = TME_MAX(0, -iy0);
        const int32_t fy1 = TME_MIN(p->f_h, p->in_h - iy0);
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_w;
            const int32_t fx0 = TME_MAX(0, -ix0);
            const int32_t fx1 = TME_MIN(p->f_w, p->in_w - ix0);
            for (int32_t c = 0; c < p->ch; ++c) {
                int32_t acc = p->is_avg ? 0 : -128;
                int32_t count = 0;
                for (int32_t fy = fy0; fy < fy1; ++fy) {
                    for (int32_t fx = fx0; fx < fx1; ++fx) {
                        const int32_t v = in[((iy0 + fy) * p->in_w + ix0 + fx) * p->ch + c];
                        acc = p->is_avg ? acc + v : TME_MAX(acc, v);
                        ++count;
                    }
                }
                if (p->is_avg && count > 0) {
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                *out++ = (int8_t)tme_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}
