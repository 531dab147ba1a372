/* ---- tme dwconv_s8: DEPTHWISE_CONV_2D with depth multiplier 1, 4 channels per pass, SMLAD -------
 * As in the dual-MAC conv, the generator folds the input offset into the bias and padding taps
 * read the input zero point (a row of zero-point bytes in `scratch`), so the loop is a pure dot
 * product. Per 4 channels and per 2 taps: one word of 4 channels from each tap, SXTB16 (+ ROR 8)
 * gives channels (c, c + 2) and (c + 1, c + 3) of each tap, PKHBT / PKHTB pair the two taps of one
 * channel, and one SMLAD per channel multiplies them with the pre-packed int16 weight pair
 * (w[tap], w[tap + 1]). An odd last tap needs no pairing: its weights come as (c, c + 2) and
 * (c + 1, c + 3) and SMLABB / SMLATT take the matching halves. A 3 x 3 window on a multiple of 4
 * channels is 3 row pointers with taps at fixed offsets, so a run of pixels of one output row is
 * one call (rows outside the input read a pad band; a window over the left / right edge has its
 * rows' inside columns copied into scratch); other windows get a table of tap pointers (into the
 * input, or the pad row). A last group of fewer than 4 channels reads its bytes one by one (never
 * past the tensor). */
#define TME_DW_MAX_TAPS 25 /* up to 5 x 5 filters; the generator checks */

typedef struct {
    int32_t in_h, in_w, ch, out_h, out_w, k_h, k_w, stride_h, stride_w, pad_h, pad_w;
    int32_t tap_pairs, odd_tap, pad_value, out_offset, act_min, act_max, rq_mode;
    int32_t rq_sh; /* TME_DW_RQ_SH when all channels have that shift (the generator scales), or -1 */
} tme_dw_params_t;
#define TME_DW_RQ_SH 12 /* DW_RQ_SH in ops_int8_conv.py */
/* 3 x 3 on a multiple of 4 channels: per group its 18 weight words, then its 4 tme_rq_t (the very
 * last one with 256 added to its shift: the asm's group loop ends there) */
#define TME_DW_GROUP_WORDS 34

TME_INLINE uint32_t tme_load_partial(const int8_t *p, int32_t n) {
    uint32_t v = 0;
    for (int32_t k = 0; k < n; ++k) {
        v |= (uint32_t)(uint8_t)p[k] << (8 * k);
    }
    return v;
}

/* acc[j] += channel j of taps x0, x1 (4 channels each) times the weight pairs wg[j]. */
TME_INLINE void tme_dw_pair(uint32_t x0, uint32_t x1, const uint32_t *wg, int32_t *acc) {
    const uint32_t e0 = tme_sxtb16(x0), o0 = tme_sxtb16_ror8(x0);
    const uint32_t e1 = tme_sxtb16(x1), o1 = tme_sxtb16_ror8(x1);
    acc[0] = tme_smlad(tme_pack_lo(e0, e1), wg[0], acc[0]);
    acc[1] = tme_smlad(tme_pack_lo(o0, o1), wg[1], acc[1]);
    acc[2] = tme_smlad(tme_pack_hi(e0, e1), wg[2], acc[2]);
    acc[3] = tme_smlad(tme_pack_hi(o0, o1), wg[3], acc[3]);
}

/* The odd last tap: wg[0] = (w c, w c + 2), wg[1] = (w c + 1, w c + 3). */
TME_INLINE void tme_dw_single(uint32_t x, const uint32_t *wg, int32_t *acc) {
    const uint32_t e = tme_sxtb16(x), o = tme_sxtb16_ror8(x);
    acc[0] = tme_smlabb(e, wg[0], acc[0]);
    acc[2] = tme_smlatt(e, wg[0], acc[2]);
    acc[1] = tme_smlabb(o, wg[1], acc[1]);
    acc[3] = tme_smlatt(o, wg[1], acc[3]);
}

