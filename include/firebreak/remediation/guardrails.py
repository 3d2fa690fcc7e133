"""Guardrails: stop an LLM answer that promises what the business never authorised.

A guardrail set is a versioned YAML file. Version 1 ships with the model
(``policy.llm.guardrails``, under ``include/guardrails/``); each later version is written
by a remediation under ``$FIREBREAK_HOME/data/guardrails/<model>/v<n>.yaml`` with its
parent, the incident and the reason, and becomes active only when an incident promotes
it (``activate``: an ``active.json`` pointer plus an alias-ledger row ``guardrails``).

A check reads the answer in its :func:`reading_form` (what a person sees, not the code
points an attacker chose: full-width letters, invisible characters, look-alike letters
from other scripts and line breaks cannot split a promise from its rule), removes the
spans the policy authorises (``allow``: e.g. the documented 15% student discount), then
runs two stages:

1. rules — regular expressions ("20% off", "refund ... guarantee", "free replacement"),
   each with an id and a reason, optionally only for questions matching ``question``;
2. a semantic check — each sentence's TF-IDF cosine similarity to exemplar violations,
   blocking at the policy's ``semantic_threshold``. It catches paraphrases no rule lists
   ("your next order is on the house").

The vocabulary and IDF weights are fitted with scikit-learn when the set is loaded; a
check then scores in plain Python (no NumPy or scikit-learn call per answer), so it stays
well under a millisecond. This module imports neither at import time.
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from firebreak.errors import ConfigurationError

if TYPE_CHECKING:
    from firebreak.policy.schema import Policy
    from firebreak.registry.ledger import AliasLedger
    from firebreak.settings import Settings

LEDGER_ALIAS = "guardrails"
_TOKEN = re.compile(r"(?u)\b\w+\b|%|\$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# Function words carry no meaning alone; they still form bigrams ("on us", "on the house").
_STOP = frozenset(
    "a an the to of and or for is are be it its this that i we you your our my me us on in at with".split()
)


@dataclass(frozen=True, slots=True)
class GuardrailVerdict:
    """What a guardrail decided about one answer."""

    allowed: bool
    rule: str | None  # the rule id that fired, "semantic:<n>" for the semantic check, None when allowed
    reason: str
    replacement: str | None  # the safe answer to serve instead; None when allowed
    score: float  # highest similarity to an exemplar violation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rule:
    id: str
    pattern: re.Pattern[str]
    reason: str
    question: re.Pattern[str] | None = None


# Letters of other scripts drawn like Latin ones: "guarаntee" with a Cyrillic "а" reads "guarantee".
_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁһԛԝүАВЕКМНОРСТХІЈЅαοριυνκτΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdhqwyABEKMHOPCTXIJSaopiuvktABEZHIKMNOPTYX",
)


def reading_form(text: str) -> str:
    """``text`` as a reader sees it, the form rules, authorised spans and exemplars are matched in.

    Compatibility forms fold (full-width "２０％ ｏｆｆ", ligatures, superscripts: NFKC);
    invisible format characters (zero-width spaces and joiners, soft hyphens, direction
    marks) and combining marks go ("guaran\u200btee", "r̲e̲f̲u̲n̲d̲"); accents go with them, so
    a rule written with or without them matches either spelling; look-alike Cyrillic and
    Greek letters read as the Latin ones; any run of white space, line breaks included, is
    one space (and none at either end). Plain ASCII text only has its white space folded.
    """
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        kept = "".join(c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c) != "Cf")
        text = unicodedata.normalize("NFC", kept).translate(_LOOKALIKES)
    return " ".join(text.split())


def analyze(text: str) -> list[str]:
    """Lowercased word unigrams (without function words) and all word bigrams."""
    tokens = _TOKEN.findall(text.lower())
    grams = [t for t in tokens if t not in _STOP]
    grams += [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
    return grams


class Guardrails:
    """One loaded guardrail version: rules, authorised spans and a fitted semantic check."""

    def __init__(self, spec: dict[str, Any], *, threshold: float, source: Path) -> None:
        self.spec = spec
        self.version = int(spec["version"])
        self.threshold = threshold
        self.source = source
        self.safe_answer = str(spec["safe_answer"])
        try:
            self.allow = [compile_pattern(a["pattern"]) for a in spec.get("allow", [])]
            self.rules = [
                Rule(
                    str(r["id"]),
                    compile_pattern(r["pattern"]),
                    str(r["reason"]),
                    compile_pattern(r["question"]) if r.get("question") else None,
                )
                for r in spec.get("rules", [])
            ]
        except (re.error, KeyError, TypeError) as exc:
            raise ConfigurationError(f"guardrails {source}: bad rule or allow entry: {exc}") from exc
        self.exemplars = [str(e) for e in spec.get("exemplars", [])]  # shown in verdicts as written
        self._vocab: dict[str, int] = {}
        self._idf: list[float] = []
        self._oov_idf = 1.0
        self._exemplar_vectors: list[dict[int, float]] = []
        if self.exemplars:
            self._fit()

    def _fit(self) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True)
        matrix = vectorizer.fit_transform([reading_form(e) for e in self.exemplars]).tocsr()
        self._vocab = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
        self._idf = [float(x) for x in vectorizer.idf_]
        self._oov_idf = max(self._idf)
        self._exemplar_vectors = [
            dict(zip(matrix[i].indices.tolist(), matrix[i].data.tolist(), strict=True)) for i in range(matrix.shape[0])
        ]

    def similarity(self, sentence: str) -> tuple[float, int]:
        """Highest cosine similarity of ``sentence`` to an exemplar, and that exemplar's index.

        Words the exemplars never use still count in the sentence's norm (as rare words),
        so a long legitimate sentence sharing one phrase with a violation scores low.
        """
        counts = Counter(analyze(sentence))
        if not counts or not self._exemplar_vectors:
            return 0.0, -1
        vector: dict[int, float] = {}
        norm = 0.0
        for term, n in counts.items():
            index = self._vocab.get(term)
            weight = (1.0 + math.log(n)) * (self._idf[index] if index is not None else self._oov_idf)
            norm += weight * weight
            if index is not None:
                vector[index] = weight
        if not vector:
            return 0.0, -1
        scale = 1.0 / math.sqrt(norm)
        best, which = 0.0, -1
        for i, exemplar in enumerate(self._exemplar_vectors):
            score = sum(w * exemplar.get(j, 0.0) for j, w in vector.items()) * scale
            if score > best:
                best, which = score, i
        return best, which

    def check(self, question: str, answer: str) -> GuardrailVerdict:
        """Allow ``answer`` to ``question``, or block it with the rule, the reason and a safe answer.

        Both are read in their :func:`reading_form`; the reason quotes what matched in that form.
        """
        text, question = reading_form(answer), reading_form(question)
        for pattern in self.allow:
            text = pattern.sub(" ", text)
        for rule in self.rules:
            if rule.question is not None and not rule.question.search(question):
                continue
            found = rule.pattern.search(text)
            if found:
                return GuardrailVerdict(False, rule.id, f"{rule.reason}: {found.group(0)!r}", self.safe_answer, 1.0)
        best, which = 0.0, -1
        for sentence in _SENTENCE.split(text):
            score, index = self.similarity(sentence)
            if score > best:
                best, which = score, index
        if best >= self.threshold:
            return GuardrailVerdict(
                False,
                f"semantic:{which}",
                f"similar ({best:.2f}) to a known violation: {self.exemplars[which]!r}",
                self.safe_answer,
                round(best, 4),
            )
        return GuardrailVerdict(True, None, "no rule fired", None, round(best, 4))

    def serve(self, question: str, answer: str) -> tuple[str, GuardrailVerdict]:
        """The answer a user gets: ``answer`` when allowed, else the safe replacement."""
        verdict = self.check(question, answer)
        return (answer if verdict.allowed else str(verdict.replacement)), verdict


def compile_pattern(source: Any) -> re.Pattern[str]:
    """A rule's or an authorised span's regular expression, in the reading form of the text it reads
    (a pattern written with accents, full-width or look-alike letters matches their reading form).

    Raises:
        re.error: ``source`` does not compile.
    """
    return re.compile(reading_form(str(source)), re.IGNORECASE)


# -- versions ----------------------------------------------------------------------------------


def versions_dir(policy: Policy, settings: Settings) -> Path:
    return settings.data_dir / "guardrails" / policy.model


def _version_path(policy: Policy, settings: Settings, version: int) -> Path:
    if version == 1:
        return settings.resolve(policy.llm_section("guardrails").guardrails)
    return versions_dir(policy, settings) / f"v{version}.yaml"


def read_spec(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigurationError(f"guardrail file {path} does not exist")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"guardrail file {path}: not valid YAML: {exc}") from exc
    if not isinstance(spec, dict):
        raise ConfigurationError(f"guardrail file {path}: expected a mapping")
    missing = [k for k in ("version", "safe_answer", "rules") if k not in spec]
    if missing:
        raise ConfigurationError(f"guardrail file {path}: missing {missing}")
    return spec


def active_version(policy: Policy, settings: Settings) -> int:
    """The version the gateway serves: the last one an incident promoted, else 1."""
    pointer = versions_dir(policy, settings) / "active.json"
    if pointer.is_file():
        return int(json.loads(pointer.read_text())["version"])
    return 1


def latest_version(policy: Policy, settings: Settings) -> int:
    found = [int(p.stem[1:]) for p in versions_dir(policy, settings).glob("v*.yaml") if p.stem[1:].isdigit()]
    return max([1, *found])


def load_guardrails(policy: Policy, settings: Settings, version: int | None = None) -> Guardrails:
    """Load guardrail ``version`` of the policy's model (default: the active one), fitted and ready.

    Raises:
        ConfigurationError: the policy has no ``llm`` section, or the file is missing or malformed.
    """
    llm = policy.llm_section("guardrails")
    number = version if version is not None else active_version(policy, settings)
    path = _version_path(policy, settings, number)
    return Guardrails(read_spec(path), threshold=llm.semantic_threshold, source=path)


def add_rules(
    policy: Policy,
    settings: Settings,
    *,
    rules: list[dict[str, Any]],
    exemplars: list[str],
    incident_id: str,
    reason: str,
) -> int:
    """Write a new guardrail version: the active one plus ``rules`` and ``exemplars``; returns its number.

    The new version is not served until ``activate``; its file records the parent version,
    the incident and the reason (the audit trail). A rule with a bad pattern is refused
    before anything is written.
    """
    parent = active_version(policy, settings)
    spec = read_spec(_version_path(policy, settings, parent))
    known = {r["id"] for r in spec.get("rules", [])}
    for rule in rules:
        try:
            re.compile(str(rule["pattern"]))
        except (re.error, KeyError) as exc:
            raise ConfigurationError(f"guardrail rule {rule.get('id')!r} has a bad pattern: {exc}") from exc
    added = [r for r in rules if r["id"] not in known]
    new_exemplars = [e for e in dict.fromkeys(exemplars) if e not in spec.get("exemplars", [])]
    number = latest_version(policy, settings) + 1
    spec = {
        **spec,
        "version": number,
        "rules": [*spec.get("rules", []), *added],
        "exemplars": [*spec.get("exemplars", []), *new_exemplars],
        "history": [
            *spec.get("history", []),
            {
                "version": number,
                "parent": parent,
                "incident_id": incident_id,
                "reason": reason,
                "added_rules": [r["id"] for r in added],
                "added_exemplars": len(new_exemplars),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        ],
    }
    path = _version_path(policy, settings, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    Guardrails(spec, threshold=policy.llm_section("guardrails").semantic_threshold, source=path)  # it must load
    return number


def activate(
    policy: Policy,
    settings: Settings,
    version: int,
    *,
    ledger: AliasLedger,
    incident_id: str | None,
    actor: str,
    reason: str,
) -> bool:
    """Serve guardrail ``version`` from now on; the move is an alias-ledger row ``guardrails``.

    Idempotent: False when ``version`` is already active.
    """
    load_guardrails(policy, settings, version)  # refuse a version that does not load
    old = active_version(policy, settings)
    if old == version:
        return False
    entry = ledger.begin_move(
        model=policy.model,
        alias=LEDGER_ALIAS,
        old=str(old),
        new=str(version),
        incident_id=incident_id,
        actor=actor,
        reason=reason,
    )
    pointer = versions_dir(policy, settings) / "active.json"
    pointer.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(pointer, json.dumps({"version": version, "incident_id": incident_id, "reason": reason}))
    ledger.finish_move(entry, "applied")
    return True


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)
