"""Correctness of the benchmark code on tiny settings (never its speed)."""
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import common, peers  # noqa: E402


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr(common, "PAUSE_BETWEEN_LIBRARIES", 0.0)
    monkeypatch.setattr(common, "FIRST_WARMUP_SECONDS", 0.0)


def test_time_alternating_runs_in_turn():
    calls = []
    impls = [common.Impl("a", "lib_a", lambda: calls.append("a")),
             common.Impl("b", "lib_b", lambda: calls.append("b"))]
    timings = common.time_alternating(impls, repeats=5, run_seconds=0.0,
                                      warmup=1)
    assert set(timings) == {"a", "b"}
    for timing in timings.values():
        assert len(timing.runs) == 5
        assert timing.min <= timing.median <= timing.max
    # after warm-up/calibration the timed rounds alternate a b a b ...
    assert calls[-10:] == ["a", "b"] * 5


def test_time_alternating_calibrates_past_slow_first_calls():
    """Slow first calls (threads starting) must not set a short run."""
    calls = []

    def starts_slowly():
        calls.append(None)
        if len(calls) <= 4:
            time.sleep(0.005)

    timing = common.time_alternating(
        [common.Impl("a", "lib_a", starts_slowly)], repeats=1,
        run_seconds=0.02, warmup=0)["a"]
    # Each later call takes about a microsecond: runs of 0.02 s hold
    # thousands; calibrated on the first calls, they would hold 4.
    assert timing.inner >= 1000
    assert timing.median < 0.001


def test_time_alternating_warms_each_library_up_once(monkeypatch):
    monkeypatch.setattr(common, "FIRST_WARMUP_SECONDS", 0.05)
    monkeypatch.setattr(common, "_warmed_up", set())
    calls = []

    def sleeps():
        calls.append(None)
        time.sleep(0.001)

    counts = []
    for _ in range(2):
        calls.clear()
        common.time_alternating([common.Impl("a", "lib_a", sleeps)],
                                repeats=1, run_seconds=0.0, warmup=1)
        counts.append(len(calls))
    # 0.05 s of 1 ms calls the first time; a handful of calls the second.
    assert counts[0] >= 40
    assert counts[1] < 20


def test_time_alternating_rejects_duplicates():
    with pytest.raises(ValueError, match="duplicate"):
        common.time_alternating([common.Impl("a", "x", int),
                                 common.Impl("a", "y", int)])


def test_format_table_aligns_and_marks_missing():
    rows = [{"batch_size": 1, "samples_per_s": 1234.5, "x": None},
            {"batch_size": 2048, "samples_per_s": 0.5}]
    text = common.format_table("T", rows, [("batch_size", "batch"),
                                           ("samples_per_s", "samples/s"),
                                           ("x", "x")])
    lines = text.splitlines()
    assert lines[0] == "T"
    assert "1,234" in text and "0.5" in text and "-" in lines[4]
    assert len({len(line) for line in lines[2:]}) == 1


def test_parse_int_list():
    assert common.parse_int_list("1..16") == [1, 2, 4, 8, 16]
    assert common.parse_int_list("3, 5,7") == [3, 5, 7]
    with pytest.raises(ValueError):
        common.parse_int_list("0,1")


def test_add_speedups_per_framework():
    rows = [{"suite": "s", "framework": f, "threads": 1, "dtype": "float32",
             "batch_size": b, "samples_per_s": s}
            for f, b, s in [("a", 1, 10.0), ("a", 4, 40.0), ("b", 4, 8.0),
                            ("b", 1, 2.0)]]
    common.add_speedups(rows)
    assert [r["speedup_vs_b1"] for r in rows] == [1.0, 4.0, 4.0, 1.0]


def test_numpy_peer_matches_finite_differences():
    params = peers.init_params((6, 5, 3), np.float64, seed=1)
    rng = np.random.default_rng(0)
    x = rng.random((4, 6))
    labels = np.array([0, 2, 1, 2])

    def loss_of(w1):
        model = peers.NumpyMLP([(w1, params[0][1]), params[1]], lr=0.0,
                               momentum=0.0, weight_decay=0.0)
        return model.step(x, labels)

    model = peers.NumpyMLP(params, lr=1.0, momentum=0.0, weight_decay=0.0)
    model.step(x, labels)
    grad = params[0][0] - model.w1  # lr 1, no momentum: p - g
    eps = 1e-6
    bump = np.zeros_like(params[0][0])
    bump[2, 3] = eps
    numeric = (loss_of(params[0][0] + bump) - loss_of(params[0][0] - bump))
    assert numeric / (2 * eps) == pytest.approx(grad[2, 3], rel=1e-5)


