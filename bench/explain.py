"""Recognition rate and time per message of `checks.explain` (issue 15: "Paste the error, get the diagnosis").

    python bench/explain.py [--repeat 20] [--hostile 200]

Prints, over tests/corpus/errors.yaml: per kind, how many real error strings are recognised exactly (kind,
command, cluster, arguments and principal as the corpus expects) and by kind; the negatives left alone;
then the time per message over the corpus (mean, p50, p99, max) and over hostile inputs of the cap size
(the classic worst cases of backtracking regular expressions, and random near-misses), so a regression
to super-linear matching shows as a number here rather than a flaky timed test.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from checks.explain import KINDS, MAX_INPUT, recognize, recognize_all  # noqa: E402
from checks.resolve import ClusterSpec  # noqa: E402
from tests.hostile_inputs import WORST, fragment_text  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus" / "errors.yaml"


def spec(text: str | None) -> ClusterSpec | None:
    if not text:
        return None
    parts = text.split("/")
    return ClusterSpec(parts[-1], parts[-2] if len(parts) > 1 else "", parts[0] if len(parts) == 3 else "")


def timed(text: str, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        recognize_all(text)
        out.append(time.perf_counter() - t0)
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.3f} ms"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20, help="runs per corpus message")
    ap.add_argument("--hostile", type=int, default=200, help="random near-miss inputs of the cap size")
    args = ap.parse_args()
    entries = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    positives = [e for e in entries if e["expect"] is not None]
    negatives = [e for e in entries if e["expect"] is None]

    exact, by_kind, total = defaultdict(int), defaultdict(int), defaultdict(int)
    misses = []
    for e in positives:
        want = e["expect"]
        rec = recognize(e["text"])
        total[want["kind"]] += 1
        if rec is not None and rec.kind == want["kind"]:
            by_kind[want["kind"]] += 1
        if rec is not None and (rec.kind, rec.command, rec.cluster, rec.args, rec.principal) == (
                want["kind"], want["command"], spec(want["cluster"]), want["args"], want["principal"]):
            exact[want["kind"]] += 1
        else:
            misses.append(e["id"])
    rejected = sum(recognize(e["text"]) is None for e in negatives)

    print(f"Recognition over {CORPUS.relative_to(CORPUS.parents[2])}: {len(positives)} error strings, "
          f"{len(negatives)} negatives, {len(KINDS)} kinds")
    print(f"  {'kind':<32}{'command':<10}{'exact':>9}{'kind ok':>10}")
    for kind, k in KINDS.items():
        n = total.get(kind, 0)
        print(f"  {kind:<32}{k.command:<10}{exact[kind]:>5}/{n:<3}{by_kind[kind]:>6}/{n:<3}")
    n = len(positives)
    print(f"  {'overall':<42}{sum(exact.values()) / n:>8.1%}{sum(by_kind.values()) / n:>10.1%}")
    print(f"  negatives left unrecognised: {rejected}/{len(negatives)} ({rejected / max(1, len(negatives)):.1%})")
    if misses:
        print("  not exact: " + ", ".join(misses))

    for e in entries:  # warm up: the first call of a pattern compiles it
        recognize_all(e["text"])
    corpus_times = [t for e in entries for t in timed(e["text"], args.repeat)]
    print(f"\nTime per message, corpus ({len(entries)} messages x {args.repeat} runs, "
          f"mean length {statistics.mean(len(e['text']) for e in entries):.0f} chars):")
    print(f"  mean {ms(statistics.mean(corpus_times))}   p50 {ms(pct(corpus_times, 0.5))}   "
          f"p99 {ms(pct(corpus_times, 0.99))}   max {ms(max(corpus_times))}")

    rng = random.Random(15)
    worst = {name: statistics.median(timed(text, 3)) for name, text in WORST.items()}
    noise = [t for _ in range(args.hostile) for t in timed(fragment_text(rng), 1)]
    junk = [t for _ in range(20) for t in timed("".join(chr(rng.randrange(32, 0x3100)) for _ in range(MAX_INPUT)), 1)]
    slowest = max(worst, key=worst.get)
    print(f"\nTime per message, hostile inputs of the cap size ({MAX_INPUT} characters):")
    print(f"  {len(WORST)} repeated patterns: mean {ms(statistics.mean(worst.values()))}   "
          f"max {ms(worst[slowest])} ({slowest})")
    print(f"  {len(noise)} random near-misses: mean {ms(statistics.mean(noise))}   p99 {ms(pct(noise, 0.99))}   "
          f"max {ms(max(noise))}")
    print(f"  {len(junk)} random Unicode texts: mean {ms(statistics.mean(junk))}   max {ms(max(junk))}")
    return 0 if not misses and rejected == len(negatives) else 1


if __name__ == "__main__":
    sys.exit(main())
