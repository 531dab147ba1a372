/* ---- dual-MAC path for any CONV_2D without pooling: 2 pixels x 2 output channels per inner loop --
 * The generator folds the input offset into the bias, bias' = bias + in_offset * sum(w), and
 * padding taps are gathered as the input zero point (pad_value = -in_offset), so they contribute
 * (zp + in_offset) * w = 0 exactly like the reference's skipped taps: the inner loop is a pure dot
 * product of raw int8 values. The patches of two consecutive output pixels a, b (row-major, so a
 * pair may wrap to the next row; an odd last pixel is paired with itself) are gathered into
 * `scratch` as int16 pairs in SXTB16's order, interleaved per 4 taps: a(t0, t2) a(t1, t3)
 * b(t0, t2) b(t1, t3). Taps are padded with zero weights to k4, a multiple of 8, or of 4 for a
 * small layer at TME_RQ_RELU, zero point -128 (a 27-tap RGB stem does 28 MACs, not 32): there the
 * DSP build runs an odd count of 4-tap groups, from weights widened once per call into scratch.
 * When in_c % 4 != 0 the taps are ordered per filter row its whole words, then all rows' last
 * (k_w * in_c) % 4 bytes. A 1 x 1
 * convolution gathers one input pixel: a straight widening copy. The weights come per output
 * channel pair and per 4 taps as the words of channel 2j and 2j + 1 (an odd last channel is paired
 * with itself; duplicates are not stored). Per 4 taps: one 4-word load of the patches, one
 * 2-word load of the weights, 4 SXTB16 and 8 SMLAD for 16 MACs; requantization once per output. */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
    int32_t stride_h, stride_w, pad_h, pad_w, k4;
    int32_t wide_pairs; /* tme_conv_im2col_wide_s8: the channel pairs whose weights it widens */
    int32_t pad_value, out_offset, act_min, act_max, rq_mode;
} tme_conv_im2col_params_t;

