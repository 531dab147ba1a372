/* ---- tme fc_enc_s8: int8 FULLY_CONNECTED on encoded weights (needs fc_s8.c) --------------------
 * The generator picks an encoding per layer (export.weights) only when the weights have the
 * pattern; both kernels compute the same integer sum as tme_fc_s8 and requantize with
 * tme_fc_requant, so outputs are identical. As in tme_fc_packed_s8, `bias` already holds
 * bias + in_offset * sum(row) (weights are symmetric), so the sum runs over the raw input.
 */

/* Clustered: row `oc` is in_n 4-bit indices, two per byte (low nibble first), each row starting
 * on a byte; index k stands for codebook[oc * cb_stride + k] (cb_stride 0: one codebook for the
 * tensor, 16: one per output channel). */
static TME_UNUSED void tme_fc_clustered_s8(const tme_fc_params_t *p, const int8_t *in,
                                           const uint8_t *idx, const int8_t *codebook,
                                           int32_t cb_stride, const int32_t *bias,
                                           const int32_t *mult, const int32_t *shift,
                                           const double *scale, int8_t *out) {
    const int32_t pairs = p->in_n / 2;
    for (int32_t oc = 0; oc < p->out_n; ++oc) {
        const int8_t *cb = codebook + oc * cb_stride;
        int32_t acc = bias[oc];
        int32_t i = 0;
        for (; i < pairs; ++i) {
            const uint32_t b = idx[i];
            acc += cb[b & 15u] * in[2 * i] + cb[b >> 4] * in[2 * i + 1];
        }
        if (p->in_n & 1) {
            acc += cb[idx[i] & 15u] * in[2 * i];
            ++i;
        }
        idx += i;
        out[oc] = tme_fc_requant(p, acc, oc, mult, shift, scale);
    }
}

/* 2:4 sparse: in every block of 4 inputs a row has at most 2 non-zero weights. Per row, `vals`
 * holds 2 values per block (zeros where a block has fewer) and `pos` one nibble per block (two
 * blocks per byte, low nibble first): bits 0-1 the position of the first value, bits 2-3 the
 * second's. Only those 2 MACs per block are done. in_n % 4 == 0; with an odd number of blocks a
 * row's last position byte has one nibble (rows start on a byte). */
static TME_UNUSED void tme_fc_sparse24_s8(const tme_fc_params_t *p, const int8_t *in,
                                          const int8_t *vals, const uint8_t *pos,
                                          const int32_t *bias, const int32_t *mult,
                                          const int32_t *shift, const double *scale,
                                          int8_t *out) {
    const int32_t blocks2 = p->in_n / 8;
    for (int32_t oc = 0; oc < p->out_n; ++oc) {
        int32_t acc = bias[oc];
        const int8_t *x = in;
        for (int32_t b = 0; b < blocks2; ++b) {
            const uint32_t q = pos[b];
            acc += vals[0] * x[q & 3u] + vals[1] * x[(q >> 2) & 3u];
            acc += vals[2] * x[4 + ((q >> 4) & 3u)] + vals[3] * x[4 + (q >> 6)];
            vals += 4;
            x += 8;
        }
        if (p->in_n & 4) {
            const uint32_t q = pos[blocks2];
            acc += vals[0] * x[q & 3u] + vals[1] * x[(q >> 2) & 3u];
            vals += 2;
        }
        pos += (p->in_n + 4) / 8;
        out[oc] = tme_fc_requant(p, acc, oc, mult, shift, scale);
    }
}

/* Clustered on the dual-MAC path (in_n % 4 == 0, input 4-byte aligned): for every 4 inputs the
 * two index bytes are (i0 | i2 << 4) and (i1 | i3 << 4), and select words of a 256-entry table
 * of codebook pairs (cb[lo] in the low half, cb[hi] in the high half, built in `table` (scratch)
 * for each codebook) that SMLAD multiplies with the input's even and odd bytes. */
TME_INLINE void tme_cb_pairs(const int8_t *cb, uint32_t *table) {
    for (uint32_t hi = 0; hi < 16u; ++hi) {
        const uint32_t h = (uint32_t)(int32_t)cb[hi] << 16;
        for (uint32_t lo = 0; lo < 16u; ++lo) {
            table[hi * 16u + lo] = h | ((uint32_t)(int32_t)cb[lo] & 0xFFFFu);
        }
    }
}

