/*
 * The unpacked GEMM paths for small problems, where packing does not pay
 * (see _gemm.c): a "direct" kernel reads B by rows, a "dot" kernel reads A
 * and B along k. A template inside the type template of _gemm.c, included
 * once per vector width: FG_VW 256 (AVX2 + FMA) or 512 (AVX-512F), names
 * ending in _256 or _512. The direct kernel computes each element of C
 * with the same operations at both widths; the dot kernel sums 8 or 16
 * partial sums per element (lanes), so its last bits depend on the width
 * (a given CPU always runs the same one).
 */
#if FG_VW == 512
#define FG_USFX(name) FG_SFX(name##_512)
#define FG_VTARGET FG_TARGET_AVX512
#if FG_IS_F32
#define FG_V __m512
#define FG_LANES 16
#define FG_MASK_T __mmask16
#define FG_MASKLOAD(ptr, mask) _mm512_maskz_loadu_ps((mask), (ptr))
#define FG_MASKSTORE(ptr, mask, v) _mm512_mask_storeu_ps((ptr), (mask), (v))
#define FG_LOADU _mm512_loadu_ps
#define FG_STOREU _mm512_storeu_ps
#define FG_FMADD _mm512_fmadd_ps
#define FG_MUL _mm512_mul_ps
#define FG_SET1 _mm512_set1_ps
#define FG_ZERO _mm512_setzero_ps
#else
#define FG_V __m512d
#define FG_LANES 8
#define FG_MASK_T __mmask8
#define FG_MASKLOAD(ptr, mask) _mm512_maskz_loadu_pd((mask), (ptr))
#define FG_MASKSTORE(ptr, mask, v) _mm512_mask_storeu_pd((ptr), (mask), (v))
#define FG_LOADU _mm512_loadu_pd
#define FG_STOREU _mm512_storeu_pd
#define FG_FMADD _mm512_fmadd_pd
#define FG_MUL _mm512_mul_pd
#define FG_SET1 _mm512_set1_pd
#define FG_ZERO _mm512_setzero_pd
#endif
#define FG_BCAST(ptr) FG_SET1(*(ptr))
#else
#define FG_USFX(name) FG_SFX(name##_256)
#define FG_VTARGET FG_TARGET_AVX2
#define FG_MASK_T __m256i
#if FG_IS_F32
#define FG_V __m256
#define FG_LANES 8
#define FG_MASKLOAD _mm256_maskload_ps
#define FG_MASKSTORE _mm256_maskstore_ps
#define FG_LOADU _mm256_loadu_ps
#define FG_STOREU _mm256_storeu_ps
#define FG_FMADD _mm256_fmadd_ps
#define FG_MUL _mm256_mul_ps
#define FG_SET1 _mm256_set1_ps
#define FG_BCAST _mm256_broadcast_ss
#define FG_ZERO _mm256_setzero_ps
#else
#define FG_V __m256d
#define FG_LANES 4
#define FG_MASKLOAD _mm256_maskload_pd
#define FG_MASKSTORE _mm256_maskstore_pd
#define FG_LOADU _mm256_loadu_pd
#define FG_STOREU _mm256_storeu_pd
#define FG_FMADD _mm256_fmadd_pd
#define FG_MUL _mm256_mul_pd
#define FG_SET1 _mm256_set1_pd
#define FG_BCAST _mm256_broadcast_sd
#define FG_ZERO _mm256_setzero_pd
#endif
#endif
#define FG_INLINE static inline __attribute__((always_inline))
/* Tiles of the direct kernel: DIRECT_MR rows x 2 vectors of columns; of
 * the dot kernel: DOT_MR x DOT_NR (accumulators along k). With the 32
 * registers of AVX-512 both take more rows: a batch of 8 reads B once, not
 * for 6 + 2 rows, and a 4 x 4 dot tile loads less per FMA than 3 x 4
 * (x W^T at B = 8 to 64, 2 threads: 1.03-1.39x; in a 3 x 4 tile the
 * 512-bit dot kernel had been slower than the AVX2 one). */