/* acc[j] += channel c + j over all taps; `n` (1..4) channels are real. */
TME_INLINE void tme_dw_group(const int8_t *const *taps, int32_t tap_pairs, int32_t odd, int32_t c,
                             int32_t n, const uint32_t *wg, int32_t *acc) {
    for (int32_t t = 0; t < tap_pairs; ++t, wg += 4) {
        const int8_t *p0 = taps[2 * t] + c;
        const int8_t *p1 = taps[2 * t + 1] + c;
        const uint32_t x0 = n == 4 ? tme_load32(p0) : tme_load_partial(p0, n);
        const uint32_t x1 = n == 4 ? tme_load32(p1) : tme_load_partial(p1, n);
        tme_dw_pair(x0, x1, wg, acc);
    }
    if (odd) {
        const int8_t *pl = taps[2 * tap_pairs] + c;
        tme_dw_single(n == 4 ? tme_load32(pl) : tme_load_partial(pl, n), wg, acc);
    }
}

/* A 3 x 3 window: rows[k] + c is its row k (in the input, the pad band or the edge window),
 * taps `col` bytes apart; d1 = rows[1] - rows[0], d2 = rows[2] - rows[1] (the asm adds them). */
#if defined(TME_DSP)
/* GCC spills the 4 accumulators, the 2 pointers and the offsets around the 9 taps (~2x the
 * instructions), so the group is written out: temporaries r0-r3, r12, lr; per tap pair 2 LDR,
 * 4 SXTB16, 4 PKH, 2 LDRD of the 4 weight words (immediate offsets from wg), 4 SMLAD. */
#define TME_DW_PAIR(LOAD_A, LOAD_B, W0, W2, MAC)                                                    \
    LOAD_A LOAD_B "sxtb16 r2, r0\n\tsxtb16 r0, r0, ror #8\n\t"                                    \
                  "sxtb16 r3, r1\n\tsxtb16 r1, r1, ror #8\n\t"                                    \
                  "pkhbt r12, r2, r3, lsl #16\n\tpkhtb r3, r3, r2, asr #16\n\t"                    \
                  "ldrd r2, lr, " W0 "\n\t" MAC("%[a0]", "r12", "r2")                              \
                  "pkhbt r12, r0, r1, lsl #16\n\t" MAC("%[a1]", "r12", "lr")                       \
                  "pkhtb r1, r1, r0, asr #16\n\tldrd r2, lr, " W2 "\n\t"                           \
                  MAC("%[a2]", "r3", "r2") MAC("%[a3]", "r1", "lr")
/* accumulate, or (the first pair of a sum starting at 0) set */
#define TME_DW_ACC(A, X, W) "smlad " A ", " X ", " W ", " A "\n\t"
#define TME_DW_SET(A, X, W) "smuad " A ", " X ", " W "\n\t"
#define TME_DW_L(R, ADDR) "ldr " R ", " ADDR "\n\t"
/* the row steps stay in memory (r2 is free where they are needed) */
#define TME_DW_NEXT_ROW(D) "ldr r2, %[" D "]\n\tadd %[p], %[p], r2\n\t"
/* The group's 9 weight addresses (words 0, 2, .. 16): at fixed offsets from w, or (a run of groups)
 * the first one post-indexing w to the next group and the others back from there. */
#define TME_DW_W_FIX(X)                                                                            \
    X("[%[w]]", "[%[w], #8]", "[%[w], #16]", "[%[w], #24]", "[%[w], #32]", "[%[w], #40]",          \
      "[%[w], #48]", "[%[w], #56]", "[%[w], #64]")
#define TME_DW_W_STEP(X)                                                                           \
    X("[%[w]], #72", "[%[w], #-64]", "[%[w], #-56]", "[%[w], #-48]", "[%[w], #-40]",               \
      "[%[w], #-32]", "[%[w], #-24]", "[%[w], #-16]", "[%[w], #-8]")