/* Rows oc0 and oc0 + 1 (one codebook): every input word feeds both. */
TME_INLINE void tme_fc_pairs_2rows(const uint32_t *xp, int32_t groups, const uint8_t *i0,
                                   const uint8_t *i1, const uint32_t *t, int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1];
    for (int32_t g = 0; g < groups; ++g) {
        const uint32_t x = xp[g];
        const uint32_t xe = tme_sxtb16(x), xo = tme_sxtb16_ror8(x);
        a0 = tme_smlad(xe, t[i0[0]], a0);
        a0 = tme_smlad(xo, t[i0[1]], a0);
        a1 = tme_smlad(xe, t[i1[0]], a1);
        a1 = tme_smlad(xo, t[i1[1]], a1);
        i0 += 2;
        i1 += 2;
    }
    acc[0] = a0;
    acc[1] = a1;
}

static TME_UNUSED void tme_fc_clustered_pairs_s8(const tme_fc_params_t *p, const int8_t *in,
                                                 const uint8_t *idx, const int8_t *codebook,
                                                 int32_t cb_stride, uint32_t *table,
                                                 const int32_t *bias, const int32_t *mult,
                                                 const int32_t *shift, const double *scale,
                                                 int8_t *out) {
    const uint32_t *xp = (const uint32_t *)(const void *)in;
    const int32_t groups = p->in_n / 4, row_bytes = p->in_n / 2;
    /* one codebook: two rows per pass; one per channel: one row per table */
    const int32_t rows = cb_stride == 0 ? 2 : 1;
    for (int32_t oc = 0; oc < p->out_n; oc += rows) {
        if (oc == 0 || cb_stride != 0) {
            tme_cb_pairs(codebook + oc * cb_stride, table);
        }
        const uint32_t *t = table;
#if defined(__GNUC__)
        /* keep the table base in a register: else GCC adds the arena offset before every load */
        __asm__("" : "+r"(t));
#endif
        const int32_t n = TME_MIN(rows, p->out_n - oc);
        int32_t acc[2] = {bias[oc], n > 1 ? bias[oc + 1] : 0};
        const uint8_t *i0 = idx + oc * row_bytes;
        if (n == 2) {
            tme_fc_pairs_2rows(xp, groups, i0, i0 + row_bytes, t, acc);
        } else {
            for (int32_t g = 0; g < groups; ++g) {
                const uint32_t x = xp[g];
                acc[0] = tme_smlad(tme_sxtb16(x), t[i0[0]], acc[0]);
                acc[0] = tme_smlad(tme_sxtb16_ror8(x), t[i0[1]], acc[0]);
                i0 += 2;
            }
        }
        for (int32_t j = 0; j < n; ++j) {
            out[oc + j] = tme_fc_requant(p, acc[j], oc + j, mult, shift, scale);
        }
    }
}

/* Bitmask sparse (any zeros): per row ceil(in_n / 32) mask words, bit b of word k set when input
 * 32k + b has a non-zero weight; `vals` the non-zero weights in that order. One MAC per set bit. */
static TME_UNUSED void tme_fc_bitmask_s8(const tme_fc_params_t *p, const int8_t *in,
                                         const int8_t *vals, const uint32_t *mask,
                                         const int32_t *bias, const int32_t *mult,
                                         const int32_t *shift, const double *scale, int8_t *out) {
    const int32_t words = (p->in_n + 31) / 32;
    for (int32_t oc = 0; oc < p->out_n; ++oc) {
        int32_t acc = bias[oc];
        for (int32_t k = 0; k < words; ++k) {
            const int8_t *x = in + 32 * k;
            for (uint32_t m = *mask++; m != 0u; m &= m - 1u) {
                acc += *vals++ * x[tme_ctz(m)];
            }
        }
        out[oc] = tme_fc_requant(p, acc, oc, mult, shift, scale);
    }
}

/* Sparse clustered (PCQAT): the masks of tme_fc_bitmask_s8, and per non-zero weight a 4-bit index
 * into the codebook (cb_stride as tme_fc_clustered_s8), two per byte, every row on a byte. */
static TME_UNUSED void tme_fc_sparse_clustered_s8(const tme_fc_params_t *p, const int8_t *in,
                                                  const uint8_t *idx, const uint32_t *mask,
                                                  const int8_t *codebook, int32_t cb_stride,
                                                  const int32_t *bias, const int32_t *mult,
                                                  const int32_t *shift, const double *scale,
                                                  int8_t *out) {
    const int32_t words = (p->in_n + 31) / 32;
    for (int32_t oc = 0; oc < p->out_n; ++oc) {
        const int8_t *cb = codebook + oc * cb_stride;
        int32_t acc = bias[oc];
        uint32_t j = 0;
        for (int32_t k = 0; k < words; ++k) {
            const int8_t *x = in + 32 * k;
            for (uint32_t m = *mask++; m != 0u; m &= m - 1u, ++j) {
                acc += cb[(idx[j >> 1] >> ((j & 1u) * 4u)) & 15u] * x[tme_ctz(m)];
            }
        }
        idx += (j + 1u) / 2u;
        out[oc] = tme_fc_requant(p, acc, oc, mult, shift, scale);
    }
}
