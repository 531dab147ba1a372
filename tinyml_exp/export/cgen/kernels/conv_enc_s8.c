/* ---- tme conv_enc_s8: CONV_2D on encoded weights (int8; the tap lists also serve conv_enc_f32.c) --
 * The weights of output channel oc are its taps t = (ky * k_w + kx) * in_c + ic (TFLite's OHWI
 * order), encoded as in fc_enc_s8.c: bitmask sparse (ceil(taps / 32) mask words per channel + the
 * non-zero values in tap order) or clustered (4-bit indices, two per byte, every channel's row
 * starting on a byte, into one codebook or one per channel: cb_stride 0 or 16).
 * Per channel the kernel first lists its non-zero taps in scratch (a clustered tap whose codebook
 * value is 0 is left out too): the input offset of the tap from the window's origin, (ky, kx) and
 * the weight. A pixel whose window lies inside the input is then one loop of load-offset,
 * load-input, load-weight, MAC, with the input offset folded in as in_offset * sum(w); border pixels
 * check each tap, as the reference skips padding taps. Integer sums, max over a fused max-pool
 * window and the requantization are those of tme_conv_s8, so the outputs are identical.
 * scratch: taps int32 offsets, taps uint16 (ky, kx), then (clustered) taps weights. */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
    int32_t stride_h, stride_w, dil_h, dil_w, pad_h, pad_w, pool_h, pool_w, taps, cb_stride;
    int32_t in_offset, out_offset, act_min, act_max;
} tme_conv_enc_params_t;

/* The channel's tap list (in scratch) and where its pixels start. */
typedef struct {
    int32_t n;          /* taps listed */
    const int32_t *off; /* input offset of each tap from the window origin */
    const uint16_t *kyx; /* ky | kx << 8 */
} tme_taps_t;

/* Geometry the tap lists and the pixel loops need (shared by the int8 and float kernels). */
typedef struct {
    int32_t in_h, in_w, in_c, k_h, k_w, dil_h, dil_w, taps;
} tme_taps_geom_t;

TME_INLINE void tme_tap_put(const tme_taps_geom_t *g, int32_t t, int32_t n, int32_t *off,
                            uint16_t *kyx) {
    const int32_t row = g->k_w * g->in_c;
    const int32_t ky = t / row;
    const int32_t kx = (t - ky * row) / g->in_c;
    const int32_t ic = t - ky * row - kx * g->in_c;
    off[n] = (ky * g->dil_h * g->in_w + kx * g->dil_w) * g->in_c + ic;
    kyx[n] = (uint16_t)(ky | kx << 8);
}

/* Bitmask: the set bits of the channel's mask words, in tap order (the values follow in flash). */
static TME_UNUSED int32_t tme_taps_mask(const tme_taps_geom_t *g, const uint32_t *mask,
                                        int32_t *off, uint16_t *kyx) {
    int32_t n = 0;
    for (int32_t w = 0; 32 * w < g->taps; ++w) {
        for (uint32_t m = mask[w]; m != 0u; m &= m - 1u) {
            tme_tap_put(g, 32 * w + tme_ctz(m), n++, off, kyx);
        }
    }
    return n;
}

/* Clustered: the taps whose codebook value is not 0, their values into `val`. */
static TME_UNUSED int32_t tme_taps_clustered_s8(const tme_taps_geom_t *g, const uint8_t *idx,
                                                const int8_t *cb, int32_t *off, uint16_t *kyx,
                                                int8_t *val) {
    int32_t n = 0;
    for (int32_t t = 0; t < g->taps; ++t) {
        const int8_t v = cb[(idx[t >> 1] >> ((t & 1) * 4)) & 15u];
        if (v != 0) {
            val[n] = v;
            tme_tap_put(g, t, n++, off, kyx);
        }
    }
    return n;
}

/* Sparse clustered: the set bits of the mask, their values from the 4-bit indices `idx` (one per
 * set bit, in order). Returns the count; the row's index bytes are (count + 1) / 2. */