#if FG_VW == 512
#define FG_DIRECT_MR 8
#define FG_DOT_MR 4
#else
#define FG_DIRECT_MR 6
#define FG_DOT_MR 3
#endif
#define FG_DOT_NR 4

/* A mask selecting the first `valid` lanes (0 < valid <= FG_LANES). */
FG_VTARGET FG_INLINE FG_MASK_T FG_USFX(fg_lane_mask)(int valid)
{
#if FG_VW == 512
    return (FG_MASK_T)((1u << valid) - 1u);
#elif FG_IS_F32
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#else
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(valid),
                              _mm256_setr_epi64x(0, 1, 2, 3));
#endif
}

/* A mask selecting the lanes from `first` on (0 < first < FG_LANES). */
FG_VTARGET FG_INLINE FG_MASK_T FG_USFX(fg_lane_mask_from)(int first)
{
#if FG_VW == 512
    return (FG_MASK_T)(~0u << first);
#elif FG_IS_F32
    return _mm256_cmpgt_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                              _mm256_set1_epi32(first - 1));
#else
    return _mm256_cmpgt_epi64(_mm256_setr_epi64x(0, 1, 2, 3),
                              _mm256_set1_epi64x(first - 1));
#endif
}

/* One vector of a tile into C: c := alpha * acc + beta * c (c not read
 * when beta == 0), only the lanes of `mask` when `last`. */
FG_VTARGET FG_INLINE void
FG_USFX(fg_store_vec)(T *c_vec, FG_V acc, T alpha, T beta, const int last,
                      FG_MASK_T mask)
{
    FG_V value = FG_MUL(FG_SET1(alpha), acc);
    if (beta != (T)0) {
        FG_V old = last ? FG_MASKLOAD(c_vec, mask) : FG_LOADU(c_vec);
        value = FG_FMADD(FG_SET1(beta), old, value);
    }
    if (last) {
        FG_MASKSTORE(c_vec, mask, value);
    }
    else {
        FG_STOREU(c_vec, value);
    }
}

#define FG_DIRECT_ROW(i)                                                  \
    if (rows > (i)) {                                                     \
        av = FG_BCAST(a_col + (i) * a_rs);                                \
        c##i##0 = FG_FMADD(av, b0, c##i##0);                              \
        if (nvec > 1) {                                                   \
            c##i##1 = FG_FMADD(av, b1, c##i##1);                          \
        }                                                                 \
    }
#define FG_DIRECT_STORE(i)                                                \
    if (rows > (i)) {                                                     \
        FG_USFX(fg_store_vec)(c + (i) * ldc, c##i##0, alpha, beta,        \
                              masked && nvec == 1, mask);                 \
        if (nvec > 1) {                                                   \
            FG_USFX(fg_store_vec)(c + (i) * ldc + FG_LANES, c##i##1,      \
                                  alpha, beta, masked, mask);             \
        }                                                                 \
    }

/* Direct tile, no packing (op(B) = B, rows contiguous along n):
 * C[0:rows, 0:cols] := alpha * op(A) B + beta * C, with op(A)[i, p] =
 * a[i * a_rs + p * a_cs] broadcast and B read by rows. nvec vectors of
 * columns; when `masked`, the last one holds only `tail` columns. rows,
 * nvec and masked are constants after inlining, so the accumulators live
 * in registers. */