#define TME_DW_3X3_MACS(FIRST, W) W(FIRST##_MACS)
#define TME_DW_SET_MACS(...) TME_DW_MACS(TME_DW_SET, __VA_ARGS__)
#define TME_DW_ACC_MACS(...) TME_DW_MACS(TME_DW_ACC, __VA_ARGS__)
#define TME_DW_MACS(FIRST, W0, W8, W16, W24, W32, W40, W48, W56, W64)                              \
    TME_DW_PAIR(TME_DW_L("r0", "[%[p]]"), TME_DW_L("r1", "[%[p], %[col]]"), W0, W8, FIRST)        \
    TME_DW_PAIR(TME_DW_L("r0", "[%[p], %[col], lsl #1]") TME_DW_NEXT_ROW("d1"),                   \
                TME_DW_L("r1", "[%[p]]"), W16, W24, TME_DW_ACC)                                    \
    TME_DW_PAIR(TME_DW_L("r0", "[%[p], %[col]]"), TME_DW_L("r1", "[%[p], %[col], lsl #1]"), W32,   \
                W40, TME_DW_ACC)                                                                   \
    TME_DW_NEXT_ROW("d2")                                                                          \
    TME_DW_PAIR(TME_DW_L("r0", "[%[p]]"), TME_DW_L("r1", "[%[p], %[col]]"), W48, W56, TME_DW_ACC)  \
    /* the odd last tap: (w c, w c + 2), (w c + 1, w c + 3) */                                     \
    "ldr r0, [%[p], %[col], lsl #1]\n\tsxtb16 r2, r0\n\tsxtb16 r0, r0, ror #8\n\t"                \
    "ldrd r1, r3, " W64 "\n\t"                                                                    \
    "smlabb %[a0], r2, r1, %[a0]\n\tsmlatt %[a2], r2, r1, %[a2]\n\t"                               \
    "smlabb %[a1], r0, r3, %[a1]\n\tsmlatt %[a3], r0, r3, %[a3]\n\t"
