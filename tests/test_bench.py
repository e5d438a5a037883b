"""Correctness of the benchmark code on tiny settings (never its speed)."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import common, peers  # noqa: E402


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr(common, "PAUSE_BETWEEN_LIBRARIES", 0.0)


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
