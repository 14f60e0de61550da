"""Fit the default confidence models on FAQs of different shapes and write knowledge/confidence.json.

A city's FAQ is small and unseen: two to five ways of asking each question, no labelled texts. The
shipped models must keep automatic answers right 95 % of the time on such a FAQ, so they are fitted
here on many FAQs ("episodes"), each with texts the FAQ answers and texts it does not:

- CLINC150's training split (English): random subsets of 60-150 intents with 2-8 utterances each as
  the questions; other utterances of those intents as texts to answer; utterances of the intents left
  out (near misses) and the out-of-scope training and validation texts as texts not to answer. The
  test split is never read: bench/small_faq.py measures on it.
- The shipped FAQ (six languages) with `calibration-queries.jsonl`, a few entries left out each time
  so that their texts become near misses.
- Seoul 120 (Korean): 400 published questions, 30 % of them left out, asked the way citizens vary
  them (spacing dropped, cut short, a letter missing, a polite ending).

Both models are fitted on all episodes, each group (CLINC, shipped, Seoul) weighing the same, with
out-of-scope texts weighted to `--out-of-scope-rate`. The answer threshold is the highest of the
groups' lowest thresholds that reach `--target-precision`, so every shape keeps the promise; the
review threshold the lowest at which the suggestions below it are right `--review-precision` of the
time in every group.

    .venv/bin/python bench/fit_confidence.py [--datasets ../shared/datasets] [--dry-run]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge import FaqEntry, KnowledgeBase, Matcher, SourceRef, load_knowledge  # noqa: E402
from knowledge.calibration import (  # noqa: E402
    DEFAULT_MODEL,
    FEATURES,
    Confidence,
    Labelled,
    Outcome,
    choose_thresholds,
    fit_models,
    measure,
    outcomes,
    review_threshold,
    traffic_weights,
)
from knowledge.decision import NO_SENSITIVE_RULE  # noqa: E402
from knowledge.evaluate import labelled_text  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
SHIPPED = ROOT / "knowledge" / "faq"
SOURCE = SourceRef("episode.yaml", 1)
ENDINGS = (" 어떻게 하나요", " 알려주세요", "좀 알려주세요ㅠㅠ", " 문의드립니다", "?", " 궁금해요")
Episode = list[Labelled]
# The candidates' signals do not depend on the models: the matchers here need none fitted.
UNFITTED = Confidence((0.0,) * len(FEATURES), 0.0, (1.0, 0.0), 0.0, 1.0, 0.0)


def entry(entry_id: str, language: str, questions: Sequence[str], answer: str) -> FaqEntry:
    return FaqEntry(
        id=entry_id, questions={language: list(questions)}, answer={language: answer}, source=SOURCE
    )


def label(matcher: Matcher, texts: Sequence[tuple[str, str | None]], language: str) -> Episode:
    return [labelled_text(matcher, text, expect, language, NO_SENSITIVE_RULE) for text, expect in texts]


def clinc_episodes(path: Path, shapes: Sequence[tuple[int, int, int]]) -> list[Episode]:
    """(seed, variants per intent, intents) each; at most 1,500 texts to answer an episode."""
    data = json.loads(path.read_text(encoding="utf-8"))
    by_intent: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        by_intent.setdefault(intent, []).append(text)
    unrelated = [text for text, _ in data["oos_train"] + data["oos_val"]]
    episodes = []
    for seed, variants, size in shapes:
        rng = random.Random(seed)
        intents = sorted(by_intent)
        rng.shuffle(intents)
        inside, outside = sorted(intents[:size]), intents[size:]
        shuffled = {i: rng.sample(by_intent[i], len(by_intent[i])) for i in intents}
        # The same answer for every intent: an answer naming the intent would give the label away.
        base = KnowledgeBase(
            entries=tuple(
                entry(i.replace("_", "-"), "en", shuffled[i][:variants], "An answer.") for i in inside
            )
        )
        asked = [(t, i.replace("_", "-")) for i in inside for t in shuffled[i][variants : variants + 6]]
        others = [(t, None) for i in outside for t in shuffled[i][:3]] + [(t, None) for t in unrelated]
        rng.shuffle(asked)
        rng.shuffle(others)
        asked = asked[:1500]
        episodes.append(label(Matcher(base, confidence=UNFITTED), asked + others[: len(asked) // 2], "en"))
    return episodes


def shipped_episodes(seeds: Sequence[int], left_out: int = 8) -> list[Episode]:
    full = load_knowledge(SHIPPED)
    lines = [json.loads(line) for line in (SHIPPED / "calibration-queries.jsonl").read_text().splitlines()]
    episodes = []
    for seed in seeds:
        dropped = set(random.Random(seed).sample([e.id for e in full.entries], left_out))
        base = KnowledgeBase(entries=tuple(e for e in full.entries if e.id not in dropped))
        texts = [(line["text"], None if line["expect"] in dropped else line["expect"]) for line in lines]
        episodes.append(label(Matcher(base, confidence=UNFITTED), texts, "ko"))
    return episodes


def seoul_episodes(path: Path, seeds: Sequence[int], size: int = 400) -> list[Episode]:
    with path.open(encoding="utf-8-sig") as file:
        rows = [row for row in csv.DictReader(file) if row["제목"].strip() and row["내용"].strip()]
    episodes = []
    for seed in seeds:
        rng = random.Random(seed)
        chosen = rng.sample(rows, size)
        kept = int(size * 0.7)
        base = KnowledgeBase(
            entries=tuple(entry(f"s{n}", "ko", [r["제목"]], r["내용"]) for n, r in enumerate(chosen[:kept]))
        )
        texts = [(_varied(rng, r["제목"]), f"s{n}" if n < kept else None) for n, r in enumerate(chosen)]
        episodes.append(label(Matcher(base, confidence=UNFITTED), texts, "ko"))
    return episodes


def _varied(rng: random.Random, question: str) -> str:
    words = question.split()
    change = rng.randrange(4)
    if change == 0:
        text = "".join(words)
    elif change == 1 and len(words) > 2:
        text = " ".join(words[: rng.randrange(2, len(words))])
    elif change == 2 and len(question) > 4:
        at = rng.randrange(1, len(question) - 1)
        text = question[:at] + question[at + 1 :]
    else:
        text = question
    return text + rng.choice(ENDINGS)


def weighted(groups: dict[str, list[Episode]], rate: float) -> tuple[list[Labelled], list[float]]:
    """All texts, each group weighing the same in total and each episode the same within its group."""
    texts: list[Labelled] = []
    weights: list[float] = []
    for episodes in groups.values():
        for episode in episodes:
            episode_weights, _ = traffic_weights(episode, rate)
            scale = 1.0 / (len(episodes) * len(episode))
            texts += episode
            weights += [w * scale for w in episode_weights]
    # On average 1 a text: the models' L2 penalty is set against the weights' sum.
    mean = sum(weights) / len(weights)
    return texts, [w / mean for w in weights]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--target-precision", type=float, default=0.96)
    parser.add_argument("--review-precision", type=float, default=1 / 3)
    parser.add_argument("--out-of-scope-rate", type=float, default=0.35)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--dry-run", action="store_true", help="report, do not write the file")
    args = parser.parse_args()
    started = time.perf_counter()
    # (seed, questions per intent, intents): large and small FAQs, thin and thick entries.
    shapes = [
        (1, 3, 150),
        (2, 5, 100),
        (3, 3, 60),
        (4, 4, 120),
        (5, 2, 80),
        (6, 8, 150),
        (7, 3, 100),
        (8, 3, 10),
        (9, 3, 20),
        (10, 2, 30),
        (11, 5, 12),
        (12, 4, 40),
    ]
    groups = {
        "clinc": clinc_episodes(args.datasets / "clinc150" / "data_full.json", shapes),
        "shipped": shipped_episodes((1, 2, 3, 4)) + shipped_episodes((5, 6), left_out=45),
        "seoul": seoul_episodes(args.datasets / "seoul120" / "seoul-120-text.csv", (1, 2)),
    }
    texts, weights = weighted(groups, args.out_of_scope_rate)
    model = fit_models(texts, weights)
    answer = review = 0.0
    per_group: dict[str, list[Outcome]] = {}
    for name, episodes in groups.items():
        found: list[Outcome] = []
        for episode in episodes:
            found += outcomes(model, episode, traffic_weights(episode, args.out_of_scope_rate)[0])
        per_group[name] = found
        chosen = choose_thresholds(found, args.target_precision, args.review_precision)
        reached = f"{chosen.answer:.3f} (coverage {chosen.coverage:.3f})"
        print(f"{name}: {args.target_precision} reached from {reached}")
        answer = max(answer, chosen.answer)
    for found in per_group.values():
        below = [o for o in found if o.answerable and o.probability < answer]
        review = max(review, review_threshold(below, args.review_precision, above=answer))
    report = {}
    for name, found in per_group.items():
        precision, coverage, out_answered, review_share = measure(found, answer, review)
        report[name] = {
            "texts": len(found),
            "precision": precision,
            "coverage": coverage,
            "out_of_scope_answered": out_answered,
            "review_share": review_share,
        }
    confidence = model.with_thresholds(round(answer, 6), round(review, 6), None)
    print(json.dumps({"answer_threshold": answer, "review_threshold": review, "groups": report}, indent=2))
    print(f"fitted in {time.perf_counter() - started:.1f} s")
    if not args.dry_run:
        args.out.write_text(confidence.to_json(), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