TME_INLINE void tme_dw3x3_group(const int8_t *const *rows, int32_t d1, int32_t d2, int32_t c,
                                int32_t col, const uint32_t *wg, int32_t *acc) {
    register int32_t a0 __asm__("r8") = acc[0];
    register int32_t a1 __asm__("r9") = acc[1];
    register int32_t a2 __asm__("r10") = acc[2];
    register int32_t a3 __asm__("r11") = acc[3];
    register const int8_t *p __asm__("r4") = rows[0] + c;
    register int32_t cc __asm__("r5") = col;
    register const uint32_t *w __asm__("r6") = wg;
    __asm__(TME_DW_3X3_MACS(TME_DW_ACC, TME_DW_W_FIX)
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [p] "+r"(p)
            : [d1] "m"(d1), [d2] "m"(d2), [col] "r"(cc), [w] "r"(w)
            : "r0", "r1", "r2", "r3", "r12", "lr", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#define TME_DW_RQ_ASM 1
/* All groups of `n` pixels (one output row, taps of pixel i + 1 `pstep` bytes after those of
 * pixel i) with their TME_RQ_RELU requantization at zero point -128 (one SSAT): GCC keeps the
 * loops' pointers on the stack and reloads them per group, so the loops are written out too. The
 * generator folds the bias into c for TME_RQ_RELU, so the sums start at 0 (SMUAD). Per channel LDM
 * of its tme_rq_t (c, m, sh; they follow the group's weights, so w walks on through them), SMLAL,
 * ASR, SSAT, STRB; when the generator has scaled every channel to shift TME_DW_RQ_SH, SSAT does the
 * ASR. All 14 registers are taken: the pixel loop's end, the row steps and `back` (to the next
 * group's first tap) stay in memory; the group loop ends at the marked last shift. */
#define TME_DW_RQ(A)                                                                               \
    "ldm %[w]!, {r0, r1, r2, r3}\n\tsmlal r0, r1, " A ", r2\n\tasr r1, r1, r3\n\t"                 \
    "ssat r1, #8, r1\n\tstrb r1, [%[out]], #1\n\t"
/* every channel at shift TME_DW_RQ_SH: SSAT shifts */
#define TME_DW_RQ_FIXED(A)                                                                         \
    "ldm %[w]!, {r0, r1, r2, r3}\n\tsmlal r0, r1, " A ", r2\n\t"                                   \
    "ssat r1, #8, r1, asr #" TME_DW_STR(TME_DW_RQ_SH) "\n\tstrb r1, [%[out]], #1\n\t"
#define TME_DW_STR(X) TME_DW_STR_(X)
#define TME_DW_STR_(X) #X
#define TME_DW_RUN(RQ)                                                                             \
    __asm__ volatile("2:\n\tldr %[w], %[wg]\n\t"                                                   \
                     "1:\n\t" TME_DW_3X3_MACS(TME_DW_SET, TME_DW_W_STEP)                             \
                     "ldr lr, %[back]\n\tadd %[p], %[p], lr\n\t"                                  \
                     RQ("%[a0]") RQ("%[a1]") RQ("%[a2]") RQ("%[a3]")                               \
                     "tst r3, #256\n\tbeq 1b\n\t" /* the last channel's shift + 256 */         \
                     "ldr r0, %[padj]\n\tadd %[p], %[p], r0\n\t"                                   \
                     "ldr r0, %[oend]\n\tcmp %[out], r0\n\tbne 2b\n\t"                             \
                     : [p] "+r"(p), [w] "=&r"(w), [out] "+r"(o), [a0] "=&r"(a0), [a1] "=&r"(a1),   \
                       [a2] "=&r"(a2), [a3] "=&r"(a3)                                              \
                     : [d1] "m"(d1), [d2] "m"(d2), [col] "r"(c), [back] "m"(back), [wg] "m"(wg),  \
                       [padj] "m"(padj), [oend] "m"(oend)                                          \
                     : "r0", "r1", "r2", "r3", "r12", "lr", "cc", "memory")
TME_INLINE void tme_dw3x3_run_rq(const int8_t *row0, int32_t d1, int32_t d2, int32_t col,
                                 const uint32_t *wg, int8_t *out, int32_t n, int32_t pstep,
                                 int32_t rq_sh) {
    register const int8_t *p __asm__("r4") = row0;
    register int32_t c __asm__("r5") = col;
    register const uint32_t *w __asm__("r6");
    register int8_t *o __asm__("r7") = out;
    register int32_t a0 __asm__("r8"), a1 __asm__("r9"), a2 __asm__("r10"), a3 __asm__("r11");
    const int8_t *oend = out + n * col;
    const int32_t back = 4 - d1 - d2, padj = pstep - col; /* after a pixel p is col bytes on */
    if (rq_sh == TME_DW_RQ_SH) {
        TME_DW_RUN(TME_DW_RQ_FIXED);
    } else {
        TME_DW_RUN(TME_DW_RQ);
    }
}
#else
TME_INLINE void tme_dw3x3_group(const int8_t *const *rows, int32_t d1, int32_t d2, int32_t c,
                                int32_t col, const uint32_t *wg, int32_t *acc) {
    const int8_t *p0 = rows[0] + c, *p1 = rows[1] + c, *p2 = rows[2] + c;
    (void)d1;
    (void)d2;
    tme_dw_pair(tme_load32(p0), tme_load32(p0 + col), wg, acc);
    tme_dw_pair(tme_load32(p0 + 2 * col), tme_load32(p1), wg + 4, acc);
    tme_dw_pair(tme_load32(p1 + col), tme_load32(p1 + 2 * col), wg + 8, acc);
    tme_dw_pair(tme_load32(p2), tme_load32(p2 + col), wg + 12, acc);
    tme_dw_single(tme_load32(p2 + 2 * col), wg + 16, acc);
}
#endif

/* Tap pointers of output pixel (oy, ox), padding taps on the pad row. */
TME_INLINE void tme_dw_taps(const tme_dw_params_t *p, const int8_t *in, const int8_t *pad,
                            int32_t oy, int32_t ox, const int8_t **taps) {
    const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
    int32_t t = 0;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky;
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ix0 + kx;
            const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
            taps[t++] = inside ? in + (iy * p->in_w + ix) * p->ch : pad;
        }
    }
}