FG_VTARGET FG_INLINE void
FG_USFX(fg_direct_tile)(const int rows, const int nvec, const int masked,
                        int tail, ptrdiff_t k, const T *a, ptrdiff_t a_rs,
                        ptrdiff_t a_cs, const T *b, ptrdiff_t ldb, T *c,
                        ptrdiff_t ldc, T alpha, T beta)
{
    FG_V c00 = FG_ZERO(), c01 = FG_ZERO(), c10 = FG_ZERO(), c11 = FG_ZERO();
    FG_V c20 = FG_ZERO(), c21 = FG_ZERO(), c30 = FG_ZERO(), c31 = FG_ZERO();
    FG_V c40 = FG_ZERO(), c41 = FG_ZERO(), c50 = FG_ZERO(), c51 = FG_ZERO();
    FG_V c60 = FG_ZERO(), c61 = FG_ZERO(), c70 = FG_ZERO(), c71 = FG_ZERO();
    FG_V av, b0, b1 = FG_ZERO();
    const FG_MASK_T mask = FG_USFX(fg_lane_mask)(masked ? tail : FG_LANES);
    ptrdiff_t p;

    for (p = 0; p < k; p++) {
        const T *b_row = b + p * ldb;
        const T *a_col = a + p * a_cs;
        if (nvec > 1) {
            b0 = FG_LOADU(b_row);
            b1 = masked ? FG_MASKLOAD(b_row + FG_LANES, mask)
                        : FG_LOADU(b_row + FG_LANES);
        }
        else {
            b0 = masked ? FG_MASKLOAD(b_row, mask) : FG_LOADU(b_row);
        }
        FG_DIRECT_ROW(0)
        FG_DIRECT_ROW(1)
        FG_DIRECT_ROW(2)
        FG_DIRECT_ROW(3)
        FG_DIRECT_ROW(4)
        FG_DIRECT_ROW(5)
        FG_DIRECT_ROW(6)
        FG_DIRECT_ROW(7)
    }
    FG_DIRECT_STORE(0)
    FG_DIRECT_STORE(1)
    FG_DIRECT_STORE(2)
    FG_DIRECT_STORE(3)
    FG_DIRECT_STORE(4)
    FG_DIRECT_STORE(5)
    FG_DIRECT_STORE(6)
    FG_DIRECT_STORE(7)
}
#undef FG_DIRECT_ROW
#undef FG_DIRECT_STORE

#define FG_DIRECT_INSTANCE(R, NV, MASKED)                                 \
    FG_VTARGET static void                                                \
    FG_USFX(fg_direct_##R##_##NV##_##MASKED)(                             \
        int tail, ptrdiff_t k, const T *a, ptrdiff_t a_rs, ptrdiff_t a_cs,\
        const T *b, ptrdiff_t ldb, T *c, ptrdiff_t ldc, T alpha, T beta)  \
    {                                                                     \
        FG_USFX(fg_direct_tile)(R, NV, MASKED, tail, k, a, a_rs, a_cs, b, \
                                ldb, c, ldc, alpha, beta);                \
    }
#define FG_DIRECT_ROW(R)                                                  \
    FG_DIRECT_INSTANCE(R, 1, 0)                                           \
    FG_DIRECT_INSTANCE(R, 1, 1)                                           \
    FG_DIRECT_INSTANCE(R, 2, 0)                                           \
    FG_DIRECT_INSTANCE(R, 2, 1)
FG_DIRECT_ROW(1)
FG_DIRECT_ROW(2)
FG_DIRECT_ROW(3)
FG_DIRECT_ROW(4)
FG_DIRECT_ROW(5)
FG_DIRECT_ROW(6)
#if FG_VW == 512
FG_DIRECT_ROW(7)
FG_DIRECT_ROW(8)
#endif
#undef FG_DIRECT_ROW
#undef FG_DIRECT_INSTANCE

