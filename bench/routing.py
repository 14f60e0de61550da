"""Incheon complaints: how well the learned department model routes a citizen's text.

The data: 1,227 complaints to Incheon's Jung-gu office, 2012-2020, each with the division that
answered it. The citizen's text is the title and the content (never `answer_y`, the official reply,
which names the division). Divisions with at least 10 complaints are kept; a fixed random 70/30 split,
stratified by division, gives the training and the test complaints.

    .venv/bin/python bench/routing.py [--data PATH] [--seed 0] [--target-precision 0.9] [--splits N]
        [--replay-days 60] [--json FILE]

Printed for the model (knowledge/routing.py) at its own threshold, which it chose on the training
complaints, validated forward in time (the default; the shuffled folds' threshold is printed below
it): coverage (the share of test complaints it routes automatically) and
precision (the share of those routed to the right division), then top-1 and top-3 accuracy over all
test complaints. Twice: from the text alone, as the router uses it, and date-aware (each complaint is
predicted at its date; the model weighs divisions by how active they were around then). And a
TF-IDF and logistic-regression baseline: precision of its 30 % and 40 % most confident predictions,
and top-3. Training time and prediction latency are measured too.

A random split tests the model on complaints from the same weeks as those it learned from. The
replay (`--replay-days`, 60 by default) tests it as a city would use it: in time order, learning
again every 60 days from all earlier complaints and routing the next 60 days' complaints.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.routing import DepartmentModel  # noqa: E402
from knowledge.text import normalize, shared_analyzer  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "incheon-complaints" / "minwon_df.csv"
MIN_COMPLAINTS = 10
TEST_SHARE = 0.3


def load(path: Path) -> tuple[list[str], list[str], list[datetime]]:
    """(texts, divisions, dates) of the divisions with at least MIN_COMPLAINTS complaints."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    counts = Counter(row["depart"] for row in rows)
    kept = [row for row in rows if counts[row["depart"]] >= MIN_COMPLAINTS]
    texts = [f"{row['title']}\n{row['content']}" for row in kept]
    divisions = [row["depart"] for row in kept]
    dates = [datetime.strptime(row["date"], "%Y.%m.%d").replace(tzinfo=UTC) for row in kept]
    return texts, divisions, dates


def scores(
    ranked: list[list[tuple[str, float]]], truth: list[str], threshold: float, target: float = 0.9
) -> dict[str, Any]:
    routed = [r[0][1] >= threshold for r in ranked]
    right = [r[0][0] == t for r, t in zip(ranked, truth, strict=True)]
    in_top3 = [t in {d for d, _ in r[:3]} for r, t in zip(ranked, truth, strict=True)]
    n_routed = sum(routed)
    n_right = sum(a and b for a, b in zip(routed, right, strict=True))
    return {
        "threshold": round(threshold, 4),
        "routed": n_routed,
        "coverage": round(n_routed / len(truth), 4),
        "precision": round(n_right / n_routed, 4) if n_routed else 0.0,
        "top1": round(sum(right) / len(truth), 4),
        "top3": round(sum(in_top3) / len(truth), 4),
        "precision_at_30": round(_precision_at(ranked, truth, 0.3), 4),
        "precision_at_40": round(_precision_at(ranked, truth, 0.4), 4),
        "best_coverage_at_target": round(_best_coverage(ranked, truth, target), 4),
    }


def _best_coverage(ranked: list[list[tuple[str, float]]], truth: list[str], target: float) -> float:
    """The largest share of the most confident predictions that is still right `target` of the time:
    what the best threshold could route, were it chosen on the test complaints themselves. No
    threshold chosen beforehand routes more at that precision, so this bounds the confidence ranking."""
    order = sorted(range(len(truth)), key=lambda i: -ranked[i][0][1])
    right = best = 0
    for rank, index in enumerate(order, start=1):
        right += ranked[index][0][0] == truth[index]
        if right >= target * rank:
            best = rank
    return best / len(truth)


def _precision_at(ranked: list[list[tuple[str, float]]], truth: list[str], share: float) -> float:
    """Precision of the `share` most confident predictions."""
    order = sorted(range(len(truth)), key=lambda i: -ranked[i][0][1])[: max(1, round(share * len(truth)))]
    return sum(ranked[i][0][0] == truth[i] for i in order) / len(order)