/* 32-bit difference of two addresses (the asm adds it to a pointer; unused on a 64-bit host). */
TME_INLINE int32_t tme_addr_diff(const int8_t *a, const int8_t *b) {
    return (int32_t)(uint32_t)((uintptr_t)a - (uintptr_t)b);
}

/* Pixels of a 3 x 3 band on the pad row: max(3, min(in_w, 512 / ch)); the generator reserves the
 * same (_dw_band in ops_int8_conv.py). */
TME_INLINE int32_t tme_dw_band(int32_t in_w, int32_t ch) {
    return TME_MAX(3, TME_MIN(in_w, 512 / ch));
}

/* n (a multiple of 8) bytes; on the DSP build 4 words per LDM / STM when both are word aligned
 * (ch is a multiple of 4, so unless the tensor is not) */
TME_INLINE void tme_dw_copy(int8_t *dst, const int8_t *src, int32_t n) {
#if defined(TME_DSP)
    if ((((uintptr_t)dst | (uintptr_t)src) & 3) == 0) {
        __asm__ volatile("subs %[n], %[n], #16\n\tblt 2f\n\t"
                         "1:\n\tldm %[s]!, {r0, r1, r2, r3}\n\tstm %[d]!, {r0, r1, r2, r3}\n\t"
                         "subs %[n], %[n], #16\n\tbge 1b\n\t"
                         "2:\n\tadds %[n], %[n], #8\n\tbne 3f\n\t"
                         "ldm %[s], {r0, r1}\n\tstm %[d], {r0, r1}\n\t3:\n\t"
                         : [d] "+r"(dst), [s] "+r"(src), [n] "+r"(n)
                         :
                         : "r0", "r1", "r2", "r3", "cc", "memory");
        return;
    }
#endif
    for (int32_t k = 0; k < n; k += 8) {
        const uint32_t a = tme_load32(src + k), b = tme_load32(src + k + 4);
        tme_store32(dst + k, a);
        tme_store32(dst + k + 4, b);
    }
}

/* n pixels of one output row, window rows at rows[0..2] (pixel i + 1 `pstep` bytes after pixel i) */
TME_INLINE void tme_dw3x3_pixels(const int8_t *const *rows, int32_t n, int32_t pstep, int32_t ch,
                                 const uint32_t *wpk, const int32_t *bias, int8_t *out, int32_t rq_sh, const int32_t mode, const int32_t zp,
                                 const int32_t lo, const int32_t hi) {
    const int32_t d1 = tme_addr_diff(rows[1], rows[0]), d2 = tme_addr_diff(rows[2], rows[1]);
#if defined(TME_DW_RQ_ASM)
    if (mode == TME_RQ_RELU && lo == -128 && hi == 127) {
        tme_dw3x3_run_rq(rows[0], d1, d2, ch, wpk, out, n, pstep, rq_sh);
        return;
    }
#else
    (void)rq_sh;
#endif
    for (int32_t i = 0; i < n; ++i) {
        const int8_t *r[3] = {rows[0] + i * pstep, rows[1] + i * pstep, rows[2] + i * pstep};
        const uint32_t *wg = wpk;
        for (int32_t c = 0; c < ch; c += 4, wg += TME_DW_GROUP_WORDS, out += 4) {
            int32_t acc[4] = {bias[c], bias[c + 1], bias[c + 2], bias[c + 3]};
            tme_rq_t rq[4];
            tme_dw3x3_group(r, d1, d2, c, ch, wg, acc);
            memcpy(rq, wg + 18, sizeof rq);
            rq[3].sh -= c == ch - 4 ? 256 : 0; /* the asm's end mark */
            out[0] = tme_rq_out(acc[0], rq, mode, zp, lo, hi);
            out[1] = tme_rq_out(acc[1], rq + 1, mode, zp, lo, hi);
            out[2] = tme_rq_out(acc[2], rq + 2, mode, zp, lo, hi);
            out[3] = tme_rq_out(acc[3], rq + 3, mode, zp, lo, hi);
        }
    }
}

