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

/* AVERAGE_POOL_2D, windows of at most 256 taps: 4 channels per pass, summed with SXTAB16 in 16-bit
 * lanes ((c, c + 2) and (c + 1, c + 3)); 256 int8 values always fit in a lane, so the sums are the
 * reference's int32 sums. A last group of fewer than 4 channels is summed byte by byte. */
TME_INLINE int8_t tme_avg_out(int32_t acc, int32_t count, int32_t lo, int32_t hi) {
    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
    return (int8_t)tme_clamp(acc, lo, hi);
}

static TME_UNUSED void tme_avgpool_s8(const tme_pool_params_t *p, const int8_t *in, int8_t *out) {
    const int32_t ch = p->ch, in_w = p->in_w, lo = p->act_min, hi = p->act_max;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_h;
        const int32_t fy0 = TME_MAX(0, -iy0), fy1 = TME_MIN(p->f_h, p->in_h - iy0);
        for (int32_t ox = 0; ox < p->out_w; ++ox, out += ch) {
            const int32_t ix0 = ox * p->stride_w - p->pad_w;
            const int32_t fx0 = TME_MAX(0, -ix0), fx1 = TME_MIN(p->f_w, in_w - ix0);
            const int32_t count = (fy1 - fy0) * (fx1 - fx0);
            const int8_t *base = in + ((iy0 + fy0) * in_w + ix0 + fx0) * ch;
            int32_t c = 0;
            for (; c < (ch & ~3); c += 4) {
                uint32_t e = 0, o = 0;
                for (int32_t fy = fy0; fy < fy1; ++fy) {
                    const int8_t *ip = base + (fy - fy0) * in_w * ch + c;
                    for (int32_t fx = fx0; fx < fx1; ++fx, ip += ch) {
                        const uint32_t x = tme_load32(ip);
                        e = tme_sxtab16(e, x);
                        o = tme_sxtab16_ror8(o, x);
                    }
                }
                out[c] = tme_avg_out((int16_t)(uint16_t)(e & 0xFFFFu), count, lo, hi);
                out[c + 1] = tme_avg_out((int16_t)(uint16_t)(o & 0xFFFFu), count, lo, hi);
                out[c + 2] = tme_avg_out((int16_t)(uint16_t)(e >> 16), count, lo, hi);
                out[c + 3] = tme_avg_out((int16_t)(uint16_t)(o >> 16), count, lo, hi);
            }
            for (; c < ch; ++c) {
                int32_t acc = 0;
                for (int32_t fy = fy0; fy < fy1; ++fy) {
                    const int8_t *ip = base + (fy - fy0) * in_w * ch + c;
                    for (int32_t fx = fx0; fx < fx1; ++fx, ip += ch) {
                        acc += *ip;
                    }
                }
                out[c] = tme_avg_out(acc, count, lo, hi);
            }
        }
    }
}