def run_model(
    train: list[int],
    test: list[int],
    texts: list[str],
    divisions: list[str],
    dates: list[datetime],
    *,
    target: float,
    seed: int,
    time_scale_days: float | None,
) -> dict[str, Any]:
    model = DepartmentModel(target_precision=target, time_scale_days=time_scale_days, seed=seed)
    started = time.perf_counter()
    model.fit([texts[i] for i in train], [divisions[i] for i in train], times=[dates[i] for i in train])
    fit_seconds = time.perf_counter() - started
    latencies = []
    ranked = []
    for i in test:
        started = time.perf_counter()
        ranked.append(model.predict(texts[i], at=dates[i] if time_scale_days else None))
        latencies.append(time.perf_counter() - started)
    truth = [divisions[i] for i in test]
    result = scores(ranked, truth, model.threshold, target)
    latencies.sort()
    assert model.estimate is not None and model.shuffled_estimate is not None
    shuffled = scores(ranked, truth, model.shuffled_threshold, target)
    result.update(
        {
            "validated_by": model.validated_by,
            "shuffled_threshold": {
                key: shuffled[key] for key in ("threshold", "routed", "coverage", "precision")
            },
            "shuffled_cross_validation": model.shuffled_estimate.as_dict(),
            "fit_seconds": round(fit_seconds, 2),
            "predict_ms_p50": round(1000 * statistics.median(latencies), 2),
            "predict_ms_p99": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2),
            "cross_validation": model.estimate.as_dict(),
        }
    )
    return result


