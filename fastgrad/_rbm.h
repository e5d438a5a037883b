/*
 * Counter-based samplers (uniforms, dropout masks) and the fused block
 * Gibbs sampler of binary RBMs. Every random number is Philox4x32-10
 * (_philox.h) keyed by the seed, at a counter made of the call counter and
 * the element's coordinates, so results never depend on the thread count
 * or on how a batch is split between calls.
 */
#ifndef FASTGRAD_RBM_H
#define FASTGRAD_RBM_H
#include <stddef.h>
#include <stdint.h>

/* out[4 b + w] := word w of Philox((c0 + b, c1, c2, c3), (k0, k1)),
 * b < n_blocks (c0 + b wraps modulo 2^32). */
void fg_philox_blocks(uint32_t *out, size_t n_blocks, uint32_t c0,
                      uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                      uint32_t k1);

/* out[i] := U(seed, counter, i) in [0, 1), i < n, where U is word i % 4 of
 * Philox(counter = (i / 4 mod 2^32, i / 2^34, counter mod 2^32,
 * counter / 2^32), key = (seed mod 2^32, seed / 2^32)) as (x >> 8) 2^-24. */
void fg_uniform_fill_f32(float *out, size_t n, uint64_t seed,
                         uint64_t counter);
void fg_uniform_fill_f64(double *out, size_t n, uint64_t seed,
                         uint64_t counter);

/* out[i] := [U(seed, counter, i) >= fraction], the uniforms above. */
void fg_dropout_mask_f32(float *out, size_t n, double fraction,
                         uint64_t seed, uint64_t counter);
void fg_dropout_mask_f64(double *out, size_t n, double fraction,
                         uint64_t seed, uint64_t counter);

/*
 * k steps of block Gibbs sampling in a binary RBM, for a batch of `batch`
 * visible rows v0 (batch, n_vis), weight W (n_hid, n_vis), visible bias b
 * (n_vis), hidden bias c (n_hid):
 *   h0_probs = sigmoid(v0 W^T + c),  h0 = [u < h0_probs]
 *   for t = 1..k:
 *     vt_probs = sigmoid(h(t-1) W + b), vt = [u < vt_probs]
 *     ht_probs = sigmoid(vt W^T + c),   ht = [u < ht_probs]
 * Outputs h0_probs, h0_samples, hk_probs (batch, n_hid); vk_probs,
 * vk_samples (batch, n_vis); hk_samples (batch, n_hid) may be NULL when
 * the last hidden sample is not wanted (then `scratch` (batch, n_hid) must
 * be given when k > 1; it may be NULL otherwise).
 * The uniform u of unit j in half-step s (0 for h0, 2t - 1 for vt, 2t for
 * ht) of row i is word j % 4 of Philox(counter = (j / 4, row_offset + i,
 * s, counter), key = seed). Needs row_offset + batch <= 2^32 and
 * 2 k < 2^32 (checked by the wrapper).
 */
void fg_rbm_gibbs_f32(size_t batch, size_t n_vis, size_t n_hid,
                      const float *v0, const float *weight,
                      const float *vis_bias, const float *hid_bias, int k,
                      uint64_t seed, uint32_t counter, uint32_t row_offset,
                      float *h0_probs, float *h0_samples, float *vk_probs,
                      float *vk_samples, float *hk_probs, float *hk_samples,
                      float *scratch);
void fg_rbm_gibbs_f64(size_t batch, size_t n_vis, size_t n_hid,
                      const double *v0, const double *weight,
                      const double *vis_bias, const double *hid_bias, int k,
                      uint64_t seed, uint32_t counter, uint32_t row_offset,
                      double *h0_probs, double *h0_samples, double *vk_probs,
                      double *vk_samples, double *hk_probs,
                      double *hk_samples, double *scratch);

/*
 * Contrastive-divergence update with momentum and L2 weight decay, from a
 * positive phase (v0, h0) and a negative phase (vk, hk), batch rows each:
 *   VW := momentum VW + lr ((h0^T v0 - hk^T vk) / batch - wd W);  W += VW
 *   Vb := momentum Vb + lr sum_rows(v0 - vk) / batch;             b += Vb
 *   Vc := momentum Vc + lr sum_rows(h0 - hk) / batch;             c += Vc
 * (DeepLearnToolbox's rbmtrain with wd = 0; biases are not decayed).
 * Returns sum((v0 - vk)^2) over all entries (the reconstruction error of
 * CD-k, read in the same pass as the visible bias sums), summed per column
 * in row order and then over the columns in order, in double.
 */
double fg_rbm_cd_update_f32(size_t batch, size_t n_vis, size_t n_hid,
                          const float *v0, const float *h0, const float *vk,
                          const float *hk, float *weight, float *vis_bias,
                          float *hid_bias, float *weight_velocity,
                          float *vis_velocity, float *hid_velocity,
                          double learning_rate, double momentum,
                          double weight_decay);
double fg_rbm_cd_update_f64(size_t batch, size_t n_vis, size_t n_hid,
                          const double *v0, const double *h0,
                          const double *vk, const double *hk, double *weight,
                          double *vis_bias, double *hid_bias,
                          double *weight_velocity, double *vis_velocity,
                          double *hid_velocity, double learning_rate,
                          double momentum, double weight_decay);

#endif