#define FG_DIRECT_ENTRY(R)                                                \
    {FG_USFX(fg_direct_##R##_1_0), FG_USFX(fg_direct_##R##_1_1),          \
     FG_USFX(fg_direct_##R##_2_0), FG_USFX(fg_direct_##R##_2_1)}
/* [rows - 1][2 * (nvec - 1) + masked] */
static const FG_SFX(fg_direct_fn) FG_USFX(fg_direct_table)[FG_DIRECT_MR][4] = {
    FG_DIRECT_ENTRY(1), FG_DIRECT_ENTRY(2), FG_DIRECT_ENTRY(3),
    FG_DIRECT_ENTRY(4), FG_DIRECT_ENTRY(5), FG_DIRECT_ENTRY(6),
#if FG_VW == 512
    FG_DIRECT_ENTRY(7), FG_DIRECT_ENTRY(8)
#endif
};
#undef FG_DIRECT_ENTRY

/* One row of C, 4 vectors wide, without packing (op(B) = B): c[0:4L] :=
 * alpha * sum_p a[p * a_cs] b[p, 0:4L] + beta * c. For m == 1 (a vector
 * times a matrix) the wider tile keeps more loads of B in flight. */
FG_VTARGET static void
FG_USFX(fg_direct_row4)(ptrdiff_t k, const T *a, ptrdiff_t a_cs, const T *b,
                        ptrdiff_t ldb, T *c, T alpha, T beta)
{
    FG_V c0 = FG_ZERO(), c1 = FG_ZERO(), c2 = FG_ZERO(), c3 = FG_ZERO();
    const FG_MASK_T all = FG_USFX(fg_lane_mask)(FG_LANES);
    ptrdiff_t p;
    for (p = 0; p < k; p++) {
        const T *b_row = b + p * ldb;
        const FG_V av = FG_BCAST(a + p * a_cs);
#if FG_VW == 512
        /* Rows of B lie more than 2 KiB apart, beyond the stride the
         * Xeon's prefetcher follows: fetch the four (five, when not
         * aligned) lines of the row 8 steps ahead (1 x 100 x 784,
         * 2 threads: 1.12-1.24x, one run of six 0.95x). */
        const char *ahead = (const char *)(b_row + 8 * ldb);
        _mm_prefetch(ahead, _MM_HINT_T0);
        _mm_prefetch(ahead + 64, _MM_HINT_T0);
        _mm_prefetch(ahead + 128, _MM_HINT_T0);
        _mm_prefetch(ahead + 192, _MM_HINT_T0);
        _mm_prefetch(ahead + 255, _MM_HINT_T0);
#endif
        c0 = FG_FMADD(av, FG_LOADU(b_row), c0);
        c1 = FG_FMADD(av, FG_LOADU(b_row + FG_LANES), c1);
        c2 = FG_FMADD(av, FG_LOADU(b_row + 2 * FG_LANES), c2);
        c3 = FG_FMADD(av, FG_LOADU(b_row + 3 * FG_LANES), c3);
    }
    FG_USFX(fg_store_vec)(c, c0, alpha, beta, 0, all);
    FG_USFX(fg_store_vec)(c + FG_LANES, c1, alpha, beta, 0, all);
    FG_USFX(fg_store_vec)(c + 2 * FG_LANES, c2, alpha, beta, 0, all);
    FG_USFX(fg_store_vec)(c + 3 * FG_LANES, c3, alpha, beta, 0, all);
}

/* How many elements B lies past a vector boundary, when all its rows lie
 * alike (ldb a multiple of the vector); 0 otherwise. */
static inline int FG_USFX(fg_b_offset)(const FG_SFX(fg_problem) *pr)
{
    const uintptr_t address = (uintptr_t)pr->b;
    if (pr->ldb % FG_LANES != 0 || address % sizeof(T) != 0) {
        return 0;
    }
    return (int)(address / sizeof(T) % FG_LANES);
}

/* For a vector times a matrix, B's offset (fg_b_offset): the units of
 * columns start that many columns early, on vector boundaries, so that the
 * wide tiles of all but the first unit load whole cache lines (1 x 100 x
 * 784, 2 threads, rows 16, 32 or 48 bytes off a line: float32
 * 1.05-1.10x, float64 1.27-1.33x). */
static inline ptrdiff_t FG_USFX(fg_direct_lead)(const FG_SFX(fg_problem) *pr)
{
    return pr->m == 1 ? FG_USFX(fg_b_offset)(pr) : 0;
}

/* One unit of the direct path: C block := act(alpha op(A) B + beta C +
 * bias), column tiles outer so one B panel is reused from L1. */
FG_VTARGET static void
FG_USFX(fg_direct_unit)(const FG_SFX(fg_problem) *pr,
                        const FG_SFX(fg_grid) *grid, ptrdiff_t unit)
{
    const ptrdiff_t a_rs = pr->trans_a ? 1 : pr->lda;
    const ptrdiff_t a_cs = pr->trans_a ? pr->lda : 1;
    const ptrdiff_t lead = FG_USFX(fg_direct_lead)(pr);
    const ptrdiff_t i_begin = (unit % grid->row_units) * grid->unit_m;
    const ptrdiff_t i_end = FG_MIN(pr->m, i_begin + grid->unit_m);
    const ptrdiff_t j_grid = (unit / grid->row_units) * grid->unit_n - lead;
    const ptrdiff_t j_unit = j_grid > 0 ? j_grid : 0;
    const ptrdiff_t j_end = FG_MIN(pr->n, j_grid + grid->unit_n);
    const ptrdiff_t chunk = FG_SFX(fg_row_chunk)(pr->k, FG_DIRECT_MR);
    ptrdiff_t i0, j0, ic, j_begin = j_unit;

    j0 = j_begin;
    if (pr->m == 1) {
        /* A vector times a matrix: the columns short of a vector boundary
         * (first unit only), then wide tiles, the rest below. Each element
         * of C sees the same operations in any tile. */
        const int head = (int)FG_MIN((FG_LANES - lead) % FG_LANES,
                                     j_end - j0);
        if (j0 == 0 && head > 0) {   /* one row, one masked vector */
            FG_USFX(fg_direct_table)[0][1](head, pr->k, pr->a, 1, a_cs,
                                           pr->b, pr->ldb, pr->c, pr->ldc,
                                           pr->alpha, pr->beta);
            j0 = head;
        }
        for (; j0 + 4 * FG_LANES <= j_end; j0 += 4 * FG_LANES) {
            FG_USFX(fg_direct_row4)(pr->k, pr->a, a_cs, pr->b + j0, pr->ldb,
                                    pr->c + j0, pr->alpha, pr->beta);
        }
        j_begin = j0;
    }
    for (ic = i_begin; ic < i_end; ic += chunk) {
        const ptrdiff_t ic_end = FG_MIN(i_end, ic + chunk);
        for (j0 = j_begin; j0 < j_end; j0 += grid->tile_n) {
            const int cols = (int)FG_MIN(grid->tile_n, j_end - j0);
            const int nvec = cols > FG_LANES ? 2 : 1;
            const int tail = cols % FG_LANES;
            const int kind = 2 * (nvec - 1) + (tail != 0);
            for (i0 = ic; i0 < ic_end; i0 += FG_DIRECT_MR) {
                const int rows = (int)FG_MIN(FG_DIRECT_MR, i_end - i0);
                FG_USFX(fg_direct_table)[rows - 1][kind](
                    tail, pr->k, pr->a + i0 * a_rs, a_rs, a_cs,
                    pr->b + j0, pr->ldb, pr->c + i0 * pr->ldc + j0,
                    pr->ldc, pr->alpha, pr->beta);
            }
        }
        /* The epilogue once per chunk of rows (still in cache), on long
         * rows: per tile it cost more than the product. */
        FG_SFX(fg_epilogue_block)(pr, ic, ic_end, j_unit, j_end);
    }
}

/* The direct path on n_threads threads (see fg_run_units). */
static void
FG_USFX(fg_gemm_direct)(const FG_SFX(fg_problem) *pr, int n_threads)
{
    const FG_SFX(fg_grid) grid = FG_SFX(fg_unit_grid)(
        pr->m, pr->n + FG_USFX(fg_direct_lead)(pr), FG_DIRECT_MR,
        2 * FG_LANES);
    FG_SFX(fg_run_units)(pr, &grid, FG_USFX(fg_direct_unit), n_threads);
}

/* The sum of the lanes of v, in a fixed order: lanes i and i + L/2,
 * then i and i + L/4, ... (L lanes). Turning the lanes of v round (lane i
 * to i + r mod L) keeps every pair, so the sum keeps its bits. */
FG_VTARGET FG_INLINE T FG_USFX(fg_hsum)(FG_V v)
{
#if FG_IS_F32
#if FG_VW == 512
    const __m256 y = _mm256_add_ps(
        _mm512_castps512_ps256(v),
        _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
#else
    const __m256 y = v;
#endif
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(y),
                          _mm256_extractf128_ps(y, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
#else
#if FG_VW == 512
    const __m256d y = _mm256_add_pd(_mm512_castpd512_pd256(v),
                                    _mm512_extractf64x4_pd(v, 1));
#else
    const __m256d y = v;
#endif
    __m128d x = _mm_add_pd(_mm256_castpd256_pd128(y),
                           _mm256_extractf128_pd(y, 1));
    x = _mm_add_sd(x, _mm_unpackhi_pd(x, x));
    return _mm_cvtsd_f64(x);
#endif
}

#define FG_DOT_COL(j, LOAD)                                               \
    if (cols > (j)) {                                                     \
        bv = LOAD(b + (j) * ldb + p);                                     \
        c0##j = FG_FMADD(a0, bv, c0##j);                                  \
        if (rows > 1) {                                                   \
            c1##j = FG_FMADD(a1, bv, c1##j);                              \
        }                                                                 \
        if (rows > 2) {                                                   \
            c2##j = FG_FMADD(a2, bv, c2##j);                              \
        }                                                                 \
        if (rows > 3) {                                                   \
            c3##j = FG_FMADD(a3, bv, c3##j);                              \
        }                                                                 \
    }
#define FG_DOT_STEP(LOAD)                                                 \
    a0 = LOAD(a + p);                                                     \
    if (rows > 1) {                                                       \
        a1 = LOAD(a + lda + p);                                           \
    }                                                                     \
    if (rows > 2) {                                                       \
        a2 = LOAD(a + 2 * lda + p);                                       \
    }                                                                     \
    if (rows > 3) {                                                       \
        a3 = LOAD(a + 3 * lda + p);                                       \
    }                                                                     \
    FG_DOT_COL(0, LOAD)                                                   \
    FG_DOT_COL(1, LOAD)                                                   \
    FG_DOT_COL(2, LOAD)                                                   \
    FG_DOT_COL(3, LOAD)
#define FG_DOT_STORE(i, j)                                                \
    if (rows > (i) && cols > (j)) {                                       \
        T value_ = alpha * FG_USFX(fg_hsum)(c##i##j);                     \
        if (beta != (T)0) {                                               \
            value_ += beta * c[(i) * ldc + (j)];                          \
        }                                                                 \
        c[(i) * ldc + (j)] = value_;                                      \
    }
#define FG_MASKED_LOAD(ptr) FG_MASKLOAD((ptr), mask)

/* Dot tile, no packing (op(A) = A, op(B) = B^T: both contiguous along k):
 * C[i, j] := alpha * sum_p a[i, p] b[j, p] + beta * C[i, j] for rows x
 * cols, accumulating LANES partial sums per element (lane l sums p = l,
 * l + LANES, ... in order), then summing the lanes in a fixed order.
 * shift > 0 (when k >= LANES) starts the whole loads of B at p = shift,
 * on vector boundaries when b's rows are `shift` elements short of one:
 * the first `shift` elements come in a masked step before. Lane l then
 * sums p = shift + l + LANES q in the same order: the lanes are turned
 * round by `shift`, which fg_hsum does not see, so the result has the
 * same bits as with shift = 0. */
FG_VTARGET FG_INLINE void
FG_USFX(fg_dot_tile)(const int rows, const int cols, int shift, ptrdiff_t k,
                     const T *a, ptrdiff_t lda, const T *b, ptrdiff_t ldb,
                     T *c, ptrdiff_t ldc, T alpha, T beta)
{
    FG_V c00 = FG_ZERO(), c01 = FG_ZERO(), c02 = FG_ZERO(), c03 = FG_ZERO();
    FG_V c10 = FG_ZERO(), c11 = FG_ZERO(), c12 = FG_ZERO(), c13 = FG_ZERO();
    FG_V c20 = FG_ZERO(), c21 = FG_ZERO(), c22 = FG_ZERO(), c23 = FG_ZERO();
    FG_V c30 = FG_ZERO(), c31 = FG_ZERO(), c32 = FG_ZERO(), c33 = FG_ZERO();
    FG_V a0, a1 = FG_ZERO(), a2 = FG_ZERO(), a3 = FG_ZERO(), bv;
    ptrdiff_t p = 0;

    if (shift > 0) {
        /* Lanes before p = 0 are masked off (and not read). */
        const FG_MASK_T mask = FG_USFX(fg_lane_mask_from)(FG_LANES - shift);
        p = shift - FG_LANES;
        FG_DOT_STEP(FG_MASKED_LOAD)
        p = shift;
    }
    for (; p + FG_LANES <= k; p += FG_LANES) {
        FG_DOT_STEP(FG_LOADU)
    }
    if (p < k) {
        const FG_MASK_T mask = FG_USFX(fg_lane_mask)((int)(k - p));
        FG_DOT_STEP(FG_MASKED_LOAD)
    }
    FG_DOT_STORE(0, 0) FG_DOT_STORE(0, 1) FG_DOT_STORE(0, 2)
    FG_DOT_STORE(0, 3) FG_DOT_STORE(1, 0) FG_DOT_STORE(1, 1)
    FG_DOT_STORE(1, 2) FG_DOT_STORE(1, 3) FG_DOT_STORE(2, 0)
    FG_DOT_STORE(2, 1) FG_DOT_STORE(2, 2) FG_DOT_STORE(2, 3)
    FG_DOT_STORE(3, 0) FG_DOT_STORE(3, 1) FG_DOT_STORE(3, 2)
    FG_DOT_STORE(3, 3)
}
#undef FG_DOT_COL
#undef FG_DOT_STEP
#undef FG_DOT_STORE
#undef FG_MASKED_LOAD

#define FG_DOT_INSTANCE(R, S)                                             \
    FG_VTARGET static void                                                \
    FG_USFX(fg_dot_##R##_##S)(int shift, ptrdiff_t k, const T *a,         \
                             ptrdiff_t lda, const T *b, ptrdiff_t ldb,    \
                             T *c, ptrdiff_t ldc, T alpha, T beta)        \
    {                                                                     \
        FG_USFX(fg_dot_tile)(R, S, shift, k, a, lda, b, ldb, c, ldc,      \
                             alpha, beta);                                \
    }
#define FG_DOT_ROW(R)                                                     \
    FG_DOT_INSTANCE(R, 1) FG_DOT_INSTANCE(R, 2) FG_DOT_INSTANCE(R, 3)     \
    FG_DOT_INSTANCE(R, 4)
#define FG_DOT_ENTRY(R)                                                   \
    {FG_USFX(fg_dot_##R##_1), FG_USFX(fg_dot_##R##_2),                    \
     FG_USFX(fg_dot_##R##_3), FG_USFX(fg_dot_##R##_4)}
FG_DOT_ROW(1)
FG_DOT_ROW(2)
FG_DOT_ROW(3)
#if FG_VW == 512
FG_DOT_ROW(4)
#endif

/* [rows - 1][cols - 1] */
static const FG_SFX(fg_dot_fn) FG_USFX(fg_dot_table)[FG_DOT_MR][FG_DOT_NR] = {
    FG_DOT_ENTRY(1), FG_DOT_ENTRY(2), FG_DOT_ENTRY(3),
#if FG_VW == 512
    FG_DOT_ENTRY(4)
#endif
};
#undef FG_DOT_ROW
#undef FG_DOT_ENTRY
#undef FG_DOT_INSTANCE

/* The shift of the dot tiles (see fg_dot_tile): how many elements B's
 * rows lie short of a vector boundary, when they all lie alike and A has
 * no more rows than a tile, so that B's loads are the many ones. x W^T on
 * 2 threads, B's rows 16, 32 or 48 bytes off a cache line, against loads
 * from p = 0: 1.22-1.32x (float32) and 1.43-1.52x (float64) at 1 x 784 x
 * 100, 1.64-1.75x at 2 rows, 1.03-1.22x at 4; but 0.93x at 8 rows and
 * 0.8x at 32 (float32), as A's loads go off the lines instead. */
static inline int FG_USFX(fg_dot_shift)(const FG_SFX(fg_problem) *pr)
{
    if (pr->m > FG_DOT_MR || pr->k < FG_LANES) {
        return 0;
    }
    return (FG_LANES - FG_USFX(fg_b_offset)(pr)) % FG_LANES;
}

/* One unit of the dot path: C block := act(alpha A B^T + beta C + bias). */
FG_VTARGET static void
FG_USFX(fg_dot_unit)(const FG_SFX(fg_problem) *pr, const FG_SFX(fg_grid) *grid,
                     ptrdiff_t unit)
{
    const ptrdiff_t i_begin = (unit % grid->row_units) * grid->unit_m;
    const ptrdiff_t j_begin = (unit / grid->row_units) * grid->unit_n;
    const ptrdiff_t i_end = FG_MIN(pr->m, i_begin + grid->unit_m);
    const ptrdiff_t j_end = FG_MIN(pr->n, j_begin + grid->unit_n);
    const ptrdiff_t chunk = FG_SFX(fg_row_chunk)(pr->k, FG_DOT_MR);
    const int shift = FG_USFX(fg_dot_shift)(pr);
    ptrdiff_t i0, j0, ic;

    for (ic = i_begin; ic < i_end; ic += chunk) {
        const ptrdiff_t ic_end = FG_MIN(i_end, ic + chunk);
        for (j0 = j_begin; j0 < j_end; j0 += FG_DOT_NR) {
            const int cols = (int)FG_MIN(FG_DOT_NR, j_end - j0);
            for (i0 = ic; i0 < ic_end; i0 += FG_DOT_MR) {
                const int rows = (int)FG_MIN(FG_DOT_MR, i_end - i0);
                FG_USFX(fg_dot_table)[rows - 1][cols - 1](
                    shift, pr->k, pr->a + i0 * pr->lda, pr->lda,
                    pr->b + j0 * pr->ldb, pr->ldb,
                    pr->c + i0 * pr->ldc + j0, pr->ldc, pr->alpha,
                    pr->beta);
            }
        }
        FG_SFX(fg_epilogue_block)(pr, ic, ic_end, j_begin, j_end);
    }
}

/* The dot path on n_threads threads (see fg_run_units). */
static void
FG_USFX(fg_gemm_dot)(const FG_SFX(fg_problem) *pr, int n_threads)
{
    const FG_SFX(fg_grid) grid = FG_SFX(fg_unit_grid)(pr->m, pr->n,
                                                      FG_DOT_MR, FG_DOT_NR);
    FG_SFX(fg_run_units)(pr, &grid, FG_USFX(fg_dot_unit), n_threads);
}

#undef FG_USFX
#undef FG_VTARGET
#undef FG_V
#undef FG_LANES
#undef FG_MASK_T
#undef FG_LOADU
#undef FG_STOREU
#undef FG_MASKLOAD
#undef FG_MASKSTORE
#undef FG_FMADD
#undef FG_MUL
#undef FG_SET1
#undef FG_BCAST
#undef FG_ZERO
#undef FG_INLINE
#undef FG_DIRECT_MR
#undef FG_DOT_MR
#undef FG_DOT_NR