def test_run_writes_files_and_table(tmp_path, capsys):
    from bench import run
    out = tmp_path / "out"
    code = run.main(["--suite", "mlp", "--batch-sizes", "1,4", "--quick",
                     "--compare", "numpy", "--threads", "1",
                     "--out-dir", str(out), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "MLP 784-100-10 training step, numpy" in text
    assert "samples/s" in text
    document = json.loads((out / "results.json").read_text())
    rows = document["rows"]
    assert {r["batch_size"] for r in rows} == {1, 4}
    for row in rows:
        for key in ("suite", "framework", "batch_size", "dtype", "threads",
                    "samples_per_s"):
            assert key in row
        assert row["samples_per_s"] > 0
    assert (out / "throughput.png").stat().st_size > 1000


def test_unknown_suite_is_skipped_with_a_message(tmp_path, capsys):
    from bench import run
    code = run.main(["--suite", "nosuch", "--out-dir", str(tmp_path),
                     "--no-progress"])
    assert code == 0
    assert "'nosuch'" in capsys.readouterr().out


# -- gradient noise scale -----------------------------------------------------

def test_unbiased_estimates_invert_the_noise_model():
    from bench.suites.noise import unbiased_estimates
    gradient_sq, trace_sigma = 2.0, 300.0
    expected = {b: gradient_sq + trace_sigma / b for b in (8, 512)}
    g2, trace = unbiased_estimates(expected[8], expected[512], 8, 512)
    assert g2 == pytest.approx(gradient_sq)
    assert trace == pytest.approx(trace_sigma)
    with pytest.raises(ValueError):
        unbiased_estimates(1.0, 1.0, 64, 32)


def test_estimator_recovers_b_simple_of_a_synthetic_problem():
    """Per-sample gradients G + e with e ~ N(0, s^2 I) in d dimensions:
    tr(Sigma) = d s^2, so B_simple = d s^2 / |G|^2 = 50 here. The mean of B
    of them is G + N(0, s^2 / B I), which is what we draw."""
    from bench.suites.noise import GradientNoiseEstimator
    rng = np.random.default_rng(0)
    dim, sigma2 = 400, 0.125
    true_gradient = rng.standard_normal(dim)
    true_gradient /= np.linalg.norm(true_gradient)  # |G|^2 = 1
    b_small, b_big = 16, 256
    estimator = GradientNoiseEstimator(b_small, b_big, decay=0.99)
    for _ in range(3000):
        small = true_gradient + rng.normal(0, np.sqrt(sigma2 / b_small), dim)
        big = true_gradient + rng.normal(0, np.sqrt(sigma2 / b_big), dim)
        estimator.update(small @ small, big @ big)
    assert estimator.b_simple == pytest.approx(dim * sigma2, rel=0.1)
    assert estimator.gradient_sq == pytest.approx(1.0, rel=0.1)
    assert estimator.trace_sigma == pytest.approx(dim * sigma2, rel=0.1)


def test_estimator_validates_its_arguments():
    from bench.suites.noise import GradientNoiseEstimator
    with pytest.raises(ValueError, match="b_small < b_big"):
        GradientNoiseEstimator(64, 64)
    with pytest.raises(ValueError, match="decay"):
        GradientNoiseEstimator(8, 64, decay=1.0)
    assert GradientNoiseEstimator(8, 64).b_simple is None


# -- tta and noise suites on a tiny synthetic stand-in for mnist10k -----------

def tiny_config(tmp_path, **overrides):
    from bench import run
    args = run.build_parser().parse_args(
        ["--quick", "--out-dir", str(tmp_path), "--threads", "1",
         "--base-batch-size", "16", "--base-lr", "0.1"])
    cfg = run.make_config(args, progress=lambda message: None)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    data = common.synthetic_dataset(n_train=640, n_test=200, seed=3)
    data.name, data.real = "mnist10k", True  # stands in for the real split
    cfg._datasets = {"mnist10k": data}
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def test_tta_reports_steps_and_the_time_optimal_batch(tmp_path, capsys):
    from bench.suites import tta
    cfg = tiny_config(tmp_path, batch_sizes=[8, 32, 64],
                      target_accuracy=0.3, lr_rules=["linear", "sqrt"])
    rows = tta.run(cfg)
    text = capsys.readouterr().out
    assert "time-optimal batch size (linear)" in text
    assert "LR rules side by side" in text
    assert len(rows) == 6
    for row in rows:
        assert row["reached"], row
        assert row["steps_to_target"] >= 1
        assert row["epochs_to_target"] == pytest.approx(
            row["steps_to_target"] * row["batch_size"] / 640)
        assert row["time_optimal_batch_size"] in (8, 32, 64)
    linear = {r["batch_size"]: r["lr"] for r in rows if r["rule"] == "linear"}
    assert linear[64] == pytest.approx(0.4)
    assert linear[8] == pytest.approx(0.05)
    assert (tmp_path / "tta.png").stat().st_size > 1000


def test_fit_critical_batch_recovers_the_model():
    from bench.suites.tta import fit_critical_batch
    sizes = [4, 16, 64, 256, 1024]
    steps = [100 * (1 + 128 / b) for b in sizes]
    fit = fit_critical_batch(sizes, steps)
    assert fit["b_crit"] == pytest.approx(128)
    assert fit["s_min"] == pytest.approx(100)
    assert fit_critical_batch([4, 8], [10, 5]) is None


def test_noise_suite_prints_prediction_next_to_tta(tmp_path, capsys):
    from bench.suites import noise
    cfg = tiny_config(tmp_path)
    cfg.results = {"tta": [{"rule": "linear", "target_accuracy": 0.9,
                            "time_optimal_batch_size": 64,
                            "fitted_b_crit": 100.0}]}
    rows = noise.run(cfg)
    text = capsys.readouterr().out
    assert rows and all("b_simple" in row for row in rows)
    assert rows[-1]["measurements"] >= 1
    assert "predicted critical batch size" in text
    assert "time-optimal batch size 64" in text
    assert (tmp_path / "noise.png").exists()


def test_runs_without_pytorch(tmp_path, capsys, monkeypatch):
    from bench import run
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails
    code = run.main(["--suite", "mlp", "--batch-sizes", "2", "--quick",
                     "--compare", "torch", "--threads", "1",
                     "--out-dir", str(tmp_path), "--no-progress"])
    assert code == 0
    assert "PyTorch is not installed" in capsys.readouterr().out