TME_INLINE uint32_t tme_pack16(int32_t lo, int32_t hi) {
    return ((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16);
}

/* Widens `words` words of 4 int8 values into the patch layout (2 words per 4 taps, every 4th pair). */
TME_INLINE uint32_t *tme_widen(const int8_t *src, int32_t words, uint32_t *col) {
    const uint32_t *const end = col + 4 * words;
    while (col != end) {
        const uint32_t x = tme_load32(src);
        src += 4;
        col[0] = tme_sxtb16(x);
        col[1] = tme_sxtb16_ror8(x);
        col += 4;
    }
    return col;
}

TME_INLINE uint32_t *tme_fill(uint32_t v, int32_t words, uint32_t *col) {
    for (int32_t k = 0; k < words; ++k, col += 4) {
        col[0] = v;
        col[1] = v;
    }
    return col;
}

#if defined(__GNUC__)
#define TME_NOINLINE __attribute__((noinline))
#define TME_LIKELY(c) __builtin_expect(!!(c), 1)
#else
#define TME_NOINLINE
#define TME_LIKELY(c) (c)
#endif

/* Stores tap value v as the int16 at index `i` of `col` (alias-safe: the patch is read as words). */
TME_INLINE void tme_store16(uint32_t *col, int32_t i, int32_t v) {
    const int16_t h = (int16_t)v;
#if defined(__GNUC__)
    __builtin_memcpy((int16_t *)(void *)col + i, &h, sizeof h);
#else
    memcpy((int16_t *)(void *)col + i, &h, sizeof h);
#endif
}

/* One filter row of n bytes at `src`: its whole words widened into the patch at `col`, its last
 * n % 4 bytes to the tail's taps t, t + 1, ... (the generator orders the weights the same way). */
TME_INLINE uint32_t *tme_im2col_row(const int8_t *src, int32_t n, uint32_t *col, uint32_t *tail,
                                    int32_t t) {
    const int32_t n4 = n & ~3;
    for (int32_t k = 0; k < n4; k += 4, col += 4) {
        const uint32_t x = tme_load32(src + k);
        col[0] = tme_sxtb16(x);
        col[1] = tme_sxtb16_ror8(x);
    }
    /* tap t sits in group t / 4, in word t % 2, in its high half when t % 4 >= 2. At most 3
     * iterations, visibly: bounded by `n` alone, GCC bounds the loop by the arena's size instead
     * and fails the build (-Werror=aggressive-loop-optimizations) */
    for (int32_t j = 0; j < (n & 3); ++j, ++t) {
        tme_store16(tail, 8 * (t >> 2) + 2 * (t & 1) + ((t >> 1) & 1), src[n4 + j]);
    }
    return col;
}

/* The patch of the output pixel whose window starts at input (iy0, ix0), for in_c % 4 != 0: its
 * filter rows (n = k_w * in_c bytes) do not split into words, so the taps are ordered per row its
 * whole words, then the rows' last n % 4 bytes together (the tail), written straight into the
 * patch without a byte copy. A row not wholly inside is first copied into `stage` with the
 * padding. */
TME_INLINE void tme_im2col_rows_s8(const int8_t *in, const int32_t iy0, const int32_t ix0,
                                   uint32_t *col, int8_t *stage, const int32_t in_h,
                                   const int32_t in_w, const int32_t in_c, const int32_t k_h,
                                   const int32_t k_w, const int32_t n, const int32_t pad) {
    const int cols_inside = ix0 >= 0 && ix0 + k_w <= in_w;
    const int8_t *row = in + (iy0 * in_w + ix0) * in_c;
    const int32_t step = in_w * in_c, r = n & 3;
    uint32_t *const tail = col + k_h * (n >> 2) * 4;
    if (cols_inside && iy0 >= 0 && iy0 + k_h <= in_h) { /* no per-row checks */
        for (int32_t ky = 0; ky < k_h; ++ky, row += step) {
            col = tme_im2col_row(row, n, col, tail, ky * r);
        }
        return;
    }
    for (int32_t ky = 0; ky < k_h; ++ky, row += step) {
        const int row_inside = iy0 + ky >= 0 && iy0 + ky < in_h;
        const int8_t *src = row;
        if (!(row_inside && cols_inside)) {
            int8_t *sp = stage;
            for (int32_t kx = 0; kx < k_w; ++kx) {
                const int inside = row_inside && ix0 + kx >= 0 && ix0 + kx < in_w;
                for (int32_t ic = 0; ic < in_c; ++ic) {
                    *sp++ = (int8_t)(inside ? row[kx * in_c + ic] : pad);
                }
            }
            src = stage;
        }
        col = tme_im2col_row(src, n, col, tail, ky * r);
    }
}

/* Both patches of the pair at `pix` (pixel b = pix + 1 when `two`, else pix again) for in_c % 4
 * != 0, one division for the two, filter rows of k_h x n bytes. */
TME_INLINE void tme_im2col_pair_s8(const tme_conv_im2col_params_t *p, const int8_t *in, int32_t pix,
                                   int two, uint32_t *col, int8_t *stage, const int32_t k_h,
                                   const int32_t n) {
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, k_w = p->k_w;
    const int32_t out_w = p->out_w, stride_h = p->stride_h, stride_w = p->stride_w;
    const int32_t pad_w = p->pad_w, pad = p->pad_value;
    const int32_t oy = pix / out_w, ox = pix - oy * out_w;
    const int32_t iy0 = oy * stride_h - p->pad_h, ix0 = ox * stride_w - pad_w;
    int32_t iy1 = iy0, ix1 = ix0;
    if (two && ox + 1 < out_w) {
        ix1 += stride_w;
    } else if (two) { /* b starts the next output row */
        iy1 += stride_h;
        ix1 = -pad_w;
    }
    tme_im2col_rows_s8(in, iy0, ix0, col, stage, in_h, in_w, in_c, k_h, k_w, n, pad);
    tme_im2col_rows_s8(in, iy1, ix1, col + 2, stage, in_h, in_w, in_c, k_h, k_w, n, pad);
}

/* Any other filter size (out of line: its registers would crowd the stem's). */
static TME_NOINLINE void tme_im2col_pair_any_s8(const tme_conv_im2col_params_t *p, const int8_t *in,
                                                int32_t pix, int two, uint32_t *col, int8_t *stage) {
    tme_im2col_pair_s8(p, in, pix, two, col, stage, p->k_h, p->k_w * p->in_c);
}

/* Both patches of 3 rows of 9 bytes (`step` apart) when both windows lie inside the input, b's
 * `db` bytes after a's: straight-line, the tail's taps 0, 1, 2 are the rows' last bytes. Tap 3
 * (word 25's high half) has a zero weight: it keeps row 1's sign extension. */
#if defined(TME_DSP)
/* GCC neither pairs the stores nor packs with PKHBT here (~100 instructions), so it is written
 * out (55): per row and pixel 2 LDR and 4 SXTB16, one STM per group of both pixels (a's 2 words,
 * then b's: r2-r5), the rows' last bytes into r8-r11 and stored with one STM at the end. */
#define TME_STEM_ROW(TA, TB)                                                                       \
    "ldr r2, [%[a]]\n\tldr r4, [%[b]]\n\tsxtb16 r3, r2, ror #8\n\tsxtb16 r2, r2\n\t"                \
    "sxtb16 r5, r4, ror #8\n\tsxtb16 r4, r4\n\tstmia %[c]!, {r2, r3, r4, r5}\n\t"                   \
    "ldr r2, [%[a], #4]\n\tldr r4, [%[b], #4]\n\tsxtb16 r3, r2, ror #8\n\tsxtb16 r2, r2\n\t"      \
    "sxtb16 r5, r4, ror #8\n\tsxtb16 r4, r4\n\tstmia %[c]!, {r2, r3, r4, r5}\n\t"                   \
    "ldrsb " TA ", [%[a], #8]\n\tldrsb " TB ", [%[b], #8]\n\t"
TME_INLINE void tme_im2col_stem_inside_s8(const int8_t *a, const int32_t db, const int32_t step,
                                          uint32_t *col) {
    const int8_t *b = a + db;
    __asm__ volatile(TME_STEM_ROW("r8", "r10") "add %[a], %[s]\n\tadd %[b], %[s]\n\t"
                     TME_STEM_ROW("r9", "r11") "add %[a], %[s]\n\tadd %[b], %[s]\n\t"
                     TME_STEM_ROW("r2", "r4")
                     "pkhbt r8, r8, r2, lsl #16\n\tpkhbt r10, r10, r4, lsl #16\n\t"
                     "stmia %[c], {r8, r9, r10, r11}\n\t"
                     : [a] "+r"(a), [b] "+r"(b), [c] "+r"(col)
                     : [s] "r"(step)
                     : "r2", "r3", "r4", "r5", "r8", "r9", "r10", "r11", "memory");
}
#else
/* One filter row of 9 bytes of both pixels (a, b): its 2 words each; the last byte is the tail's. */
TME_INLINE void tme_im2col_row9_pair(const int8_t *a, const int8_t *b, uint32_t *col) {
    const uint32_t a0 = tme_load32(a), b0 = tme_load32(b);
    const uint32_t a1 = tme_load32(a + 4), b1 = tme_load32(b + 4);
    col[0] = tme_sxtb16(a0);
    col[1] = tme_sxtb16_ror8(a0);
    col[2] = tme_sxtb16(b0);
    col[3] = tme_sxtb16_ror8(b0);
    col[4] = tme_sxtb16(a1);
    col[5] = tme_sxtb16_ror8(a1);
    col[6] = tme_sxtb16(b1);
    col[7] = tme_sxtb16_ror8(b1);
}

TME_INLINE void tme_im2col_stem_inside_s8(const int8_t *a, const int32_t db, const int32_t step,
                                          uint32_t *col) {
    const int8_t *const b = a + db;
    tme_im2col_row9_pair(a, b, col);
    tme_im2col_row9_pair(a + step, b + step, col + 8);
    tme_im2col_row9_pair(a + 2 * step, b + 2 * step, col + 16);
    col[24] = tme_pack16(a[8], a[2 * step + 8]);
    col[25] = (uint32_t)(int32_t)a[step + 8];
    col[26] = tme_pack16(b[8], b[2 * step + 8]);
    col[27] = (uint32_t)(int32_t)b[step + 8];
}
#endif

/* The pair for in_c % 4 != 0; the 3 x 3 x 3 stem (filter rows of 9 bytes) straight-line when both
 * windows lie inside (marked likely: GCC then loads less of `p` ahead of the tests). A function of
 * its own: inlined into the body, it changes how GCC allocates the in_c % 4 == 0 path's registers
 * (ResNet-8 +11 %). */
static TME_NOINLINE void tme_im2col_staged_s8(const tme_conv_im2col_params_t *p, const int8_t *in,
                                              int32_t pix, int two, uint32_t *col, int8_t *stage) {
    if (p->k_h != 3 || p->k_w * p->in_c != 9) {
        tme_im2col_pair_any_s8(p, in, pix, two, col, stage);
        return;
    }
    const int32_t out_w = p->out_w;
    const int32_t oy = pix / out_w, ox = pix - oy * out_w;
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    if (TME_LIKELY(two && ox + 1 < out_w && iy0 >= 0 && iy0 + 3 <= p->in_h)) {
        const int32_t in_w = p->in_w, stride_w = p->stride_w, ix0 = ox * stride_w - p->pad_w;
        if (TME_LIKELY(ix0 >= 0 && ix0 + stride_w + p->k_w <= in_w)) {
            const int32_t in_c = p->in_c;
            tme_im2col_stem_inside_s8(in + (iy0 * in_w + ix0) * in_c, stride_w * in_c, in_w * in_c,
                                      col);
            return;
        }
    }
    tme_im2col_pair_s8(p, in, pix, two, col, stage, 3, 9);
}

/* One patch as tme_im2col_staged_s8 gathers it, without the constant sizes: for a fused ADD, whose
 * body keeps gathering per pixel (with a pair call there, GCC lays out its loop worse: +0.1 % on
 * ResNet-8's fused shortcuts). */
static TME_NOINLINE void tme_im2col_staged1_s8(const tme_conv_im2col_params_t *p, const int8_t *in,
                                               int32_t pix, uint32_t *col, int8_t *stage) {
    const int32_t oy = pix / p->out_w, ox = pix - oy * p->out_w;
    tme_im2col_rows_s8(in, oy * p->stride_h - p->pad_h, ox * p->stride_w - p->pad_w, col, stage,
                       p->in_h, p->in_w, p->in_c, p->k_h, p->k_w, p->k_w * p->in_c, p->pad_value);
}

/* Gathers the patch of output pixel `pix`. With in_c % 4 == 0 the input is widened in place, a
 * whole filter row at once when it lies inside; otherwise see tme_im2col_staged1_s8. Tail taps (up
 * to k4) are left as they are: their weights are zero, so whatever the scratch holds contributes
 * nothing. Parameters are read into locals: the stores may alias them. */
static void tme_im2col_s8(const tme_conv_im2col_params_t *p, const int8_t *in, int32_t pix,
                          uint32_t *col, int8_t *stage) {
    if (p->in_c % 4 != 0) {
        tme_im2col_staged1_s8(p, in, pix, col, stage);
        return;
    }
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, k_h = p->k_h, k_w = p->k_w;
    const int32_t pad = p->pad_value;
    const int32_t oy = pix / p->out_w;
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = (pix - oy * p->out_w) * p->stride_w - p->pad_w;
    const int cols_inside = ix0 >= 0 && ix0 + k_w <= in_w;
    const int8_t *row = in + (iy0 * in_w + ix0) * in_c;
    const int32_t words = in_c / 4;
    const uint32_t pad2 = tme_pack16(pad, pad);
    for (int32_t ky = 0; ky < k_h; ++ky, row += in_w * in_c) {
        const int row_inside = iy0 + ky >= 0 && iy0 + ky < in_h;
        if (row_inside && cols_inside) {
            col = tme_widen(row, k_w * words, col);
            continue;
        }
        for (int32_t kx = 0; kx < k_w; ++kx) {
            const int inside = row_inside && ix0 + kx >= 0 && ix0 + kx < in_w;
            col = inside ? tme_widen(row + kx * in_c, words, col) : tme_fill(pad2, words, col);
        }
    }
}

/* acc[0], acc[1]: pixel a, channels 2j and 2j + 1; acc[2], acc[3]: pixel b. `col` holds k4 / 4
 * groups of 4 words, `wp` k4 / 4 groups of 2 words; `odd` (a constant): k4 / 4 is odd. */
#if defined(TME_DSP)
/* GCC does not keep the four accumulators, three pointers and the operands in registers (it spills
 * and re-derives addresses: ~28 instructions per 16 MACs), so the loop body is written out: 2 groups
 * per iteration, LDM of both patches into r2-r5, LDRD of the two channels' weight words into r0, lr. */
#define TME_DOT_GROUP                                                                              \
    "ldmia %[c]!, {r2, r3, r4, r5}\n\t"                                                            \
    "ldrd r0, lr, [%[p]], #8\n\t"                                                                  \
    "sxtb16 r1, r0\n\t"                                                                            \
    "sxtb16 r0, r0, ror #8\n\t"                                                                    \
    "smlad %[a0], r2, r1, %[a0]\n\t"                                                               \
    "smlad %[b0], r4, r1, %[b0]\n\t"                                                               \
    "smlad %[a0], r3, r0, %[a0]\n\t"                                                               \
    "smlad %[b0], r5, r0, %[b0]\n\t"                                                               \
    "sxtb16 r1, lr\n\t"                                                                            \
    "sxtb16 lr, lr, ror #8\n\t"                                                                    \
    "smlad %[a1], r2, r1, %[a1]\n\t"                                                               \
    "smlad %[b1], r4, r1, %[b1]\n\t"                                                               \
    "smlad %[a1], r3, lr, %[a1]\n\t"                                                               \
    "smlad %[b1], r5, lr, %[b1]\n\t"
TME_INLINE void tme_dot_2x2(const uint32_t *col, const uint32_t *wp, int32_t k4, int32_t *acc,
                            const int odd) {
    /* fixed registers: otherwise GCC moves the accumulators in and out of the asm every iteration;
     * the loop stays in C (one asm statement with 13 register operands can exceed what GCC can
     * find next to the caller's live values) */
    register int32_t a0 __asm__("r8") = acc[0];
    register int32_t a1 __asm__("r9") = acc[1];
    register int32_t b0 __asm__("r10") = acc[2];
    register int32_t b1 __asm__("r11") = acc[3];
    register const uint32_t *c __asm__("r6") = col;
    register const uint32_t *w __asm__("r12") = wp;
    const uint32_t *const end = col + k4;
    if (odd) { /* an odd group count: one group first */
        __asm__(TME_DOT_GROUP
                : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [c] "+r"(c), [p] "+r"(w)
                :
                : "r0", "r1", "r2", "r3", "r4", "r5", "lr", "memory");
        if (c == end) {
            goto done;
        }
    }
    do {
        __asm__(TME_DOT_GROUP TME_DOT_GROUP
                : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [c] "+r"(c), [p] "+r"(w)
                :
                : "r0", "r1", "r2", "r3", "r4", "r5", "lr", "memory");
    } while (c != end);
done:
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
}
/* The first 4 taps of a sum that starts at 0 set the accumulators (SMUAD), the rest add (SMLAD). */
#define TME_PAIR_GROUP(MAC) TME_PAIR_GROUP_L("ldmia %[c]!, {r2, r3, r4, r5}\n\t", MAC)
/* LD: the load of the group's patch words into r2-r5 */
#define TME_PAIR_GROUP_L(LD, MAC)                                                                  \
    LD "ldrd r0, lr, [%[w]], #8\n\t"                                                              \
    "sxtb16 r1, r0\n\tsxtb16 r0, r0, ror #8\n\t" MAC("%[a0]", "r2", "r1") MAC("%[b0]", "r4", "r1") \
    "smlad %[a0], r3, r0, %[a0]\n\tsmlad %[b0], r5, r0, %[b0]\n\t"                                \
    "sxtb16 r1, lr\n\tsxtb16 lr, lr, ror #8\n\t" MAC("%[a1]", "r2", "r1") MAC("%[b1]", "r4", "r1") \
    "smlad %[a1], r3, lr, %[a1]\n\tsmlad %[b1], r5, lr, %[b1]\n\t"
/* The same with the weights already widened (4 words per 4 taps: channel 2j's SXTB16 and ROR 8
 * halves, then channel 2j + 1's): 11 instructions per 16 MACs instead of 14. */
#define TME_PAIR_GROUP_W(MAC) TME_PAIR_GROUP_WL("ldmia %[c]!, {r2, r3, r4, r5}\n\t", MAC)
#define TME_PAIR_GROUP_WL(LD, MAC)                                                                 \
    LD "ldrd r0, r1, [%[w]], #8\n\t" MAC("%[a0]", "r2", "r0")                                      \
    MAC("%[b0]", "r4", "r0") "smlad %[a0], r3, r1, %[a0]\n\tsmlad %[b0], r5, r1, %[b0]\n\t"        \
    "ldrd r0, r1, [%[w]], #8\n\t" MAC("%[a1]", "r2", "r0") MAC("%[b1]", "r4", "r0")                \
    "smlad %[a1], r3, r1, %[a1]\n\tsmlad %[b1], r5, r1, %[b1]\n\t"
#define TME_PAIR_SET(A, X, W) "smuad " A ", " X ", " W "\n\t"
#define TME_PAIR_ACC(A, X, W) "smlad " A ", " X ", " W ", " A "\n\t"
/* One channel's TME_RQ_RELU requantization for both pixels: LDM of its (c, m, sh), LDRD of c
 * again for pixel b, SMLAL, ASR, SSAT, STRB (to r5, b at out_c = r6 bytes after a). */
#define TME_PAIR_RQ(A, B) TME_PAIR_RQ_X("lr", "%[c]", A, B)
/* Q: the register of the rq pointer, OC: of out_c */
#define TME_PAIR_RQ_X(Q, OC, A, B) TME_PAIR_RQ_T(Q, OC, A, B, TME_RQ_NO_TERM)
/* T(S, HI): a term added to the 64-bit product (r0, HI) of the sum S, which it may overwrite */
#define TME_PAIR_RQ_T(Q, OC, A, B, T)                                                              \
    "ldmia " Q "!, {r0, r1, r2, r3}\n\tsmlal r0, r1, " A ", r2\n\t" T(A, "r1") "asr r1, r1, r3\n\t" \
    "ldrd r0, r4, [" Q ", #-16]\n\tsmlal r0, r4, " B ", r2\n\t" T(B, "r4") "asr r4, r4, r3\n\t"     \
    "ssat r1, #8, r1\n\tssat r4, #8, r4\n\tstrb r4, [r5, " OC "]\n\tstrb r1, [r5], #1\n\t"
#define TME_RQ_NO_TERM(S, HI) 
#define TME_CONV_PAIRS_ASM 1
/* All output channels (out_c even) of two pixels, TME_RQ_RELU at zero point -128 (one SSAT) with
 * the bias in c (the generator folds it there: the sums start at 0). In C, GCC reloads the
 * accumulators' bias, the pointers and the rq row per channel pair (~50 instructions around
 * the dot product), so the channel loop is written out; all 14 registers are taken: the patch
 * end stays in one (a compare per 2 groups), the output and rq pointers, the patch start, out_c
 * and the weights' end in memory. */
/* FIRST: the first pass, 2 groups (SMUAD, SMLAD) for an even group count, 1 (SMUAD) for an odd;
 * G: the group (byte or widened weights); Q: where the rq pointer lives, "m" (in memory: the byte
 * group takes lr) or "l" (in lr throughout). */
#define TME_PAIRS_LDQ_m "ldr lr, %[q]\n\t"
#define TME_PAIRS_STQ_m "str lr, %[q]\n\t"
#define TME_PAIRS_PRE_m ""
#define TME_PAIRS_LDQ_l ""
#define TME_PAIRS_STQ_l ""
#define TME_PAIRS_PRE_l "ldr lr, %[q]\n\t"
#define TME_PAIRS_ASM(FIRST, G, Q) TME_PAIRS_ASM_X(FIRST, G, Q, "", TME_PAIR_RQ)
/* BIAS: code before the requantization (the bias pointer bp in memory), RQ: the channel's form */
#define TME_PAIRS_ASM_X(FIRST, G, Q, BIAS, RQ)                                                     \
    __asm__ volatile(TME_PAIRS_PRE_##Q "1:\n\tldr %[c], %[col]\n\t" FIRST "cmp %[c], %[cend]\n\t"   \
                     "beq 3f\n\t2:\n\t" G(TME_PAIR_ACC) G(TME_PAIR_ACC) "cmp %[c], %[cend]\n\t"        \
                     "bne 2b\n\t3:\n\t" BIAS TME_PAIRS_LDQ_##Q "ldr %[c], %[oc]\n\tldr r5, %[o]\n\t"    \
                     RQ("%[a0]", "%[b0]") RQ("%[a1]", "%[b1]") TME_PAIRS_STQ_##Q                     \
                     "str r5, %[o]\n\tldr r0, %[wend]\n\tcmp %[w], r0\n\tbne 1b\n\t"                    \
                     : [c] "=&r"(c), [w] "+r"(w), [o] "+m"(o), [q] "+m"(q), [a0] "=&r"(a0),        \
                       [a1] "=&r"(a1), [b0] "=&r"(b0), [b1] "=&r"(b1), [bp] "+m"(bp)               \
                     : [col] "m"(col), [cend] "r"(cend), [wend] "m"(wend), [oc] "m"(out_c)        \
                     : "r0", "r1", "r2", "r3", "r4", "r5", "lr", "cc", "memory")
/* TME_RQ_SIGNED (no activation: SSAT is the clamp): the bias pair added to the sums, then per
 * output SMLAL, the rounding term -[acc < 0] * 2^31 (LSR of the sum, SUBS / SBC), ASR, SSAT. */
#define TME_PAIR_BIAS                                                                              \
    "ldr r0, %[bp]\n\tldrd r1, r2, [r0], #8\n\tstr r0, %[bp]\n\t"                                 \
    "add %[a0], %[a0], r1\n\tadd %[b0], %[b0], r1\n\tadd %[a1], %[a1], r2\n\tadd %[b1], %[b1], r2\n\t"
#define TME_PAIR_RQS(A, B) TME_PAIR_RQ_T("lr", "%[c]", A, B, TME_RQ_NEG_TERM)
#define TME_RQ_NEG_TERM(S, HI)                                                                     \
    "lsr " S ", " S ", #31\n\tsubs r0, r0, " S ", lsl #31\n\tsbc " HI ", " HI ", #0\n\t"
/* 2 or 4 groups (k4 = 8, 16: the 1 x 1 convs of 8 or 16 input channels, where the loop's overhead
 * weighs most) written out as one pass: no patch end, no compares; the freed r7 keeps the rq
 * pointer (lr takes out_c in the requantization), so only the output pointer stays in memory. */
#define TME_PAIRS1_LD0 "ldmdb %[c], {r2, r3, r4, r5}\n\t"
#define TME_PAIRS1_LD1 "ldmia %[c], {r2, r3, r4, r5}\n\t"
#define TME_PAIRS1_ASM(DOT)                                                                        \
    __asm__ volatile("1:\n\t" DOT "ldr lr, %[oc]\n\tldr r5, %[o]\n\t"                              \
                     TME_PAIR_RQ_X("%[q]", "lr", "%[a0]", "%[b0]")                                  \
                     TME_PAIR_RQ_X("%[q]", "lr", "%[a1]", "%[b1]")                                  \
                     "str r5, %[o]\n\tldr r0, %[wend]\n\tcmp %[w], r0\n\tbne 1b\n\t"                \
                     : [c] "+r"(c), [w] "+r"(w), [o] "+m"(o), [q] "+r"(qr), [a0] "=&r"(a0),        \
                       [a1] "=&r"(a1), [b0] "=&r"(b0), [b1] "=&r"(b1)                              \
                     : [wend] "m"(wend), [oc] "m"(out_c)                                           \
                     : "r0", "r1", "r2", "r3", "r4", "r5", "lr", "cc", "memory")
/* k4 = 8 (c at the second group: both loads without writeback) or 16; GL(LD, MAC), G(MAC): the
 * group with its load given, and with its own */
#define TME_PAIRS1_K(GL, G)                                                                        \
    if (k4 == 8) {                                                                                 \
        c = col + 4;                                                                               \
        TME_PAIRS1_ASM(GL(TME_PAIRS1_LD0, TME_PAIR_SET) GL(TME_PAIRS1_LD1, TME_PAIR_ACC));         \
    } else {                                                                                       \
        c = col;                                                                                   \
        TME_PAIRS1_ASM(G(TME_PAIR_SET) G(TME_PAIR_ACC) G(TME_PAIR_ACC) G(TME_PAIR_ACC)             \
                           "sub %[c], %[c], #64\n\t");                                              \
    }
/* Channels [0, n) (n even) of two pixels, pixel b out_c bytes after a; `wide` (a constant): wpk
 * holds the weights widened (odd does too). */
TME_INLINE void tme_conv_pairs_rq(const uint32_t *col, const uint32_t *wpk, int32_t k4,
                                  const tme_rq_t *rq, int8_t *out, int32_t n, int32_t out_c,
                                  const int odd, const int wide) {
    register const uint32_t *c __asm__("r6");
    register const uint32_t *w __asm__("r12") = wpk;
    register int32_t a0 __asm__("r8"), a1 __asm__("r9"), b0 __asm__("r10"), b1 __asm__("r11");
    const uint32_t *const wend = wpk + (n / 2) * (odd || wide ? k4 : k4 / 2);
    const tme_rq_t *q = rq;
    int8_t *o = out;
    const int32_t *bp = 0; /* unused here */
    if (!odd && (k4 == 8 || k4 == 16)) { /* one pass: see TME_PAIRS1_ASM */
        register const tme_rq_t *qr __asm__("r7") = rq;
        if (wide) {
            TME_PAIRS1_K(TME_PAIR_GROUP_WL, TME_PAIR_GROUP_W);
        } else {
            TME_PAIRS1_K(TME_PAIR_GROUP_L, TME_PAIR_GROUP);
        }
        return;
    }
    register const uint32_t *cend __asm__("r7") = col + k4;
    if (odd) { /* wpk: the widened weights (see tme_conv_im2col_body) */
        TME_PAIRS_ASM(TME_PAIR_GROUP_W(TME_PAIR_SET), TME_PAIR_GROUP_W, l);
    } else if (wide) {
        TME_PAIRS_ASM(TME_PAIR_GROUP_W(TME_PAIR_SET) TME_PAIR_GROUP_W(TME_PAIR_ACC), TME_PAIR_GROUP_W, l);
    } else {
        TME_PAIRS_ASM(TME_PAIR_GROUP(TME_PAIR_SET) TME_PAIR_GROUP(TME_PAIR_ACC), TME_PAIR_GROUP, m);
    }
}
/* All output channels (out_c even) of two pixels in TME_RQ_SIGNED at [-128, 127], the bias from
 * `bias` (k4 a multiple of 8, at least 24: the group loop). */
TME_INLINE void tme_conv_pairs_signed(const uint32_t *col, const uint32_t *wpk, int32_t k4,
                                      const tme_rq_t *rq, const int32_t *bias, int8_t *out,
                                      int32_t out_c) {
    register const uint32_t *c __asm__("r6");
    register const uint32_t *w __asm__("r12") = wpk;
    register int32_t a0 __asm__("r8"), a1 __asm__("r9"), b0 __asm__("r10"), b1 __asm__("r11");
    register const uint32_t *cend __asm__("r7") = col + k4;
    const uint32_t *const wend = wpk + (out_c / 2) * (k4 / 2);
    const tme_rq_t *q = rq;
    int8_t *o = out;
    const int32_t *bp = bias;
    TME_PAIRS_ASM_X(TME_PAIR_GROUP(TME_PAIR_SET) TME_PAIR_GROUP(TME_PAIR_ACC), TME_PAIR_GROUP, m,
                    TME_PAIR_BIAS, TME_PAIR_RQS);
}
#else
TME_INLINE void tme_dot_2x2(const uint32_t *col, const uint32_t *wp, int32_t k4, int32_t *acc,
                            const int odd) {
    (void)odd;
    for (int32_t g = 0; g < k4 / 4; ++g, col += 4, wp += 2) {
        for (int32_t j = 0; j < 2; ++j) {
            const uint32_t we = tme_sxtb16(wp[j]), wo = tme_sxtb16_ror8(wp[j]);
            acc[j] = tme_smlad(col[1], wo, tme_smlad(col[0], we, acc[j]));
            acc[2 + j] = tme_smlad(col[3], wo, tme_smlad(col[2], we, acc[2 + j]));
        }
    }
}
#endif

/* A residual ADD fused into the conv (the generator fuses when the conv output feeds only the ADD):
 * the conv's int8 outputs y of a pixel pair are computed exactly as alone (into scratch, by the
 * same loops), then z = ADD(y, skip) from the ADD's
 * tables (eltwise_s8.c: t_conv[y] + t_skip[skip] requantized once). z may overwrite `skip`
 * (element i is read before it is written). */
typedef struct {
    int32_t out_offset, act_min, act_max, rq_mode;
} tme_conv_add_params_t;

typedef struct {
    const tme_conv_add_params_t *p;
    const int32_t *t_conv, *t_skip; /* 256 entries each, indexed from -128 */
    const tme_rq_t *rq;
    const int8_t *skip;
} tme_conv_add_t;

/* z[base + i] = ADD(y[i], skip[base + i]) for i < n, the ADD's mode and bounds constants. */
TME_INLINE void tme_conv_add_run(const tme_conv_add_t *add, const int8_t *y, int8_t *out, int32_t n,
                                 const int32_t mode, const int32_t lo, const int32_t hi) {
    const tme_rq_t q = *add->rq;
    const int32_t *const tc = add->t_conv + 128, *const ts = add->t_skip + 128;
    const int8_t *const skip = add->skip;
    const int32_t zp = add->p->out_offset;
    for (int32_t i = 0; i < n; ++i) {
        out[i] = tme_rq_out(tc[y[i]] + ts[skip[i]], &q, mode, zp, lo, hi);
    }
}

/* The fused ADD over a pixel pair's conv outputs y (n bytes), read from skip[base] and written to
 * out[base] (which may be skip: element i is read before it is written). The ADD's constants are
 * copied into locals first: every int8 store may alias them. */
TME_INLINE void tme_conv_add_rows(const tme_conv_add_t *add, const int8_t *y, int8_t *out,
                                  int32_t base, int32_t n) {
    tme_conv_add_t at = *add;
    const tme_conv_add_params_t *a = add->p;
    at.skip += base;
    if (a->rq_mode == TME_RQ_RELU && a->act_max == 127) { /* the ADD's ReLU: SSAT does the top */
        tme_conv_add_run(&at, y, out + base, n, TME_RQ_RELU, a->act_min, 127);
    } else {
        tme_conv_add_run(&at, y, out + base, n, a->rq_mode, a->act_min, a->act_max);
    }
}

/* The output channels of pixels pix (at out) and pix + 1 (at out + out_c, when `two`); `even`:
 * out_c is even. */
TME_INLINE void tme_conv_im2col_channels(const tme_conv_im2col_params_t *p, const uint32_t *scratch,
                                         const uint32_t *wpk, const int32_t *bias, const tme_rq_t *rq,
                                         int8_t *out, const int32_t mode,
                                         const int32_t lo, const int32_t hi,
                                         const int two, const int even, const int odd) {
    const int32_t out_c = p->out_c, k4 = p->k4, zp = p->out_offset;
    int8_t *const ob = out + out_c;
    const uint32_t *wp = wpk;
    for (int32_t oc = 0; oc < out_c; oc += 2, wp += k4 / 2) {
        int32_t acc[4] = {bias[oc], bias[oc + 1], bias[oc], bias[oc + 1]};
        tme_dot_2x2(scratch, wp, k4, acc, odd);
        out[oc] = tme_rq_out(acc[0], rq + oc, mode, zp, lo, hi);
        if (two) {
            ob[oc] = tme_rq_out(acc[2], rq + oc, mode, zp, lo, hi);
        }
        if (even || oc + 1 < out_c) {
            const tme_rq_t *q = rq + oc + 1;
            out[oc + 1] = tme_rq_out(acc[1], q, mode, zp, lo, hi);
            if (two) {
                ob[oc + 1] = tme_rq_out(acc[3], q, mode, zp, lo, hi);
            }
        }
    }
}

/* Widens `words` (even) weight words into (SXTB16, SXTB16 ROR 8) pairs at dst. */
TME_INLINE void tme_widen_weights(const uint32_t *src, int32_t words, uint32_t *dst) {
    for (const uint32_t *const end = src + words; src != end; src += 2, dst += 4) {
        const uint32_t x = src[0], y = src[1];
        dst[0] = tme_sxtb16(x);
        dst[1] = tme_sxtb16_ror8(x);
        dst[2] = tme_sxtb16(y);
        dst[3] = tme_sxtb16_ror8(y);
    }
}

/* The parameters live in locals: every int8 store may alias them. `mode` and the clamp bounds are
 * constants in the common instances below (the rest pass them at run time); `wide` (a constant):
 * the asm loop reads the weights widened into scratch (tme_conv_im2col_wide_s8). */
TME_INLINE void tme_conv_im2col_body(const tme_conv_im2col_params_t *p, const int8_t *in,
                                     const uint32_t *wpk, const int32_t *bias, const tme_rq_t *rq,
                                     uint32_t *scratch, int8_t *out, const int32_t mode,
                                     const int32_t lo, const int32_t hi, const tme_conv_add_t *add,
                                     const int odd, const int wide) {
    const int32_t n_pix = p->out_h * p->out_w;
    const int32_t out_c = p->out_c, k4 = p->k4;
    int8_t *stage = (int8_t *)(void *)(scratch + k4);
    /* a 1 x 1, stride 1 patch is the input pixel itself: widened in place, without the gather */
    const int32_t in_c = p->in_c;
    /* after the patches and the staging bytes: the widened weights, or a fused ADD's conv outputs
     * of the pixel pair (the ADD then runs over them with its constants in registers) */
    uint32_t *const after = scratch + k4 + (in_c % 4 ? (p->k_w * in_c + 3) / 4 : 0);
    int8_t *const ybuf = (int8_t *)(void *)after;
#if defined(TME_CONV_PAIRS_ASM)
    /* an odd group count (a small layer, see the generator): the weights widened once into
     * scratch after the staging bytes, for the asm loop; the C paths read them as they are */
    const uint32_t *wide_w = wpk;
    if (odd || wide) {
        uint32_t *const w = after;
        tme_widen_weights(wpk, (odd ? (out_c + 1) / 2 : p->wide_pairs) * (k4 / 2), w);
        wide_w = w;
    }
#else
    (void)wide;
#endif
    const int direct = p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                       p->pad_h == 0 && p->pad_w == 0 && in_c % 4 == 0;
    for (int32_t pix = 0; pix < n_pix; pix += 2) {
        const int two = pix + 1 < n_pix;
        if (direct) {
            tme_widen(in + pix * in_c, in_c / 4, scratch);
            tme_widen(in + (two ? pix + 1 : pix) * in_c, in_c / 4, scratch + 2);
        } else if (add == NULL && in_c % 4 != 0) {
            tme_im2col_staged_s8(p, in, pix, two, scratch, stage);
        } else {
            tme_im2col_s8(p, in, pix, scratch, stage);
            tme_im2col_s8(p, in, two ? pix + 1 : pix, scratch + 2, stage);
        }
        int8_t *const o = add != NULL ? ybuf : out + pix * out_c;
        int asm_done = 0;
#if defined(TME_CONV_PAIRS_ASM)
        if (mode == TME_RQ_RELU && lo == -128 && hi == 127 && two && (out_c & 1) == 0) {
            if (!wide) {
                tme_conv_pairs_rq(scratch, wide_w, k4, rq, o, out_c, out_c, odd, 0);
            } else { /* the widened channel pairs, then the rest from the int8 weights */
                const int32_t nw = 2 * p->wide_pairs;
                tme_conv_pairs_rq(scratch, wide_w, k4, rq, o, nw, out_c, 0, 1);
                if (nw != out_c) {
                    tme_conv_pairs_rq(scratch, wpk + p->wide_pairs * (k4 / 2), k4, rq + nw, o + nw,
                                      out_c - nw, out_c, 0, 0);
                }
            }
            asm_done = 1;
        } else if (mode == TME_RQ_SIGNED && lo == -128 && hi == 127 && two && (out_c & 1) == 0 &&
                   !odd && k4 % 8 == 0 && k4 >= 24) {
            tme_conv_pairs_signed(scratch, wpk, k4, rq, bias, o, out_c);
            asm_done = 1;
        }
#endif
        /* `two` and an even out_c as constants in the common instance: no per-output checks */
        if (!asm_done && two && (out_c & 1) == 0) {
            tme_conv_im2col_channels(p, scratch, wpk, bias, rq, o, mode, lo, hi, 1, 1, odd);
        } else if (!asm_done) {
            tme_conv_im2col_channels(p, scratch, wpk, bias, rq, o, mode, lo, hi, two, 0, odd);
        }
        if (add != NULL) {
            tme_conv_add_rows(add, ybuf, out, pix * out_c, (two ? 2 : 1) * out_c);
        }
    }
}

/* bias: bias' per channel, padded to an even count; scratch: 2 x k4 int16 (two patches), then for
 * in_c % 4 != 0 one filter row's k_w * in_c staging bytes (rounded up to a word), then for an odd
 * k4 / 4 (or tme_conv_im2col_wide_s8's wide_pairs) the widened weights (4 x k4 bytes per channel
 * pair), or with a fused ADD the pixel pair's 2 x out_c conv outputs. */
static TME_UNUSED void tme_conv_im2col_s8(const tme_conv_im2col_params_t *p, const int8_t *in,
                                          const uint32_t *wpk, const int32_t *bias,
                                          const tme_rq_t *rq, uint32_t *scratch, int8_t *out) {
    const int32_t lo = p->act_min, hi = p->act_max;
    if (p->rq_mode == TME_RQ_RELU && lo == -128 && hi == 127) { /* ReLU(6) at zero point -128: one SSAT */
#if defined(TME_CONV_PAIRS_ASM)
        if (p->k4 & 4) { /* an odd count of 4-tap groups: only in this mode (see the header) */
            tme_conv_im2col_body(p, in, wpk, bias, rq, scratch, out, TME_RQ_RELU, -128, 127, NULL, 1, 0);
            return;
        }
#endif
        tme_conv_im2col_body(p, in, wpk, bias, rq, scratch, out, TME_RQ_RELU, -128, 127, NULL, 0, 0);
    } else if (p->rq_mode == TME_RQ_RELU && hi == 127) { /* ReLU: SSAT does the upper clamp */
        tme_conv_im2col_body(p, in, wpk, bias, rq, scratch, out, TME_RQ_RELU, lo, 127, NULL, 0, 0);
    } else if (p->rq_mode == TME_RQ_RELU) {
        tme_conv_im2col_body(p, in, wpk, bias, rq, scratch, out, TME_RQ_RELU, lo, hi, NULL, 0, 0);
    } else if (p->rq_mode == TME_RQ_SIGNED && lo == -128 && hi == 127) { /* no activation */
        tme_conv_im2col_body(p, in, wpk, bias, rq, scratch, out, TME_RQ_SIGNED, -128, 127, NULL, 0, 0);
    } else {
        tme_conv_im2col_body(p, in, wpk, bias, rq, scratch, out, p->rq_mode, lo, hi, NULL, 0, 0);
    }
}

/* The same, the weights of the first wide_pairs channel pairs widened into scratch after the
 * patches (and their staging) once per call for the written-out channel loop: 11 instructions
 * per 16 MACs instead of 14. The generator calls it with as many pairs (4 x k4 bytes each) as the
 * plan leaves bytes idle; other modes take the plain kernel. */
static TME_UNUSED void tme_conv_im2col_wide_s8(const tme_conv_im2col_params_t *p, const int8_t *in,
                                               const uint32_t *wpk, const int32_t *bias,
                                               const tme_rq_t *rq, uint32_t *scratch, int8_t *out) {
#if defined(TME_CONV_PAIRS_ASM)
    if (p->rq_mode == TME_RQ_RELU && p->act_min == -128 && p->act_max == 127 && !(p->k4 & 4)) {
        tme_conv_im2col_body(p, in, wpk, bias, rq, scratch, out, TME_RQ_RELU, -128, 127, NULL, 0, 1);
        return;
    }
#endif
    tme_conv_im2col_s8(p, in, wpk, bias, rq, scratch, out);
}

/* The same with a residual ADD fused in (see tme_conv_add_t); `out` is the ADD's output. */
static TME_UNUSED void tme_conv_im2col_add_s8(
    const tme_conv_im2col_params_t *p, const int8_t *in, const uint32_t *wpk, const int32_t *bias,
    const tme_rq_t *rq, uint32_t *scratch, const tme_conv_add_params_t *ap, const int32_t *t_conv,
    const int32_t *t_skip, const tme_rq_t *add_rq, const int8_t *skip, int8_t *out) {
    const tme_conv_add_t add = {ap, t_conv, t_skip, add_rq, skip};
    const int32_t lo = p->act_min, hi = p->act_max;
    if (p->rq_mode == TME_RQ_SIGNED && lo == -128 && hi == 127) { /* the usual: no activation */
        tme_conv_im2col_body(p, in, wpk, bias, rq, scratch, out, TME_RQ_SIGNED, -128, 127, &add, 0, 0);
    } else {
        tme_conv_im2col_body(p, in, wpk, bias, rq, scratch, out, p->rq_mode, lo, hi, &add, 0, 0);
    }
}