def run_baseline(
    train: list[int],
    test: list[int],
    texts: list[str],
    divisions: list[str],
    *,
    morphemes: bool,
    seed: int,
    target: float,
) -> dict[str, Any]:
    """TF-IDF and logistic regression: scikit-learn's defaults on the raw text's words, or Kiwi's
    morphemes with a weaker regularisation (C=10)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    analyzer = shared_analyzer()
    if morphemes:
        inputs = [" ".join(analyzer.words(normalize(text))) for text in texts]
        pipeline = make_pipeline(
            TfidfVectorizer(token_pattern=r"\S+"), LogisticRegression(C=10, max_iter=3000, random_state=seed)
        )
    else:
        inputs = texts
        pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=3000, random_state=seed))
    started = time.perf_counter()
    pipeline.fit([inputs[i] for i in train], [divisions[i] for i in train])
    fit_seconds = time.perf_counter() - started
    probabilities = pipeline.predict_proba([inputs[i] for i in test])
    classes = [str(c) for c in pipeline.classes_]
    ranked = [sorted(zip(classes, row.tolist(), strict=True), key=lambda p: -p[1]) for row in probabilities]
    result = scores(ranked, [divisions[i] for i in test], threshold=float("inf"), target=target)
    for key in ("threshold", "routed", "coverage", "precision"):
        result.pop(key)
    result["fit_seconds"] = round(fit_seconds, 2)
    return result


def replay(
    texts: list[str], divisions: list[str], dates: list[datetime], *, days: int, target: float
) -> dict[str, Any]:
    """As if the router had run in Jung-gu from 2014: every `days` it learns from all complaints
    before that day and routes those of the next `days`, each at its date, at the threshold of
    either validation (the same fit). Old division names stay as they were: a renamed division's
    complaints are wrong under its new name until the model has seen some."""
    start = datetime(2014, 1, 1, tzinfo=UTC)
    end = max(dates)
    found: dict[str, Any] = {"days": days, "from": start.date().isoformat()}
    for name, scale in (("text", None), ("dated", 120.0)):
        rows: list[tuple[list[tuple[str, float]], str, dict[str, float]]] = []
        cut = start
        while cut <= end:
            later = cut + timedelta(days=days)
            train = [i for i, at in enumerate(dates) if at < cut]
            test = [i for i, at in enumerate(dates) if cut <= at < later]
            if test:
                model = DepartmentModel(target_precision=target, time_scale_days=scale)
                model.fit(
                    [texts[i] for i in train], [divisions[i] for i in train], times=[dates[i] for i in train]
                )
                for i in test:
                    ranked = model.predict(texts[i], at=dates[i] if scale else None)
                    thresholds = {"forward": model.threshold, "shuffled": model.shuffled_threshold}
                    rows.append((ranked, divisions[i], thresholds))
            cut = later
        result: dict[str, Any] = {"tickets": len(rows)}
        for label in ("forward", "shuffled"):
            routed = [row for row in rows if row[0][0][1] >= row[2][label]]
            right = sum(row[0][0][0] == row[1] for row in routed)
            result[label] = {
                "routed": len(routed),
                "coverage": round(len(routed) / len(rows), 4),
                "precision": round(right / len(routed), 4) if routed else 0.0,
            }
        # Each window has its own threshold (above); these figures need none.
        overall = scores([row[0] for row in rows], [row[1] for row in rows], math.inf, target)
        result.update({key: overall[key] for key in ("top1", "top3", "best_coverage_at_target")})
        found[name] = result
    return found


def split(divisions: list[str], seed: int) -> tuple[list[int], list[int]]:
    from sklearn.model_selection import train_test_split

    indices = list(range(len(divisions)))
    train, test = train_test_split(indices, test_size=TEST_SHARE, random_state=seed, stratify=divisions)
    return sorted(train), sorted(test)


def spread(
    texts: list[str], divisions: list[str], dates: list[datetime], args: argparse.Namespace
) -> dict[str, Any]:
    """The model on other random splits: how much the figures of one split owe to luck."""
    found: dict[str, Any] = {}
    seeds = list(range(1, args.splits + 1))
    for name, scale in (("text", None), ("dated", args.time_scale_days)):
        runs = []
        for seed in seeds:
            train, test = split(divisions, seed)
            runs.append(
                run_model(
                    train,
                    test,
                    texts,
                    divisions,
                    dates,
                    target=args.target_precision,
                    seed=seed,
                    time_scale_days=scale,
                )
            )
        met = sum(r["precision"] >= 0.9 and r["coverage"] >= 0.4 and r["top3"] >= 0.75 for r in runs)
        met_shuffled = sum(
            r["shuffled_threshold"]["precision"] >= 0.9
            and r["shuffled_threshold"]["coverage"] >= 0.4
            and r["top3"] >= 0.75
            for r in runs
        )
        found[name] = {
            "seeds": seeds,
            **{
                key: [r[key] for r in runs]
                for key in ("coverage", "precision", "top1", "top3", "best_coverage_at_target", "fit_seconds")
            },
            "targets_met": met,
            "shuffled_coverage": [r["shuffled_threshold"]["coverage"] for r in runs],
            "shuffled_precision": [r["shuffled_threshold"]["precision"] for r in runs],
            "targets_met_shuffled": met_shuffled,
        }
        summary = ", ".join(
            f"{key} mean {statistics.mean(found[name][key]):.3f} (min {min(found[name][key]):.3f})"
            for key in ("coverage", "top3", "best_coverage_at_target")
        )
        # A split that routes nothing has no precision: it is left out of the mean, and counted.
        precisions = [r["precision"] for r in runs if r["routed"]]
        precision_mean = f"{statistics.mean(precisions):.3f}" if precisions else "-"
        print(
            f"{name}, splits with seeds {seeds[0]}..{seeds[-1]}: {summary}; precision mean "
            f"{precision_mean} (routes nothing on {len(runs) - len(precisions)}); all targets met on {met}"
        )
        coverage = statistics.mean(found[name]["shuffled_coverage"])
        precision = statistics.mean(found[name]["shuffled_precision"])
        print(
            f"  at the shuffled folds' threshold: coverage mean {coverage:.3f}, "
            f"precision mean {precision:.3f}; all targets met on {met_shuffled}"
        )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0, help="the split's and the model's seed")
    parser.add_argument("--target-precision", type=float, default=0.9)
    parser.add_argument("--time-scale-days", type=float, default=120.0, help="for the date-aware run")
    parser.add_argument(
        "--splits",
        type=int,
        default=0,
        help="also run this many other random splits (seeds 1..N): the spread",
    )
    parser.add_argument(
        "--replay-days",
        type=int,
        default=60,
        help="replay 2014-2020 in time order, learning again every this many days (0: skip; takes minutes)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    texts, divisions, dates = load(args.data)
    train, test = split(divisions, args.seed)
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
        f"{len(texts)} complaints in {len(set(divisions))} divisions (>= {MIN_COMPLAINTS} each); "
        f"train {len(train)}, test {len(test)}, seed {args.seed}"
    )
    analyzer = shared_analyzer()
    started = time.perf_counter()
    for text in texts:  # Kiwi's analyses are cached: the model runs below time the learning itself
        analyzer.words(normalize(text))
    analysis_seconds = time.perf_counter() - started

    results: dict[str, Any] = {
        "complaints": len(texts),
        "divisions": len(set(divisions)),
        "train": len(train),
        "test": len(test),
        "seed": args.seed,
        "target_precision": args.target_precision,
        "analysis_seconds": round(analysis_seconds, 2),
    }
    results["text"] = run_model(
        train,
        test,
        texts,
        divisions,
        dates,
        target=args.target_precision,
        seed=args.seed,
        time_scale_days=None,
    )
    results["dated"] = run_model(
        train,
        test,
        texts,
        divisions,
        dates,
        target=args.target_precision,
        seed=args.seed,
        time_scale_days=args.time_scale_days,
    )
    results["baseline"] = run_baseline(
        train, test, texts, divisions, morphemes=False, seed=args.seed, target=args.target_precision
    )
    results["baseline_morphemes"] = run_baseline(
        train, test, texts, divisions, morphemes=True, seed=args.seed, target=args.target_precision
    )

    print(f"Kiwi analysis of all {len(texts)} texts (once, cached): {analysis_seconds:.1f} s")
    header = f"{'':<28}{'threshold':>10}{'coverage':>10}{'precision':>10}{'top1':>8}{'top3':>8}"
    print(header + f"{'p@30%':>8}{'p@40%':>8}{'best':>8}{'fit s':>8}")
    for name, label in (("text", "model, text only"), ("dated", "model, date-aware")):
        r = results[name]
        print(
            f"{label:<28}{r['threshold']:>10.3f}{r['coverage']:>10.3f}{r['precision']:>10.3f}"
            f"{r['top1']:>8.3f}{r['top3']:>8.3f}{r['precision_at_30']:>8.3f}{r['precision_at_40']:>8.3f}"
            f"{r['best_coverage_at_target']:>8.3f}{r['fit_seconds']:>8.2f}"
        )
        other = r["shuffled_threshold"]
        by = "  threshold by " + ("shuffled folds" if r["validated_by"] == "forward" else "(the same)")
        print(f"{by:<28}{other['threshold']:>10.3f}{other['coverage']:>10.3f}{other['precision']:>10.3f}")
    for name, label in (
        ("baseline", "TF-IDF + LogReg, defaults"),
        ("baseline_morphemes", "TF-IDF Kiwi + LogReg C=10"),
    ):
        b = results[name]
        print(
            f"{label:<28}{'-':>10}{'-':>10}{'-':>10}{b['top1']:>8.3f}{b['top3']:>8.3f}"
            f"{b['precision_at_30']:>8.3f}{b['precision_at_40']:>8.3f}{b['best_coverage_at_target']:>8.3f}"
            f"{b['fit_seconds']:>8.2f}"
        )
    for name in ("text", "dated"):
        r = results[name]
        cv = r["cross_validation"]
        print(
            f"{name}: prediction p50 {r['predict_ms_p50']} ms, p99 {r['predict_ms_p99']} ms; "
            f"validated ({r['validated_by']}) on the training set: coverage {cv['coverage']:.3f}, "
            f"precision {cv['precision']:.3f}"
        )
    if args.splits:
        results["splits"] = spread(texts, divisions, dates, args)
    if args.replay_days:
        results["replay"] = found = replay(
            texts, divisions, dates, days=args.replay_days, target=args.target_precision
        )
        print(f"replay from {found['from']}, learning again every {found['days']} days:")
        for name in ("text", "dated"):
            r = found[name]
            print(
                f"  {name}: {r['tickets']} complaints; threshold validated forward: routed "
                f"{r['forward']['coverage']:.3f}, precision {r['forward']['precision']:.3f}; by shuffled "
                f"folds: routed {r['shuffled']['coverage']:.3f}, precision {r['shuffled']['precision']:.3f}; "
                f"top-3 {r['top3']:.3f}, best {r['best_coverage_at_target']:.3f}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