static TME_UNUSED int32_t tme_taps_sparse_clustered_s8(const tme_taps_geom_t *g, const uint32_t *mask,
                                                       const uint8_t *idx, const int8_t *cb,
                                                       int32_t *off, uint16_t *kyx, int8_t *val) {
    int32_t n = 0;
    for (int32_t w = 0; 32 * w < g->taps; ++w) {
        for (uint32_t m = mask[w]; m != 0u; m &= m - 1u, ++n) {
            val[n] = cb[(idx[n >> 1] >> ((n & 1) * 4)) & 15u];
            tme_tap_put(g, 32 * w + tme_ctz(m), n, off, kyx);
        }
    }
    return n;
}

#if defined(__GNUC__)
#define TME_IN_REGISTER(v) __asm__("" : "+r"(v))
#else
#define TME_IN_REGISTER(v) (void)0
#endif

/* 1 when the window at (iy0, ix0) has every tap inside the input. */
TME_INLINE int tme_window_inside(const tme_taps_geom_t *g, int32_t iy0, int32_t ix0) {
    return iy0 >= 0 && ix0 >= 0 && iy0 + (g->k_h - 1) * g->dil_h < g->in_h &&
           ix0 + (g->k_w - 1) * g->dil_w < g->in_w;
}

/* The raw accumulator (no bias) of one conv pixel: sum (x + in_offset) * w over the inside taps.
 * `at` is the input index of the window origin (may lie outside the input for border pixels). */
TME_INLINE int32_t tme_enc_acc_s8(const tme_taps_geom_t *g, const tme_taps_t *tl, const int8_t *val,
                                  int32_t wsum_off, int32_t in_offset, const int8_t *in, int32_t iy0,
                                  int32_t ix0) {
    const int32_t at = (iy0 * g->in_w + ix0) * g->in_c;
    const int32_t *off = tl->off;
    const int32_t n = tl->n;
    if (tme_window_inside(g, iy0, ix0)) {
        const int8_t *base = in + at;
        int32_t acc = wsum_off;
        for (int32_t k = 0; k < n; ++k) {
            acc += base[off[k]] * val[k];
        }
        return acc;
    }
    int32_t acc = 0;
    for (int32_t k = 0; k < n; ++k) {
        const int32_t iy = iy0 + (int32_t)(tl->kyx[k] & 0xFFu) * g->dil_h;
        const int32_t ix = ix0 + (int32_t)(tl->kyx[k] >> 8) * g->dil_w;
        if (iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w) {
            acc += (in[at + off[k]] + in_offset) * val[k];
        }
    }
    return acc;
}

TME_INLINE tme_taps_geom_t tme_taps_geom(const tme_conv_enc_params_t *p) {
    const tme_taps_geom_t g = {p->in_h, p->in_w, p->in_c, p->k_h, p->k_w, p->dil_h, p->dil_w, p->taps};
    return g;
}

/* Every (pooled) output of channel oc from its tap list. */
/* The raw accumulators of the 2 x 2 conv pixels (oy, ox) (oy, ox + 1) (oy + 1, ox) (oy + 1, ox + 1)
 * into acc[0..3]. When all four windows lie inside, each listed tap (offset, weight) is loaded
 * once for its four MACs; else pixel by pixel. `init` = in_offset * sum(w). */
