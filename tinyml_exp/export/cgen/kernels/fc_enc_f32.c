/* ---- tme fc_enc_f32: float32 FULLY_CONNECTED on encoded weights (needs f32.c) -------------------
 * Same layouts as fc_enc_s8.c (4-bit indices into float codebooks; 2:4 values + 2-bit positions).
 * The products are summed in tme_fc_f32's order, and the weights are the same floats, so results
 * equal tme_fc_f32's; the 2:4 kernel only leaves out terms x * 0, which add nothing (finite x). */

static TME_UNUSED void tme_fc_clustered_f32(const tme_fc_f32_params_t *p, const float *in,
                                            const uint8_t *idx, const float *codebook,
                                            int32_t cb_stride, const float *bias, float *out) {
    const int32_t pairs = p->in_n / 2;
    for (int32_t oc = 0; oc < p->out_n; ++oc) {
        const float *cb = codebook + oc * cb_stride;
        float acc = 0.0f;
        int32_t i = 0;
        for (; i < pairs; ++i) {
            const uint32_t b = idx[i];
            acc += in[2 * i] * cb[b & 15u];
            acc += in[2 * i + 1] * cb[b >> 4];
        }
        if (p->in_n & 1) {
            acc += in[2 * i] * cb[idx[i] & 15u];
            ++i;
        }
        idx += i;
        out[oc] = tme_clampf(acc + (bias != NULL ? bias[oc] : 0.0f), p->act_min, p->act_max);
    }
}

static TME_UNUSED void tme_fc_sparse24_f32(const tme_fc_f32_params_t *p, const float *in,
                                           const float *vals, const uint8_t *pos,
                                           const float *bias, float *out) {
    const int32_t blocks = p->in_n / 4;
    for (int32_t oc = 0; oc < p->out_n; ++oc) {
        float acc = 0.0f;
        for (int32_t b = 0; b < blocks; ++b) {
            const uint32_t q = (uint32_t)pos[b >> 1] >> ((b & 1) * 4);
            acc += in[4 * b + (q & 3u)] * vals[0];
            acc += in[4 * b + ((q >> 2) & 3u)] * vals[1];
            vals += 2;
        }
        pos += (blocks + 1) / 2;
        out[oc] = tme_clampf(acc + (bias != NULL ? bias[oc] : 0.0f), p->act_min, p->act_max);
    }
}

/* Bitmask sparse, the layout of tme_fc_bitmask_s8 (fc_enc_s8.c, not pasted into float models). */
static TME_UNUSED void tme_fc_bitmask_f32(const tme_fc_f32_params_t *p, const float *in,
                                          const float *vals, const uint32_t *mask,
                                          const float *bias, float *out) {
    const int32_t words = (p->in_n + 31) / 32;
    for (int32_t oc = 0; oc < p->out_n; ++oc) {
        float acc = 0.0f;
        for (int32_t k = 0; k < words; ++k) {
            const float *x = in + 32 * k;
            for (uint32_t m = *mask++; m != 0u; m &= m - 1u) {
                acc += x[tme_ctz(m)] * *vals++;
            }
        }
        out[oc] = tme_clampf(acc + (bias != NULL ? bias[oc] : 0.0f), p->act_min, p->act_max);
    }
}

/* Sparse clustered (PCQAT), the layout of tme_fc_sparse_clustered_s8 with float codebooks. */
static TME_UNUSED void tme_fc_sparse_clustered_f32(const tme_fc_f32_params_t *p, const float *in,
                                                   const uint8_t *idx, const uint32_t *mask,
                                                   const float *codebook, int32_t cb_stride,
                                                   const float *bias, float *out) {
    const int32_t words = (p->in_n + 31) / 32;
    for (int32_t oc = 0; oc < p->out_n; ++oc) {
        const float *cb = codebook + oc * cb_stride;
        float acc = 0.0f;
        uint32_t j = 0;
        for (int32_t k = 0; k < words; ++k) {
            const float *x = in + 32 * k;
            for (uint32_t m = *mask++; m != 0u; m &= m - 1u, ++j) {
                acc += x[tme_ctz(m)] * cb[(idx[j >> 1] >> ((j & 1u) * 4u)) & 15u];
            }
        }
        idx += (j + 1u) / 2u;
        out[oc] = tme_clampf(acc + (bias != NULL ? bias[oc] : 0.0f), p->act_min, p->act_max);
    }
}
