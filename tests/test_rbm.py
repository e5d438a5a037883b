"""RBM Gibbs sampler, CD update, RBM and DBN models.

A tiny RBM (4 visible x 3 hidden) has a distribution small enough to
enumerate, so the sampler is checked against exact probabilities; the
compiled kernels are checked against the NumPy references fed the same
Philox uniforms; samples must not depend on the thread count or on how a
batch is split into calls.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastgrad
from fastgrad import _kernels, ops, sampling
from fastgrad.models.dbn import DBN
from fastgrad.models.rbm import RBM
from fastgrad.reference import rbm as reference

DTYPES = [np.float32, np.float64]


@pytest.fixture
def threads():
    saved = fastgrad.get_num_threads()
    yield fastgrad.set_num_threads
    fastgrad.set_num_threads(saved)


def make_rbm(n_vis, n_hid, dtype, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    weight = (scale * rng.standard_normal((n_hid, n_vis))).astype(dtype)
    vis_bias = (0.5 * rng.standard_normal(n_vis)).astype(dtype)
    hid_bias = (0.5 * rng.standard_normal(n_hid)).astype(dtype)
    return weight, vis_bias, hid_bias


def outputs(batch, n_vis, n_hid, dtype, last_hidden=True):
    hidden = lambda: np.full((batch, n_hid), np.nan, dtype)
    visible = lambda: np.full((batch, n_vis), np.nan, dtype)
    return [hidden(), hidden(), visible(), visible(), hidden(),
            hidden() if last_hidden else None]


def gibbs(function, v0, params, k, seed=1, counter=2, row_offset=0,
          last_hidden=True):
    weight = params[0]
    return function(v0, *params, k, seed, counter, row_offset,
                    *outputs(v0.shape[0], weight.shape[1], weight.shape[0],
                             v0.dtype, last_hidden))


def binary(rng, shape, dtype, p=0.5):
    return (rng.random(shape) < p).astype(dtype)


def all_states(n):
    return np.array(list(itertools.product([0, 1], repeat=n)), np.float64)


def exact_visible_distribution(weight, vis_bias, hid_bias):
    """p(v) over all 2^n_vis states (rows of all_states) by enumeration."""
    v = all_states(weight.shape[1])
    weight = weight.astype(np.float64)
    log_p = v @ vis_bias + np.logaddexp(0, v @ weight.T + hid_bias).sum(1)
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def exact_hidden_distribution(weight, vis_bias, hid_bias):
    h = all_states(weight.shape[0])
    weight = weight.astype(np.float64)
    log_p = h @ hid_bias + np.logaddexp(0, h @ weight + vis_bias).sum(1)
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def state_index(samples):
    """Row of all_states for each binary row (first unit most significant)."""
    n = samples.shape[1]
    return (samples.astype(np.int64) << np.arange(n - 1, -1, -1)).sum(1)


def chi_square(counts, probs):
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


# ---------------------------------------------------------------- kernel


def assert_steps_match(got, want, batch, seed, counter, row_offset, tol):
    """Compiled == reference for a chain of k <= 1 (every state returned):
    probabilities close; samples equal except where the uniform lies
    within `tol` of the probability, after which the two chains may rightly
    part and the rest is not compared."""
    names = ["h0_probs", "h0_samples", "vk_probs", "vk_samples", "hk_probs",
             "hk_samples"]
    for step, (prob_index, sample_index) in enumerate(((0, 1), (2, 3),
                                                       (4, 5))):
        if got[prob_index] is None:
            assert want[prob_index] is None
            return
        assert np.allclose(got[prob_index], want[prob_index], rtol=tol,
                           atol=tol), names[prob_index]
        if got[sample_index] is None:
            assert want[sample_index] is None
            return
        uniforms = reference.gibbs_uniforms(
            batch, got[prob_index].shape[1], seed, counter, row_offset, step)
        differ = got[sample_index] != want[sample_index]
        near = np.abs(uniforms - want[prob_index]) < tol
        assert not np.any(differ & ~near), names[sample_index]
        if np.any(differ):
            return


@given(batch=st.integers(0, 9), n_vis=st.integers(1, 13),
       n_hid=st.integers(1, 11), k=st.integers(0, 3),
       seed=st.integers(0, 2 ** 64 - 1), counter=st.integers(0, 2 ** 32 - 1),
       row_offset=st.integers(0, 2 ** 31), dtype=st.sampled_from(DTYPES),
       last_hidden=st.booleans())
def test_gibbs_matches_reference(batch, n_vis, n_hid, k, seed, counter,
                                 row_offset, dtype, last_hidden):
    rng = np.random.default_rng(batch * 1000 + n_vis * 10 + n_hid)
    params = make_rbm(n_vis, n_hid, dtype, seed=n_vis)
    v0 = binary(rng, (batch, n_vis), dtype)
    if k > 1:
        dtype = np.float64  # hidden intermediate steps: compare exactly
        params = [p.astype(dtype) for p in params]
        v0 = v0.astype(dtype)
    got = gibbs(_kernels.rbm_gibbs, v0, params, k, seed, counter, row_offset,
                last_hidden)
    want = gibbs(reference.rbm_gibbs, v0, params, k, seed, counter,
                 row_offset, last_hidden)
    if k <= 1:
        tol = 1e-5 if dtype == np.float32 else 1e-12
        assert_steps_match(got, want, batch, seed, counter, row_offset, tol)
    else:
        for a, b in zip(got, want):
            assert (a is None) == (b is None)
            if a is not None:
                assert np.allclose(a, b, rtol=1e-12, atol=1e-12)
    assert (got[5] is None) == (not last_hidden or k == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_k_step_chain_equals_reference_in_float64(dtype):
    """Long chains (k = 5) agree exactly with the reference in float64 and
    on all but knife-edge samples in float32."""
    rng = np.random.default_rng(3)
    params = make_rbm(30, 20, dtype, scale=0.3)
    v0 = binary(rng, (40, 30), dtype)
    got = gibbs(_kernels.rbm_gibbs, v0, params, 5, 9, 10, 11)
    want = gibbs(reference.rbm_gibbs, v0, params, 5, 9, 10, 11)
    if dtype == np.float64:
        for g, w in zip(got, want):
            assert np.allclose(g, w, rtol=1e-12, atol=1e-12)
        assert np.array_equal(got[3], want[3])
        assert np.array_equal(got[5], want[5])
    else:
        # a sample may flip where u is within float32 rounding of p
        assert np.mean(got[3] == want[3]) > 0.99


def test_samples_are_binary_and_probabilities_in_range():
    rng = np.random.default_rng(0)
    params = make_rbm(7, 5, np.float32)
    got = gibbs(_kernels.rbm_gibbs, binary(rng, (50, 7), np.float32), params,
                2)
    for index in (1, 3, 5):
        assert set(np.unique(got[index])) <= {0.0, 1.0}
    for index in (0, 2, 4):
        assert np.all((got[index] >= 0) & (got[index] <= 1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_thread_count_does_not_change_samples(threads, dtype):
    rng = np.random.default_rng(1)
    params = make_rbm(300, 200, dtype, scale=0.1)
    v0 = binary(rng, (256, 300), dtype)
    results = []
    for n_threads in (1, 2):
        threads(n_threads)
        chain = gibbs(_kernels.rbm_gibbs, v0, params, 2, 4, 5, 6)
        state = [p.copy() for p in params] + [np.zeros_like(p)
                                              for p in params]
        _kernels.rbm_cd_update(v0, chain[1], chain[3], chain[4], *state,
                               0.1, 0.5, 0.01)
        results.append(list(chain) + state)
    for one, two in zip(*results):
        assert np.array_equal(one, two)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_split_does_not_change_samples(dtype):
    """Rows 0..99 in one call = rows 0..cut-1 and cut..99 in two calls with
    row offsets. The samples are equal; the probabilities may differ in the
    last bit, because the GEMM may pick another path (and summation order)
    for another number of rows, so a sample could flip only where a uniform
    falls within an ulp of its probability (none here)."""
    rng = np.random.default_rng(2)
    params = make_rbm(50, 30, dtype, scale=0.3)
    v0 = binary(rng, (100, 50), dtype)
    whole = gibbs(_kernels.rbm_gibbs, v0, params, 3, 7, 8, 1000)
    tol = 4 * np.finfo(dtype).eps
    for cut in (1, 4, 37, 50, 99):
        first = gibbs(_kernels.rbm_gibbs, v0[:cut], params, 3, 7, 8, 1000)
        second = gibbs(_kernels.rbm_gibbs, v0[cut:], params, 3, 7, 8,
                       1000 + cut)
        for index, (all_rows, a, b) in enumerate(zip(whole, first, second)):
            joined = np.concatenate([a, b])
            if index in (1, 3, 5):
                assert np.array_equal(all_rows, joined)
            else:
                assert np.allclose(all_rows, joined, rtol=tol, atol=tol)


def test_float32_and_float64_chains_mostly_agree():
    """Both dtypes see the same uniforms, so samples differ only where a
    uniform falls between the two probabilities."""
    rng = np.random.default_rng(4)
    params64 = make_rbm(40, 30, np.float64, scale=0.3)
    params32 = [p.astype(np.float32) for p in params64]
    v0 = binary(rng, (64, 40), np.float64)
    a = gibbs(_kernels.rbm_gibbs, v0, params64, 1)
    b = gibbs(_kernels.rbm_gibbs, v0.astype(np.float32), params32, 1)
    assert np.array_equal(a[1], b[1])
    assert np.mean(a[3] == b[3]) > 0.999


# ------------------------------------------------------------ sparse paths
# Half-steps with inputs below _kernels.RBM_SPARSE_MAX_DENSITY nonzero, and
# CD updates with v0, vk below RBM_SPARSE_CD_MAX_DENSITY, skip the zeros.
# Shapes cross the 64-unit blocks of the sparse kernels; negative biases
# keep the sampled units sparse so later half-steps take the sparse path.

SPARSE = _kernels.RBM_SPARSE_MAX_DENSITY
SPARSE_CD = _kernels.RBM_SPARSE_CD_MAX_DENSITY
MIN_ROWS = _kernels.RBM_SPARSE_MIN_ROWS_T


def sparse_rbm(n_vis, n_hid, dtype, seed=0, shift=-3.0):
    """Weights and biases whose samples are mostly zeros."""
    weight, vis_bias, hid_bias = make_rbm(n_vis, n_hid, dtype, seed,
                                          scale=0.3)
    return weight, vis_bias + dtype(shift), hid_bias + dtype(shift)


def pixels(rng, shape, dtype, density):
    """Values in (0, 1] on a fraction `density` of the entries, else 0
    (like MNIST pixels)."""
    mask = rng.random(shape) < density
    return (mask * (1 - rng.random(shape))).astype(dtype)


def test_sparse_thresholds_are_fractions():
    assert 0 < SPARSE_CD <= SPARSE <= 1 and MIN_ROWS >= 1


@given(batch=st.integers(0, 40), n_vis=st.integers(1, 150),
       n_hid=st.integers(1, 150),
       density=st.sampled_from([0.0, 0.05, 0.2, 0.45, 0.8, 1.0]),
       shift=st.sampled_from([-4.0, 0.0]), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2 ** 64 - 1), row_offset=st.integers(0, 1000))
def test_sparse_gibbs_matches_reference(batch, n_vis, n_hid, density, shift,
                                        dtype, seed, row_offset):
    """The compiled step equals the NumPy reference fed the same uniforms,
    on both sides of the sparse threshold (density 0 and 1 included)."""
    rng = np.random.default_rng(batch + 200 * n_vis + 40000 * n_hid)
    params = sparse_rbm(n_vis, n_hid, dtype, seed=n_hid, shift=shift)
    v0 = pixels(rng, (batch, n_vis), dtype, density)
    got = gibbs(_kernels.rbm_gibbs, v0, params, 1, seed, 3, row_offset)
    want = gibbs(reference.rbm_gibbs, v0, params, 1, seed, 3, row_offset)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert_steps_match(got, want, batch, seed, 3, row_offset, tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("density", [0.0, 0.1, 1.0])
def test_sparse_gibbs_threads_and_batch_split(threads, dtype, density):
    """Sparse half-steps: 1 and 2 threads agree bit for bit, and so does a
    batch split into calls, probabilities included (each row is summed
    over its own nonzeros, in index order), when every call has at least
    MIN_ROWS rows (fewer run the first half-step as a GEMM)."""
    rng = np.random.default_rng(7)
    params = sparse_rbm(300, 200, dtype)
    v0 = pixels(rng, (120, 300), dtype, density)
    results = []
    for n_threads in (1, 2):
        threads(n_threads)
        results.append(gibbs(_kernels.rbm_gibbs, v0, params, 2, 4, 5, 6))
    for one, two in zip(*results):
        assert np.array_equal(one, two)
    whole = results[0]
    assert whole[1].mean() < SPARSE and whole[3].mean() < SPARSE
    for cut in (MIN_ROWS, 37, 64, 120 - MIN_ROWS):
        first = gibbs(_kernels.rbm_gibbs, v0[:cut], params, 2, 4, 5, 6)
        second = gibbs(_kernels.rbm_gibbs, v0[cut:], params, 2, 4, 5,
                       6 + cut)
        for index, (all_rows, a, b) in enumerate(zip(whole, first, second)):
            joined = np.concatenate([a, b])
            if density == 1.0 and index == 0:
                # the first half-step is a GEMM: last-bit differences
                assert np.allclose(all_rows, joined, rtol=1e-5, atol=1e-6)
            else:
                assert np.array_equal(all_rows, joined), index


@given(batch=st.integers(0, 40), n_vis=st.integers(1, 150),
       n_hid=st.integers(1, 150),
       density=st.sampled_from([0.0, 0.05, 0.2, 0.29, 0.6, 1.0]),
       dtype=st.sampled_from(DTYPES), weight_decay=st.sampled_from([0, 0.01]))
def test_sparse_cd_update_matches_reference(batch, n_vis, n_hid, density,
                                            dtype, weight_decay):
    rng = np.random.default_rng(batch + 200 * n_vis + 40000 * n_hid)
    v0 = pixels(rng, (batch, n_vis), dtype, density)
    vk = binary(rng, (batch, n_vis), dtype, density)
    h0 = binary(rng, (batch, n_hid), dtype, 0.3)
    hk = rng.random((batch, n_hid)).astype(dtype)
    state = list(make_rbm(n_vis, n_hid, dtype)) + [
        rng.standard_normal(s).astype(dtype)
        for s in ((n_hid, n_vis), (n_vis,), (n_hid,))]
    got = [a.copy() for a in state]
    want = [a.copy() for a in state]
    error = _kernels.rbm_cd_update(v0, h0, vk, hk, *got, 0.5, 0.9,
                                   weight_decay)
    want_error = reference.rbm_cd_update(v0, h0, vk, hk, *want, 0.5, 0.9,
                                         weight_decay)
    assert error == pytest.approx(want_error, rel=1e-12, abs=1e-12)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for g, w in zip(got, want):
        assert g.dtype == dtype
        assert np.allclose(g, w, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("density", [0.0, 0.1, 0.25])
def test_sparse_cd_update_is_thread_count_invariant(threads, dtype,
                                                    density):
    rng = np.random.default_rng(8)
    v0 = pixels(rng, (150, 300), dtype, density)
    vk = binary(rng, (150, 300), dtype, density)
    h0 = binary(rng, (150, 130), dtype, 0.3)
    hk = rng.random((150, 130)).astype(dtype)
    results = []
    for n_threads in (1, 2):
        threads(n_threads)
        state = [p.copy() for p in make_rbm(300, 130, dtype)] + [
            np.full(s, 0.1, dtype) for s in ((130, 300), (300,), (130,))]
        _kernels.rbm_cd_update(v0, h0, vk, hk, *state, 0.1, 0.5, 0.01)
        results.append(state)
    for one, two in zip(*results):
        assert np.array_equal(one, two)


# ------------------------------------------------------- exact statistics


def test_long_chains_match_the_exact_distribution():
    """Tiny RBM (4 x 3): 20,000 chains of 40 steps; chi-square of the
    visible states (15 dof) and hidden states (7 dof) at a fixed seed."""
    params = make_rbm(4, 3, np.float64, seed=5)
    rng = np.random.default_rng(5)
    n_chains = 20000
    v0 = binary(rng, (n_chains, 4), np.float64)
    chain = gibbs(_kernels.rbm_gibbs, v0, params, 40, seed=123, counter=0)
    p_v = exact_visible_distribution(*params)
    p_h = exact_hidden_distribution(*params)
    counts_v = np.bincount(state_index(chain[3]), minlength=16)
    counts_h = np.bincount(state_index(chain[5]), minlength=8)
    assert chi_square(counts_v, p_v) < 37.7   # p = 0.001 at 15 dof
    assert chi_square(counts_h, p_h) < 24.3   # p = 0.001 at 7 dof
    # the model's free energy and log Z give the same distribution
    rbm = RBM(4, 3, dtype=np.float64, seed=0)
    for tensor, value in zip((rbm.weight, rbm.vis_bias, rbm.hid_bias),
                             params):
        tensor.data[...] = value
    log_p = -rbm.free_energy(all_states(4)) - rbm.log_partition()
    assert np.allclose(np.exp(log_p), p_v, rtol=1e-10, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_frequencies_match_sigmoid_probabilities(dtype):
    """h0 ~ Bernoulli(h0_probs) and vk ~ Bernoulli(vk_probs) unit by unit:
    sum(samples - probs) over rows is within 5 sd of 0."""
    rng = np.random.default_rng(6)
    params = make_rbm(6, 5, dtype, seed=6)
    v0 = binary(rng, (40000, 6), dtype)
    chain = gibbs(_kernels.rbm_gibbs, v0, params, 1, seed=77, counter=3)
    for probs, samples in ((chain[0], chain[1]), (chain[2], chain[3]),
                           (chain[4], chain[5])):
        p = probs.astype(np.float64)
        z = (samples - p).sum(0) / np.sqrt((p * (1 - p)).sum(0))
        assert np.all(np.abs(z) < 5), z


# ------------------------------------------------------------- CD update


@given(batch=st.integers(0, 9), n_vis=st.integers(1, 13),
       n_hid=st.integers(1, 11), dtype=st.sampled_from(DTYPES),
       learning_rate=st.floats(0, 2), momentum=st.floats(0, 1),
       weight_decay=st.floats(0, 0.1))
def test_cd_update_matches_reference(batch, n_vis, n_hid, dtype,
                                     learning_rate, momentum, weight_decay):
    rng = np.random.default_rng(batch + 20 * n_vis + 400 * n_hid)
    phases = [rng.random((batch, n)).astype(dtype)
              for n in (n_vis, n_hid, n_vis, n_hid)]
    state = list(make_rbm(n_vis, n_hid, dtype)) + [
        rng.standard_normal(s).astype(dtype)
        for s in ((n_hid, n_vis), (n_vis,), (n_hid,))]
    got = [a.copy() for a in state]
    want = [a.copy() for a in state]
    error = _kernels.rbm_cd_update(*phases, *got, learning_rate, momentum,
                                   weight_decay)
    want_error = reference.rbm_cd_update(*phases, *want, learning_rate,
                                         momentum, weight_decay)
    assert error == pytest.approx(want_error, rel=1e-12, abs=1e-12)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for g, w in zip(got, want):
        assert g.dtype == dtype
        assert np.allclose(g, w, rtol=tol, atol=tol * (1 + batch))


# ------------------------------------------------------------ bad input


def test_gibbs_bad_input_raises():
    rng = np.random.default_rng(0)
    params = make_rbm(4, 3, np.float32)
    v0 = binary(rng, (5, 4), np.float32)
    good = outputs(5, 4, 3, np.float32)
    call = _kernels.rbm_gibbs
    with pytest.raises(ValueError, match="rbm_gibbs.*visible units"):
        call(binary(rng, (5, 6), np.float32), *params, 1, 0, 0, 0, *good)
    with pytest.raises(TypeError, match="rbm_gibbs.*weight"):
        call(v0, params[0].astype(np.float64), *params[1:], 1, 0, 0, 0,
             *good)
    with pytest.raises(ValueError, match="hid_bias"):
        call(v0, params[0], params[1], np.zeros(4, np.float32), 1, 0, 0, 0,
             *good)
    with pytest.raises(ValueError, match="C-contiguous"):
        call(np.asfortranarray(v0), *params, 1, 0, 0, 0, *good)
    with pytest.raises(ValueError, match="h0_probs has shape"):
        call(v0, *params, 1, 0, 0, 0, np.empty((5, 4), np.float32),
             *good[1:])
    with pytest.raises(ValueError, match="overlaps"):
        call(v0, *params, 1, 0, 0, 0, good[0], good[0], *good[2:])
    with pytest.raises(ValueError, match="required"):
        call(v0, *params, 1, 0, 0, 0, good[0], None, *good[2:])
    with pytest.raises(ValueError, match="counter"):
        call(v0, *params, 1, 0, 2 ** 32, 0, *good)
    with pytest.raises(ValueError, match="row_offset"):
        call(v0, *params, 1, 0, 0, 2 ** 32 - 2, *good)
    with pytest.raises(ValueError, match="k must"):
        call(v0, *params, -1, 0, 0, 0, *good)
    with pytest.raises(TypeError, match="k must"):
        call(v0, *params, 1.0, 0, 0, 0, *good)


def test_cd_update_bad_input_raises():
    params = [p.copy() for p in make_rbm(4, 3, np.float32)]
    velocities = [np.zeros_like(p) for p in params]
    v, h = np.zeros((2, 4), np.float32), np.zeros((2, 3), np.float32)
    call = _kernels.rbm_cd_update
    with pytest.raises(ValueError, match="rbm_cd_update.*hk"):
        call(v, h, v, v, *params, *velocities, 0.1, 0, 0)
    with pytest.raises(ValueError, match="overlaps"):
        call(v, h, v, h, *params, params[0], *velocities[1:], 0.1, 0, 0)
    with pytest.raises(ValueError, match="learning_rate"):
        call(v, h, v, h, *params, *velocities, float("nan"), 0, 0)


def test_model_rejects_bad_input():
    rbm = RBM(4, 3, seed=0)
    x = np.zeros((10, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rbm.train(x + 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rbm.train(x - 0.5)
    x_nan = x.copy()
    x_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rbm.train(x_nan)
    with pytest.raises(ValueError, match="4 visible units"):
        rbm.train(np.zeros((10, 5)))
    with pytest.raises(ValueError, match="2-D"):
        rbm.transform(np.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        rbm.train(x, batch_size=0)
    with pytest.raises(ValueError, match="n_hidden"):
        RBM(4, 0)
    with pytest.raises(ValueError, match="learning_rate"):
        RBM(4, 3, learning_rate=float("inf"))
    with pytest.raises(ValueError, match="4 visible units"):
        DBN([4, 3, 2], seed=0).train(np.zeros((5, 3)))


# ----------------------------------------------------------- the models


def tiny_data():
    patterns = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]],
                        np.float32)
    return np.repeat(patterns, [40, 40, 20], axis=0)


@pytest.mark.parametrize("persistent, k", [(False, 1), (False, 3),
                                           (True, 1)])
def test_cd_raises_the_exact_log_likelihood(persistent, k):
    x = tiny_data()
    rbm = RBM(4, 3, learning_rate=0.05, momentum=0.5, k=k,
              persistent=persistent, dtype=np.float64, seed=0)
    before = rbm.log_likelihood(x)
    assert np.isclose(before, -4 * np.log(2))  # zero weights: uniform
    rbm.train(x, epochs=100, batch_size=10)
    after = rbm.log_likelihood(x)
    assert after > before + 1.0, (before, after)
    # the data's entropy bounds the mean log-likelihood
    entropy = -(0.4 * np.log(0.4) * 2 + 0.2 * np.log(0.2))
    assert after < -entropy + 1e-9


def test_default_is_deeplearntoolbox_cd1():
    """RBM.step = rbmtrain's update, recomputed here from the same
    uniforms: h1 = sampled, v2 = sampled, h2 = probabilities."""
    rng = np.random.default_rng(8)
    x = binary(rng, (10, 6), np.float64)
    rbm = RBM(6, 4, learning_rate=0.7, momentum=0.3, init="normal",
              dtype=np.float64, seed=3)
    for _ in range(2):  # twice, so the momentum term is exercised
        W, b, c = (t.data.copy() for t in (rbm.weight, rbm.vis_bias,
                                           rbm.hid_bias))
        vW, vb, vc = (a.copy() for a in (rbm.weight_velocity,
                                         rbm.vis_velocity,
                                         rbm.hid_velocity))
        seed, counter = rbm.sampler.seed, rbm.sampler.counter
        err = rbm.step(x)
        sigm = lambda z: 1 / (1 + np.exp(-z))
        u = lambda step, n: reference.gibbs_uniforms(10, n, seed, counter,
                                                     0, step)
        h1 = (sigm(c + x @ W.T) > u(0, 4)).astype(float)
        v2 = (sigm(b + h1 @ W) > u(1, 6)).astype(float)
        h2 = sigm(c + v2 @ W.T)
        vW = 0.3 * vW + 0.7 * (h1.T @ x - h2.T @ v2) / 10
        vb = 0.3 * vb + 0.7 * (x - v2).sum(0) / 10
        vc = 0.3 * vc + 0.7 * (h1 - h2).sum(0) / 10
        assert np.allclose(rbm.weight.data, W + vW, atol=1e-12)
        assert np.allclose(rbm.vis_bias.data, b + vb, atol=1e-12)
        assert np.allclose(rbm.hid_bias.data, c + vc, atol=1e-12)
        assert np.isclose(err, ((x - v2) ** 2).sum() / 10)


def test_training_is_reproducible_and_thread_independent(threads):
    rng = np.random.default_rng(9)
    x = rng.random((300, 40)).astype(np.float32)
    weights = []
    for n_threads in (1, 2, 2):
        threads(n_threads)
        rbm = RBM(40, 30, init="normal", seed=11)
        rbm.train(x, epochs=2, batch_size=64)
        weights.append(rbm.weight.data.copy())
    assert np.array_equal(weights[0], weights[1])
    assert np.array_equal(weights[1], weights[2])
    other = RBM(40, 30, init="normal", seed=12)
    other.train(x, epochs=2, batch_size=64)
    assert not np.array_equal(other.weight.data, weights[0])


def test_transform_sample_and_free_energy():
    rng = np.random.default_rng(10)
    rbm = RBM(12, 5, init="normal", seed=1)
    x = binary(rng, (30, 12), np.float32)
    rbm.train(x, epochs=3, batch_size=10)
    hidden = rbm.transform(x)
    sigm = lambda z: 1 / (1 + np.exp(-z))
    assert hidden.shape == (30, 5) and hidden.dtype == np.float32
    assert np.allclose(hidden, sigm(x @ rbm.weight.data.T
                                    + rbm.hid_bias.data), atol=1e-6)
    samples = rbm.sample(7, steps=20)
    assert samples.shape == (7, 12)
    assert set(np.unique(samples)) <= {0.0, 1.0}
    assert rbm.free_energy(x).shape == (30,)
    assert rbm.reconstruct(x).shape == (30, 12)
    assert len(rbm.errors) == 3


def test_checkpoint_resumes_bit_identically(tmp_path):
    rng = np.random.default_rng(11)
    x = binary(rng, (64, 10), np.float32)
    for persistent in (False, True):
        a = RBM(10, 6, momentum=0.5, persistent=persistent, seed=4)
        a.train(x, epochs=2, batch_size=16)
        a.save(tmp_path / "rbm.npz")
        a.train(x, epochs=1, batch_size=16)
        b = RBM(10, 6, momentum=0.5, persistent=persistent, seed=99)
        b.load(tmp_path / "rbm.npz")
        b.train(x, epochs=1, batch_size=16)
        assert np.array_equal(a.weight.data, b.weight.data)
        assert a.errors == b.errors
    wrong = RBM(11, 6, seed=0)
    before = wrong.weight.data.copy()
    with pytest.raises(ValueError, match="does not fit"):
        wrong.load(tmp_path / "rbm.npz")
    assert np.array_equal(wrong.weight.data, before)


def test_dbn_trains_layer_by_layer(tmp_path):
    rng = np.random.default_rng(12)
    x = binary(rng, (120, 20), np.float32, p=0.3)
    dbn = DBN([20, 8, 5], momentum=0.5, learning_rate=0.5, seed=2)
    histories = dbn.train(x, epochs=2, batch_size=20)
    assert [len(h) for h in histories] == [2, 2]
    assert dbn.transform(x).shape == (120, 5)
    # the second RBM was trained on the first one's hidden probabilities
    second = RBM(8, 5, momentum=0.5, learning_rate=0.5, seed=3)
    first = RBM(20, 8, momentum=0.5, learning_rate=0.5, seed=2)
    first.train(x, epochs=2, batch_size=20)
    second.train(first.transform(x), epochs=2, batch_size=20)
    assert np.array_equal(second.weight.data, dbn.rbms[1].weight.data)
    dbn.save(tmp_path / "dbn.npz")
    other = DBN([20, 8, 5], seed=7)
    other.load(tmp_path / "dbn.npz")
    for a, b in zip(dbn.rbms, other.rbms):
        assert np.array_equal(a.weight.data, b.weight.data)


def test_dbn_unfolds_into_nn():
    nn_module = pytest.importorskip("fastgrad.models.nn")
    rng = np.random.default_rng(13)
    x = binary(rng, (60, 20), np.float32)
    dbn = DBN([20, 8, 5], init="normal", seed=3)
    dbn.train(x, epochs=1, batch_size=20)
    net = dbn.to_nn(4, activation="sigm", learning_rate=2, momentum=0.5)
    assert isinstance(net, nn_module.NN)
    assert net.sizes == [20, 8, 5, 4]
    for i, rbm in enumerate(dbn.rbms):
        assert np.array_equal(net.weights[i].data, rbm.weight.data)
        assert np.array_equal(net.biases[i].data, rbm.hid_bias.data)
    # the unfolded hidden layers compute the DBN's transform
    assert np.allclose(net.hidden_activations(x)[-1], dbn.transform(x),
                       atol=1e-6)


def test_ops_samplers():
    rng = fastgrad.rng.CounterRNG(5)
    u = sampling.uniform((3, 4), rng, np.float64)
    assert u.shape == (3, 4) and rng.counter == 1
    assert np.array_equal(u, _kernels.uniform_fill(np.empty((3, 4)), 5, 0))
    params = make_rbm(6, 4, np.float32)
    v0 = binary(np.random.default_rng(0), (8, 6), np.float32)
    chain = sampling.rbm_gibbs(fastgrad.tensor(v0), *map(fastgrad.tensor, params),
                          2, (5, 9))
    direct = gibbs(_kernels.rbm_gibbs, v0, params, 2, 5, 9, 0,
                   last_hidden=False)
    for a, b in zip(chain, direct):
        assert (a is None and b is None) or np.array_equal(a, b)
    assert chain.hk_samples is None and chain.vk_samples.shape == (8, 6)
    zero = sampling.rbm_gibbs(v0, *params, 0, (5, 9))
    assert np.array_equal(zero.h0_samples, direct[1])
    assert zero.vk_probs is None


@pytest.mark.parametrize("persistent", [False, True])
def test_step_returns_the_reconstruction_error(persistent):
    """step() = sum((v1 - v2)^2) / n with v2 the sampled reconstruction of
    the data (CD-k: the chain end, summed by the update kernel)."""
    import copy
    rng = np.random.default_rng(5)
    x = (rng.random((40, 30)) < 0.3).astype(np.float32)
    rbm = RBM(30, 20, learning_rate=0.1, persistent=persistent, seed=3)
    rbm.step(x)  # PCD: a chain exists from here on
    twin = copy.deepcopy(rbm)
    error = rbm.step(x)
    data = sampling.rbm_gibbs(x, *twin._params(), 1, twin.sampler.take())
    want = np.sum((x.astype(np.float64) - data.vk_samples) ** 2) / len(x)
    assert error == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("n_hid, n_vis", [(0, 30), (5, 0), (0, 0)])
def test_gibbs_with_no_units_gives_empty_arrays(n_hid, n_vis):
    """Zero hidden or visible units: empty results, no crash (the sparse
    path's column blocks must not divide by zero)."""
    v = (np.random.default_rng(0).random((20, n_vis)) < 0.1).astype(
        np.float32)
    chain = sampling.rbm_gibbs(v, np.zeros((n_hid, n_vis), np.float32),
                          np.zeros(n_vis, np.float32),
                          np.zeros(n_hid, np.float32), 1, (0, 1))
    assert chain.h0_probs.shape == (20, n_hid)
    assert chain.vk_samples.shape == (20, n_vis)
    assert np.all(chain.vk_probs == 0.5)  # sigmoid(0 + b), b = 0
