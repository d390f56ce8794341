"""The benchmark harness and reports, against hand-made searches."""

import json
from pathlib import Path

import numpy as np

from placeprint.evaluate.harness import evaluate, run_windows
from placeprint.evaluate.report import portable_argument, print_table, run_metadata, write_json
from placeprint.sequence.result import SequenceResult


def oracle(truth, offset=0):
    """A search that answers the true position of the last frame, plus ``offset``."""

    def search(X):
        q = int(X[-1, 0])
        return SequenceResult(np.array([truth[q] + offset, 7]), np.array([0.1, 0.2]), 2.0, len(X))

    return search


def test_run_windows_counts_and_recall():
    queries = np.arange(100, dtype=np.float32)[:, None]  # row i carries its own index
    truth = np.arange(100) + 1000
    res = run_windows(oracle(truth), queries, truth, length=10, stride=5, warmup=0)
    np.testing.assert_array_equal(res.ends, np.arange(9, 100, 5))
    assert res.correct1.all() and (res.ops == 10).all()
    off = run_windows(oracle(truth, offset=3), queries, truth, 10, 5, warmup=0)
    assert not off.correct1.any()  # 3 frames off is wrong (tolerance 2)
    subsets = {"all": np.ones(100, bool), "late": np.arange(100) >= 50}
    s = res.summary(truth, subsets)
    # a window belongs to "late" only when it lies wholly in frames >= 50: ends 59, 64, .. 99
    assert s["r1_all"] == 1.0 and s["n_late"] == len(np.arange(59, 100, 5)) == 9
    assert s["ops_mean"] == 10 and s["latency_ms_p50"] >= 0


def test_evaluate_runs_every_method_on_the_same_windows():
    queries = np.arange(60, dtype=np.float32)[:, None]
    truth = np.arange(60)
    out = evaluate(
        {"good": (oracle(truth), queries), "bad": (oracle(truth, 9), queries)},
        truth,
        (1, 20),
        {"all": np.ones(60, bool)},
        stride=3,
        quiet=True,
    )
    assert [r["r1_all"] for r in out["good"]] == [1.0, 1.0]
    assert [r["r1_all"] for r in out["bad"]] == [0.0, 0.0]
    assert out["good"][1]["queries"] == len(range(19, 60, 3))


def test_reports(tmp_path, capsys):
    meta = run_metadata("prog", ["--x", "1"])
    assert meta["command"] == "prog --x 1" and meta["cpu_count"] >= 1
    # recorded commands hold no machine-specific paths
    inside, outside = Path.cwd() / "out" / "r.json", tmp_path / "r.json"
    meta = run_metadata("prog", ["--json", str(inside), f"--plots={outside}", str(outside)])
    assert meta["command"] == ("prog --json out/r.json --plots=<outside>/r.json <outside>/r.json")
    assert portable_argument("-x") == "-x" and portable_argument("a/b") == "a/b"
    path = write_json(
        tmp_path / "r.json", {"a": np.float32(0.5), "b": float("inf"), "c": np.arange(3)}
    )
    assert json.loads(path.read_text()) == {"a": 0.5, "b": None, "c": [0, 1, 2]}
    print_table("t", ["x", "y"], [[1, 0.25]])
    assert "0.250" in capsys.readouterr().out


def test_confidence_summary_hand_computed():
    from placeprint.evaluate.harness import confidence_summary

    conf = np.array([5.0, 3.0, np.inf, 1.0, 2.5, 1.2])
    correct = np.array([True, True, True, False, False, True])
    s = confidence_summary(conf, correct)
    # most confident first: inf(T), 5(T), 3(T), 2.5(F) -> 3 of 6 before the first mistake
    assert s["recall_at_full_precision"] == 0.5
    assert s["answered_at_conf2"] == 4 / 6 and s["precision_at_conf2"] == 3 / 4