TME_INLINE void tme_dwconv_body(const tme_dw_params_t *p, const int8_t *in, const uint32_t *wpk,
                                const int32_t *bias, const tme_rq_t *rq, int8_t *pad, int8_t *out,
                                const int32_t mode, const int32_t lo, const int32_t hi) {
    const int32_t ch = p->ch, tap_pairs = p->tap_pairs, odd = p->odd_tap, zp = p->out_offset;
    const int32_t in_h = p->in_h, in_w = p->in_w, ch4 = ch & ~3;
    const int32_t gstride = 4 * tap_pairs + 2 * odd; /* weight words per group of 4 channels */
    const int8_t *taps[TME_DW_MAX_TAPS];
    if (p->k_h == 3 && p->k_w == 3 && ch4 == ch) {
        /* 3 x 3 on whole groups: each window is 3 row pointers, so a run of pixels of one output
         * row takes one call. Rows above or below the input read a pad band (`band` pixels of the
         * pad value, runs over it at most kmax pixels long). A window over the left / right edge
         * has its rows' 2 inside columns copied into `win` = P a0 b0 P a1 b1 P a2 b2 P (P: pad
         * pixels, set once): the left window row k starts at its P, the right one at its a. */
        const int32_t band = tme_dw_band(in_w, ch), sw = p->stride_w, row_b = in_w * ch;
        const int32_t kmax = (band - 3) / sw + 1;
        const int32_t last = TME_MIN(p->out_w - 1, (in_w - 3 + p->pad_w) / sw); /* last inside ox */
        int8_t *win = pad + band * ch;
        const uint32_t pw = (uint8_t)p->pad_value * 0x01010101u;
        for (int32_t k = 0; k < band * ch; k += 4) {
            tme_store32(pad + k, pw);
        }
        for (int32_t k = 0; k < ch; k += 4) {
            tme_store32(win + k, pw);
            tme_store32(win + 3 * ch + k, pw);
            tme_store32(win + 6 * ch + k, pw);
            tme_store32(win + 9 * ch + k, pw);
        }
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int8_t *base[3];
            int outside = 0;
            for (int32_t ky = 0; ky < 3; ++ky) {
                const int32_t iy = iy0 + ky;
                const int inside = iy >= 0 && iy < in_h;
                base[ky] = inside ? in + iy * row_b : 0;
                outside |= !inside;
            }
            for (int32_t ox = 0; ox < p->out_w;) {
                const int32_t ix0 = ox * sw - p->pad_w;
                const int8_t *rows[3];
                int32_t n = 1;
                if (ix0 < 0 || ix0 + 3 > in_w) {
                    /* the first copied column; window row k from its P (left) or its a (right) */
                    const int32_t c0 = ix0 < 0 ? ix0 + 1 : ix0, start = ix0 < 0 ? 0 : ch;
                    const int whole = c0 >= 0 && c0 + 2 <= in_w;
                    for (int32_t ky = 0; ky < 3; ++ky) {
                        int8_t *dst = win + (3 * ky + 1) * ch;
                        if (!base[ky]) {
                            rows[ky] = pad;
                            continue;
                        }
                        rows[ky] = win + 3 * ky * ch + start;
                        if (whole) {
                            tme_dw_copy(dst, base[ky] + c0 * ch, 2 * ch);
                        } else { /* one of the 2 columns is outside too (a 1 or 2 pixel wide input) */
                            for (int32_t j = 0; j < 2; ++j, dst += ch) {
                                const int32_t ix = c0 + j;
                                const int in_x = ix >= 0 && ix < in_w;
                                for (int32_t k = 0; k < ch; k += 4) {
                                    tme_store32(dst + k, in_x ? tme_load32(base[ky] + ix * ch + k) : pw);
                                }
                            }
                        }
                    }
                } else {
                    n = outside ? TME_MIN(last - ox + 1, kmax) : last - ox + 1;
                    for (int32_t ky = 0; ky < 3; ++ky) {
                        rows[ky] = base[ky] ? base[ky] + ix0 * ch : pad;
                    }
                }
                tme_dw3x3_pixels(rows, n, sw * ch, ch, wpk, bias, out, p->rq_sh, mode, zp, lo, hi);
                out += n * ch;
                ox += n;
            }
        }
        return;
    }
    for (int32_t c = 0; c < ch; ++c) {
        pad[c] = (int8_t)p->pad_value;
    }
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const uint32_t *wg = wpk;
            tme_dw_taps(p, in, pad, oy, ox, taps);
            int32_t c = 0;
            for (; c < ch4; c += 4, wg += gstride) {
                int32_t acc[4] = {bias[c], bias[c + 1], bias[c + 2], bias[c + 3]};
                tme_dw_group(taps, tap_pairs, odd, c, 4, wg, acc);
                out[c] = tme_rq_out(acc[0], rq + c, mode, zp, lo, hi);
                out[c + 1] = tme_rq_out(acc[1], rq + c + 1, mode, zp, lo, hi);
                out[c + 2] = tme_rq_out(acc[2], rq + c + 2, mode, zp, lo, hi);
                out[c + 3] = tme_rq_out(acc[3], rq + c + 3, mode, zp, lo, hi);
            }
            if (c < ch) {
                const int32_t n = ch - c;
                int32_t acc[4] = {bias[c], bias[c + 1], bias[c + 2], bias[c + 3]};
                tme_dw_group(taps, tap_pairs, odd, c, n, wg, acc);
                for (int32_t j = 0; j < n; ++j) {
                    out[c + j] = tme_rq_out(acc[j], rq + c + j, mode, zp, lo, hi);
                }
            }
            out += ch;
        }
    }
}