static TME_UNUSED void tme_enc_quad_s8(const tme_conv_enc_params_t *p, const tme_taps_geom_t *g,
                                       const tme_taps_t *tl, const int8_t *val, int32_t init,
                                       const int8_t *in, int32_t oy, int32_t ox, int32_t *acc) {
    const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
    if (!tme_window_inside(g, iy0, ix0) ||
        !tme_window_inside(g, iy0 + p->stride_h, ix0 + p->stride_w)) {
        for (int32_t j = 0; j < 4; ++j) {
            acc[j] = tme_enc_acc_s8(g, tl, val, init, p->in_offset, in, iy0 + (j >> 1) * p->stride_h,
                                    ix0 + (j & 1) * p->stride_w);
        }
        return;
    }
    const int32_t dx = p->stride_w * p->in_c, dy = p->stride_h * p->in_w * p->in_c;
    const int8_t *b = in + (iy0 * p->in_w + ix0) * p->in_c;
    const int32_t *off = tl->off;
    TME_IN_REGISTER(b); /* else GCC re-adds the arena's address and the offset for every tap */
    TME_IN_REGISTER(off);
    int32_t a0 = init, a1 = init, a2 = init, a3 = init;
    for (int32_t k = 0; k < tl->n; ++k) {
        const int8_t *q = b + off[k];
        const int32_t v = val[k];
        a0 += q[0] * v;
        a1 += q[dx] * v;
        a2 += q[dy] * v;
        a3 += q[dy + dx] * v;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

TME_INLINE int8_t tme_enc_out_s8(const tme_conv_enc_params_t *p, int32_t acc, int32_t mult,
                                 int32_t shift) {
    return (int8_t)tme_clamp(tme_mbqm(acc, mult, shift) + p->out_offset, p->act_min, p->act_max);
}

/* Every (pooled) output of channel oc from its tap list: 2 x 2 blocks of conv pixels (a 2 x 2
 * max-pool window, or four outputs), the pixels outside whole blocks and other pools one by one. */
static TME_UNUSED void tme_conv_enc_channel_s8(const tme_conv_enc_params_t *p,
                                               const tme_taps_geom_t *g, const tme_taps_t *tl,
                                               const int8_t *val, const int8_t *in, int32_t bias,
                                               int32_t mult, int32_t shift, int32_t oc,
                                               int8_t *out) {
    int32_t wsum = 0;
    for (int32_t k = 0; k < tl->n; ++k) {
        wsum += val[k];
    }
    const int32_t init = wsum * p->in_offset, out_c = p->out_c, out_w = p->out_w;
    const int32_t pooled_h = p->out_h / p->pool_h, pooled_w = p->out_w / p->pool_w;
    int32_t acc[4];
    if (p->pool_h == 2 && p->pool_w == 2) {
        for (int32_t py = 0; py < pooled_h; ++py) {
            for (int32_t px = 0; px < pooled_w; ++px) {
                tme_enc_quad_s8(p, g, tl, val, init, in, 2 * py, 2 * px, acc);
                const int32_t best = TME_MAX(TME_MAX(acc[0], acc[1]), TME_MAX(acc[2], acc[3]));
                out[(py * pooled_w + px) * out_c + oc] = tme_enc_out_s8(p, best + bias, mult, shift);
            }
        }
        return;
    }
    const int32_t quads = p->pool_h == 1 && p->pool_w == 1;
    const int32_t qh = quads ? p->out_h / 2 * 2 : 0, qw = quads ? out_w / 2 * 2 : 0;
    for (int32_t oy = 0; oy < qh; oy += 2) {
        for (int32_t ox = 0; ox < qw; ox += 2) {
            tme_enc_quad_s8(p, g, tl, val, init, in, oy, ox, acc);
            int8_t *o = out + (oy * out_w + ox) * out_c + oc;
            o[0] = tme_enc_out_s8(p, acc[0] + bias, mult, shift);
            o[out_c] = tme_enc_out_s8(p, acc[1] + bias, mult, shift);
            o[out_w * out_c] = tme_enc_out_s8(p, acc[2] + bias, mult, shift);
            o[(out_w + 1) * out_c] = tme_enc_out_s8(p, acc[3] + bias, mult, shift);
        }
    }
    for (int32_t py = 0; py < pooled_h; ++py) {
        for (int32_t px = py < qh ? qw : 0; px < pooled_w; ++px) {
            int32_t best = INT32_MIN;
            for (int32_t dy = 0; dy < p->pool_h; ++dy) {
                const int32_t iy0 = (py * p->pool_h + dy) * p->stride_h - p->pad_h;
                for (int32_t dx = 0; dx < p->pool_w; ++dx) {
                    const int32_t ix0 = (px * p->pool_w + dx) * p->stride_w - p->pad_w;
                    const int32_t a = tme_enc_acc_s8(g, tl, val, init, p->in_offset, in, iy0, ix0);
                    best = TME_MAX(best, a);
                }
            }
            out[(py * pooled_w + px) * out_c + oc] = tme_enc_out_s8(p, best + bias, mult, shift);
        }
    }
}

/* Bitmask sparse: `mask` ceil(taps / 32) words per channel, `vals` the non-zero weights. */
static TME_UNUSED void tme_conv_bitmask_s8(const tme_conv_enc_params_t *p, const int8_t *in,
                                           const int8_t *vals, const uint32_t *mask,
                                           const int32_t *bias, const int32_t *mult,
                                           const int32_t *shift, uint32_t *scratch, int8_t *out) {
    const tme_taps_geom_t g = tme_taps_geom(p);
    int32_t *off = (int32_t *)(void *)scratch;
    uint16_t *kyx = (uint16_t *)(void *)(off + p->taps);
    const int32_t words = (p->taps + 31) / 32;
    for (int32_t oc = 0; oc < p->out_c; ++oc) {
        const tme_taps_t tl = {tme_taps_mask(&g, mask + oc * words, off, kyx), off, kyx};
        tme_conv_enc_channel_s8(p, &g, &tl, vals, in, bias[oc], mult[oc], shift[oc], oc, out);
        vals += tl.n;
    }
}

/* Clustered: `idx` (taps + 1) / 2 bytes per channel, codebook entry oc * cb_stride + k. */
static TME_UNUSED void tme_conv_clustered_s8(const tme_conv_enc_params_t *p, const int8_t *in,
                                             const uint8_t *idx, const int8_t *codebook,
                                             const int32_t *bias, const int32_t *mult,
                                             const int32_t *shift, uint32_t *scratch, int8_t *out) {
    const tme_taps_geom_t g = tme_taps_geom(p);
    int32_t *off = (int32_t *)(void *)scratch;
    uint16_t *kyx = (uint16_t *)(void *)(off + p->taps);
    int8_t *val = (int8_t *)(void *)(kyx + p->taps);
    const int32_t row = (p->taps + 1) / 2;
    for (int32_t oc = 0; oc < p->out_c; ++oc) {
        const int8_t *cb = codebook + oc * p->cb_stride;
        const tme_taps_t tl = {tme_taps_clustered_s8(&g, idx + oc * row, cb, off, kyx, val), off, kyx};
        tme_conv_enc_channel_s8(p, &g, &tl, val, in, bias[oc], mult[oc], shift[oc], oc, out);
    }
}

/* Sparse clustered (PCQAT): `mask` as tme_conv_bitmask_s8, `idx` a 4-bit codebook index per set
 * bit (every channel's indices start on a byte). */
static TME_UNUSED void tme_conv_sparse_clustered_s8(const tme_conv_enc_params_t *p, const int8_t *in,
                                                    const uint8_t *idx, const uint32_t *mask,
                                                    const int8_t *codebook, const int32_t *bias,
                                                    const int32_t *mult, const int32_t *shift,
                                                    uint32_t *scratch, int8_t *out) {
    const tme_taps_geom_t g = tme_taps_geom(p);
    int32_t *off = (int32_t *)(void *)scratch;
    uint16_t *kyx = (uint16_t *)(void *)(off + p->taps);
    int8_t *val = (int8_t *)(void *)(kyx + p->taps);
    const int32_t words = (p->taps + 31) / 32;
    for (int32_t oc = 0; oc < p->out_c; ++oc) {
        const int8_t *cb = codebook + oc * p->cb_stride;
        const int32_t n = tme_taps_sparse_clustered_s8(&g, mask + oc * words, idx, cb, off, kyx, val);
        const tme_taps_t tl = {n, off, kyx};
        tme_conv_enc_channel_s8(p, &g, &tl, val, in, bias[oc], mult[oc], shift[oc], oc, out);
        idx += (n + 1) / 2;
    }
}
