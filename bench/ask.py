"""Free-question retrieval: top-1 / top-3 hit rates and latency over tests/fixtures/questions.yaml.

    .venv/bin/python bench/ask.py [--show-misses]

Each question's answer ids are the steps or cards that really answer it; a hit is one of them among the
first (top-1) or the first three (top-3) passages the tutor would show. Targets (issue 13): top-3 >= 85 %,
p95 <= 50 ms per question. Also prints the time to build the index from the course.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.content import default_content_dir, load_course  # noqa: E402
from dialogs.ask import AskIndex, relevant  # noqa: E402
from dialogs.engine import Engine  # noqa: E402
from dialogs.messages import Start, Text  # noqa: E402
from dialogs.state import LearnerState  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "questions.yaml"
#: Questions the course does not answer: the tutor should say so rather than show passages.
OFF_TOPIC = [
    ("what's the weather in paris today", "en"), ("how do i bake sourdough bread", "en"),
    ("tell me a joke", "en"), ("how do I install tensorflow", "en"), ("what is the capital of france?", "en"),
    ("how to train a model faster on gpu", "en"), ("what is a transformer model", "en"),
    ("who won the world cup", "en"), ("can you write my homework", "en"), ("how do i center a div in css", "en"),
    ("今天天气怎么样", "zh"), ("谁是美国总统", "zh"), ("我想学做饭", "zh"), ("怎么用 GPU 训练得更快", "zh"),
    ("推荐一本小说", "zh"), ("python 怎么读文件", "zh"), ("帮我写一首诗", "zh"), ("transformer 是什么", "zh"),
]


def evaluate(index: AskIndex, entries: list[dict]) -> dict:
    top1 = top3 = answered = 0
    times: list[float] = []
    misses = []
    per_lang: dict[str, list[int]] = {"en": [0, 0], "zh": [0, 0]}
    for e in entries:
        t0 = time.perf_counter()
        hits = index.search(e["q"], e["lang"], k=3)
        times.append(time.perf_counter() - t0)
        answered += bool(hits) and relevant(hits[0], e["q"])
        ids = [h.passage.id for h in hits]
        want = set(e["answers"])
        per_lang[e["lang"]][1] += 1
        if ids[:1] and ids[0] in want:
            top1 += 1
        if want & set(ids):
            top3 += 1
            per_lang[e["lang"]][0] += 1
        else:
            misses.append((e, ids))
    times.sort()
    n = len(entries)
    return {"n": n, "answered": answered / n, "top1": top1 / n, "top3": top3 / n, "per_lang": per_lang,
            "misses": misses,
            "p50_ms": statistics.median(times) * 1000, "p95_ms": times[int(0.95 * (n - 1))] * 1000,
            "max_ms": times[-1] * 1000}


def engine_turns(course, entries: list[dict]) -> tuple[float, float]:
    """What a learner waits for in the bot process: the engine's turn for a question typed at a lesson."""
    engine = Engine(course)
    now = datetime.now(UTC)
    state = engine.step(LearnerState(), Start(), now).state
    state = engine.step(state, Text("go"), now).state
    times = []
    for e in entries:
        t0 = time.perf_counter()
        engine.step(state.but(lang=e["lang"]), Text(e["q"] if "?" in e["q"] else e["q"] + "?"), now)
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1000, times[int(0.95 * (len(times) - 1))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    course = load_course(default_content_dir())
    entries = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    index = AskIndex(course)
    build = time.perf_counter() - t0
    tracemalloc.start()  # a second build, traced (tracing slows it down): the memory the index holds
    again = AskIndex(course)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del again
    evaluate(index, entries)  # warm-up
    r = evaluate(index, entries)
    print(f"questions: {r['n']} ({r['per_lang']['en'][1]} en, {r['per_lang']['zh'][1]} zh); "
          f"passages: {len(index.passages)}; index built in {build * 1000:.0f} ms, holding {held / 1e6:.1f} MB")
    print(f"top-1: {r['top1']:.1%}   top-3: {r['top3']:.1%} (target >= 85 %)   "
          f"top-3 en {'/'.join(map(str, r['per_lang']['en']))}, zh {'/'.join(map(str, r['per_lang']['zh']))}")
    print(f"latency per question: p50 {r['p50_ms']:.2f} ms   p95 {r['p95_ms']:.2f} ms (target <= 50 ms)   "
          f"max {r['max_ms']:.2f} ms")
    turns = engine_turns(course, entries)
    print(f"a whole tutor turn for a typed question (Engine.step, reply composed): p50 {turns[0]:.2f} ms   "
          f"p95 {turns[1]:.2f} ms")
    refused = [q for q, lang in OFF_TOPIC if not ((h := index.search(q, lang, k=1)) and relevant(h[0], q))]
    print(f"answered with passages: {r['answered']:.1%} of the course's questions; "
          f"off-topic questions refused: {len(refused)}/{len(OFF_TOPIC)}")
    if args.show_misses:
        for e, ids in r["misses"]:
            print(f"\nMISS [{e['lang']}] {e['q'][:150]!r}\n  want {e['answers']}\n  got  {ids}")


if __name__ == "__main__":
    main()