/* bias: bias' per channel, padded to a multiple of 4; rq: NULL for 3 x 3 filters on a multiple of
 * 4 channels (in wpk, TME_DW_GROUP_WORDS); scratch: the pad row (ch bytes; for those 3 x 3 filters
 * the pad band of tme_dw_band pixels, then the edge window's 10 ch). */
static TME_UNUSED void tme_dwconv_s8(const tme_dw_params_t *p, const int8_t *in,
                                     const uint32_t *wpk, const int32_t *bias, const tme_rq_t *rq,
                                     uint32_t *scratch, int8_t *out) {
    int8_t *pad = (int8_t *)(void *)scratch;
    const int32_t lo = p->act_min, hi = p->act_max;
    if (p->rq_mode == TME_RQ_RELU && lo == -128 && hi == 127) { /* ReLU(6) at zero point -128: one SSAT */
        tme_dwconv_body(p, in, wpk, bias, rq, pad, out, TME_RQ_RELU, -128, 127);
    } else if (p->rq_mode == TME_RQ_RELU && hi == 127) { /* ReLU: SSAT does the upper clamp */
        tme_dwconv_body(p, in, wpk, bias, rq, pad, out, TME_RQ_RELU, lo, 127);
    } else if (p->rq_mode == TME_RQ_RELU) {
        tme_dwconv_body(p, in, wpk, bias, rq, pad, out, TME_RQ_RELU, lo, hi);
    } else if (p->rq_mode == TME_RQ_SIGNED) {
        tme_dwconv_body(p, in, wpk, bias, rq, pad, out, TME_RQ_SIGNED, lo, hi);
    } else {
        tme_dwconv_body(p, in, wpk, bias, rq, pad, out, TME_RQ_REFERENCE, lo, hi);
    }
}
