"""The guardrail check the serving gateway runs on every LLM answer.

Times ``Guardrails.check(question, answer)`` (rules, authorised spans, the semantic check)
on the support-bot's answers: every knowledge-base answer as a customer would get it, and
every improvised promise. Anchors, in the same run: one compiled regular-expression search
on the same answer (the floor of any rule-based check), and scikit-learn's own
``TfidfVectorizer.transform`` plus a cosine against the exemplars (what the semantic check
would cost if it called scikit-learn per answer). Also: importing the module, and loading
(fitting) a guardrail version, each in a fresh interpreter, against ``import yaml``.

Run: `.venv/bin/python benchmarks/bench_guardrails.py [--repeat N]`; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def per_call_us(fn, items, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median over ``repeat`` passes of the mean time per call over ``items``, in microseconds."""
    passes = []
    for _ in range(repeat):
        started = time.perf_counter()
        for item in items:
            fn(*item)
        passes.append((time.perf_counter() - started) / len(items) * 1e6)
    return statistics.median(passes)


def fresh_interpreter_ms(code: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", f"import time; t=time.perf_counter(); {code}; print(time.perf_counter()-t)"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ},
        )
        times.append(float(out.stdout.strip().splitlines()[-1]) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FIREBREAK_HOME"] = str(Path(tmp) / "firebreak")
        from firebreak.policy.schema import load_policy
        from firebreak.remediation.guardrails import load_guardrails
        from firebreak.scenarios import support_bot as sb
        from firebreak.settings import Settings

        settings = Settings.from_env()
        policy = load_policy("support-bot", settings.policies_dir)
        guardrails = load_guardrails(policy, settings)
        kb = sb.load_knowledge()["entries"]
        pairs = [(e["question"], f"I'm sorry about that. {e['answer']} {sb.ESCALATE}") for e in kb]
        pairs += [("My parcel is late", f"I'm sorry about that. {kb[4]['answer']} {i}") for i in sb.IMPROVISATIONS]
        one_rule = re.compile(r"\b\d{1,3}\s?%\s?(off|discount)", re.IGNORECASE)

        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        exemplars = vectorizer.fit_transform(guardrails.exemplars)

        def sklearn_semantic(question: str, answer: str) -> float:
            return float((exemplars @ vectorizer.transform([answer]).T).max())

        rows = [
            ("anchor: one regex search per answer", per_call_us(lambda q, a: one_rule.search(a), pairs, args.repeat)),
            ("Guardrails.check per answer", per_call_us(guardrails.check, pairs, args.repeat)),
            ("scikit-learn transform + cosine per answer", per_call_us(sklearn_semantic, pairs, args.repeat)),
        ]
        blocked = sum(not guardrails.check(q, a).allowed for q, a in pairs)
        print(f"{len(pairs)} answers ({blocked} blocked), {args.repeat} passes; medians\n")
        print("| measurement | median | × anchor |\n|---|---|---|")
        anchor = rows[0][1]
        for name, value in rows:
            print(f"| {name} | {value:.1f} µs | {value / anchor:.1f} |")
        load = "from firebreak.settings import Settings; from firebreak.policy.schema import load_policy; " + (
            "from firebreak.remediation.guardrails import load_guardrails; s = Settings.from_env(); "
            "load_guardrails(load_policy('support-bot', s.policies_dir), s)"
        )
        startup = [
            ("anchor: import yaml (fresh interpreter)", fresh_interpreter_ms("import yaml", 5)),
            (
                "import firebreak.remediation.guardrails",
                fresh_interpreter_ms("import firebreak.remediation.guardrails", 5),
            ),
            ("import + load_guardrails (fits the semantic check)", fresh_interpreter_ms(load, 5)),
        ]
        print()
        base = startup[0][1]
        for name, value in startup:
            print(f"| {name} | {value:.0f} ms | {value / base:.1f} |")


if __name__ == "__main__":
    main()
