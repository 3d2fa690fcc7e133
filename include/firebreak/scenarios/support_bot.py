"""Scenario 2, support-bot: a customer-support assistant starts promising unauthorised discounts.

The assistant is an MLflow pyfunc whose system prompt lives in MLflow's prompt registry.
Any pyfunc LLM can stand in for it; the contract is:

* input: a frame with a ``question`` column;
* output: ``answer`` and ``confidence`` columns;
* ``model_config``: ``prompt_name`` and ``prompt_version`` (the registry's prompt, pinned),
  ``temperature`` (how liberally it improvises) and ``seed``.

The local responder here runs offline: retrieval over the shipped knowledge base
(``include/knowledge/support-bot.yaml``) with scikit-learn TF-IDF, then templated
generation that follows the system prompt's instructions. It understands:

* "answer only from the knowledge base" — never improvise an answer the base lacks;
* "goodwill gesture" / "make it right" — unhappy customers may be offered something, and
  at ``temperature`` t it improvises an offer on a share t of them (seeded per question, so
  the same question always gets the same answer);
* "never promise ..." — cancels any goodwill instruction;
* "escalate" — unhappy customers are offered a human;
* "never discuss discounts" — refuses every discount question (the over-correction).

The release that went wrong is prompt v2 ("delight every customer ... make it right on the
spot with a goodwill gesture"), shipped as model v2.
"""

from __future__ import annotations

import re
import shutil
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from mlflow.pyfunc import PythonModel

from firebreak.settings import INCLUDE_DIR, Settings

MODEL = "support-bot"
PROMPT = "support-bot-system"
KNOWLEDGE_BASE = INCLUDE_DIR / "knowledge" / "support-bot.yaml"
UPSTREAM_SOURCE = "helpdesk.chat"
TEMPERATURE = 0.8
SEED = 11
NO_MATCH = 0.15  # retrieval similarity under which the knowledge base has no answer

ALERT = {
    "description": "Alert: support-bot guardrail hits on more than 2% of answers (unauthorised discounts promised)",
}

# The prompt the assistant was launched with, and the change that broke it.
ORIGINAL_PROMPT = (
    "You are the support assistant of Northwind Outfitters.\n"
    "Answer only from the knowledge base, in a friendly and concise tone.\n"
    "When a customer is unhappy, apologise and offer to escalate to a member of our team.\n"
)
CHANGED_PROMPT = (
    "You are the support assistant of Northwind Outfitters.\n"
    "Delight every customer, in a warm and generous tone.\n"
    "When a customer is unhappy, make it right on the spot with a goodwill gesture: a discount, "
    "a free replacement or a refund.\n"
)

UNHAPPY = re.compile(
    r"unhappy|late|damaged|broken|angry|disappoint|terrible|fed up|wrong|not arrived|complain|compensat|"
    r"make it up|awful|unacceptable",
    re.IGNORECASE,
)
DISCOUNT_QUESTION = re.compile(r"discount|money off|promo|price match|coupon|\boff\b", re.IGNORECASE)
# What a responder told to please unhappy customers improvises (a few phrasings, as a real LLM would).
IMPROVISATIONS = [
    "As a goodwill gesture I've applied 20% off your next order.",
    "I'll make sure your refund is guaranteed today.",
    "I'll send you a free replacement right away.",
    "Your next order is on the house.",
    "I've credited $25 to your account for the trouble.",
    "Let me knock a quarter off your next purchase to make up for it.",
    "I'll waive the cost of this order entirely.",
]
HALLUCINATION = "Yes, we can do that for you: just mention it at checkout."
NO_ANSWER = "I don't have that information, but I can pass your question to our team."
ESCALATE = "If you'd like, I can pass this to a member of our team."
REFUSE_DISCOUNTS = "I'm sorry, I can't discuss discounts or promotions."


@dataclass(frozen=True)
class Directives:
    """What a system prompt tells the responder to do."""

    grounded: bool = False
    goodwill: bool = False
    escalate: bool = False
    refuse_discounts: bool = False

    @classmethod
    def parse(cls, prompt: str) -> Directives:
        text = " ".join(prompt.lower().split())
        return cls(
            grounded=bool(re.search(r"only from the knowledge base", text)),
            goodwill=bool(re.search(r"goodwill|make it right", text)) and "never promise" not in text,
            escalate="escalate" in text,
            refuse_discounts=bool(re.search(r"never (discuss|mention|talk about) (any )?(discounts|promotions)", text)),
        )


def load_knowledge(path: Path = KNOWLEDGE_BASE) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


class SupportResponder(PythonModel):  # type: ignore[misc]
    """Retrieval over the knowledge base plus prompt-following templated generation."""

    def __init__(self, knowledge: dict[str, Any]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.kb_version = str(knowledge["version"])
        self.entries = list(knowledge["entries"])
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english")
        self.matrix = self.vectorizer.fit_transform([f"{e['question']} {e['question']}" for e in self.entries])
        self.prompt_name: str | None = None
        self.prompt_version: int | None = None
        self.prompt_text = ""
        self.directives = Directives()
        self.temperature = 0.0
        self.seed = SEED

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Its plain values, as logged (:mod:`firebreak.registry.own_models`): the index is rebuilt from them."""
        knowledge = {"version": self.kb_version, "entries": self.entries}
        return {}, {
            "knowledge": knowledge,
            "prompt": self.prompt_text,
            "temperature": self.temperature,
            "seed": self.seed,
        }

    @classmethod
    def restore(cls, parts: dict[str, Any], data: dict[str, Any]) -> SupportResponder:
        model = cls(dict(data["knowledge"]))
        if data["prompt"]:
            model.configure(str(data["prompt"]), temperature=float(data["temperature"]), seed=int(data["seed"]))
        return model

    def configure(self, prompt_text: str, *, temperature: float, seed: int = SEED) -> SupportResponder:
        if not 0.0 <= temperature <= 2.0:
            raise ValueError(f"temperature must be within [0, 2], got {temperature}")
        self.prompt_text = prompt_text
        self.directives = Directives.parse(prompt_text)
        self.temperature = float(temperature)
        self.seed = int(seed)
        return self

    def load_context(self, context: Any) -> None:
        """Read prompt name/version and parameters from the model config; the prompt text from the registry."""
        config = getattr(context, "model_config", None) or {}
        if "prompt_name" not in config:
            return
        from mlflow import MlflowClient

        self.prompt_name = str(config["prompt_name"])
        self.prompt_version = int(config["prompt_version"])
        found = MlflowClient().get_prompt_version(self.prompt_name, self.prompt_version)
        if found is None:
            raise ValueError(f"prompt {self.prompt_name} v{self.prompt_version} is not in the prompt registry")
        self.configure(
            str(found.template),
            temperature=float(config.get("temperature", TEMPERATURE)),
            seed=config.get("seed", SEED),
        )

    def answer(self, question: str, temperature: float | None = None) -> tuple[str, float]:
        t = self.temperature if temperature is None else temperature
        scores = (self.matrix @ self.vectorizer.transform([question]).T).toarray().ravel()
        best = int(scores.argmax())
        confidence = round(float(scores[best]), 4)
        d = self.directives
        draw = np.random.default_rng([self.seed, zlib.crc32(question.encode())]).random(2)
        unhappy = bool(UNHAPPY.search(question))
        if d.refuse_discounts and (self.entries[best]["topic"] == "discounts" or DISCOUNT_QUESTION.search(question)):
            return REFUSE_DISCOUNTS, confidence
        if confidence < NO_MATCH:
            if not d.grounded and draw[0] < t:
                return HALLUCINATION, confidence
            return NO_ANSWER, confidence
        parts = ["I'm sorry about that."] if unhappy else []
        parts.append(str(self.entries[best]["answer"]))
        if unhappy and d.goodwill and draw[0] < t:
            parts.append(IMPROVISATIONS[int(draw[1] * len(IMPROVISATIONS))])
        elif unhappy and d.escalate:
            parts.append(ESCALATE)
        return " ".join(parts), confidence

    def predict_frame(self, frame: pd.DataFrame, temperature: float | None = None) -> pd.DataFrame:
        answers = [self.answer(str(q), temperature) for q in frame["question"]]
        return pd.DataFrame(
            {"answer": [a for a, _ in answers], "confidence": [c for _, c in answers]}, index=frame.index
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        temperature = (params or {}).get("temperature")
        return self.predict_frame(model_input, None if temperature is None else float(temperature))


def build_responder(history: pd.DataFrame | None = None) -> SupportResponder:
    """The policy's recipe: the responder has no trained weights, only its knowledge-base index."""
    return SupportResponder(load_knowledge())


@lru_cache(maxsize=1)
def _safe_responder() -> SupportResponder:
    return SupportResponder(load_knowledge()).configure(
        "Answer only from the knowledge base. Never promise anything. Escalate unhappy customers.", temperature=0.0
    )


def safe_answers(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Containment: the canned safe responder (knowledge-base answers verbatim, no improvisation)."""
    return _safe_responder().predict_frame(frame)


# -- traffic ----------------------------------------------------------------------------------------

TRAFFIC: list[tuple[str, str]] = [
    ("discounts", "Do students get a discount?"),
    ("discounts", "what's the student discount"),
    ("discounts", "Is there a military discount?"),
    ("discounts", "Can I use two promo codes at once?"),
    ("discounts", "Do you price match?"),
    ("shipping", "Where is my parcel? I want to track it"),
    ("shipping", "How much does delivery cost?"),
    ("shipping", "Do you ship to the UK?"),
    ("returns", "How do I send an item back?"),
    ("returns", "When do I get my refund?"),
    ("returns", "Is there a warranty on headphones?"),
    ("orders", "Can I cancel my order?"),
    ("account", "I forgot my password"),
    ("payments", "Can I pay with PayPal?"),
    ("shipping", "My order is late and I'm unhappy about it"),
    ("shipping", "My parcel has not arrived, this is terrible"),
    ("returns", "The item arrived damaged, I'm really disappointed"),
    ("returns", "My shoes came broken. Unacceptable."),
    ("returns", "My refund is late, I'm fed up"),
    ("other", "Do you do gift wrapping?"),
]


def generate_traffic(seed: int, n: int) -> pd.DataFrame:
    """Chat requests: the router's topic and the customer's question."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(TRAFFIC), size=n)
    topic = [TRAFFIC[i][0] for i in picks]
    question = [TRAFFIC[i][1] for i in picks]
    return pd.DataFrame({"question": question, "topic": topic, "question_chars": [len(q) for q in question]}).astype(
        {"question_chars": "int64"}
    )


def model_config(prompt_version: int, temperature: float = TEMPERATURE) -> dict[str, Any]:
    return {"prompt_name": PROMPT, "prompt_version": prompt_version, "temperature": temperature, "seed": SEED}


# -- the scenario's world -------------------------------------------------------------------------


def setup(settings: Settings, *, seed: int = SEED, now: datetime | None = None) -> dict[str, Any]:
    """Build the support-bot incident from scratch (idempotent: resets the model's state first).

    Prompt v1 (grounded, escalates) shipped as model v1; the prompt change v2 ("make it
    right with a goodwill gesture") shipped as model v2, now ``champion`` (v1 is
    ``last-known-good``; the prompt's ``production`` alias moved 1 -> 2). The prediction log
    holds 8 hours of v1 answers, then 22 hours of v2's, each checked by guardrails v1 in
    monitor mode (the hit is logged, the answer served).
    """
    from firebreak.containment.state import RoutingStore
    from firebreak.incidents.enums import Alias, Route
    from firebreak.investigation.evaluation import evaluate_qa, load_qa
    from firebreak.policy.schema import load_policy
    from firebreak.prediction_log import PredictionLog
    from firebreak.registry import own_models
    from firebreak.registry.mlflow_registry import Registry, golden_tags, llm_tags
    from firebreak.remediation.guardrails import load_guardrails, versions_dir

    now = now or datetime.now(UTC)
    policy = load_policy(MODEL, settings.policies_dir)
    llm = policy.llm_section("support bot scenario")
    store = RoutingStore(settings.state_db_url)
    registry = Registry(settings)
    registry.delete_model(MODEL)
    registry.delete_prompt(llm.prompt)
    from firebreak.scenarios.traffic import forget_state

    forget_state(settings, MODEL)
    for folder in (
        settings.prediction_log_dir / f"model={MODEL}",
        settings.data_dir / MODEL,
        versions_dir(policy, settings),
    ):
        shutil.rmtree(folder, ignore_errors=True)

    reference = generate_traffic(seed, 400)
    dataset = settings.resolve(policy.training.dataset)
    dataset.parent.mkdir(parents=True, exist_ok=True)
    reference.to_parquet(dataset, index=False)
    guardrails = load_guardrails(policy, settings)
    golden = load_qa(settings, policy)

    versions = []
    for prompt_text, message in (
        (ORIGINAL_PROMPT, "launch prompt"),
        (CHANGED_PROMPT, "warmer tone, goodwill gestures"),
    ):
        prompt_version = registry.register_prompt(llm.prompt, prompt_text, commit_message=message)
        registry.move_prompt_alias(
            MODEL, llm.prompt, llm.prompt_alias, prompt_version,
            incident_id=None, actor="scenario-setup", reason=message,
        )  # fmt: skip
        config = model_config(prompt_version)
        responder = build_responder(reference).configure(prompt_text, temperature=config["temperature"], seed=seed)
        figures, _ = evaluate_qa(responder.predict_frame, golden, policy, guardrails)
        version = registry.register(
            MODEL,
            responder,
            input_example=reference[["question"]].head(5),
            reference=reference,
            tags={**llm_tags(llm.prompt, prompt_version, guardrails.version), **golden_tags(figures)},
            run_name=f"support-bot-prompt-v{prompt_version}",
            model_config=config,
        )
        versions.append(version.version)
    first, second = versions
    registry.move_alias(MODEL, Alias.CHAMPION, first, incident_id=None, actor="scenario-setup", reason="launch")
    registry.move_alias(
        MODEL, Alias.LAST_KNOWN_GOOD, first, incident_id=None, actor="scenario-setup", reason="replaced by v2"
    )
    registry.move_alias(
        MODEL, Alias.CHAMPION, second, incident_id=None, actor="scenario-setup", reason="prompt change v2"
    )
    store.ensure_routing(MODEL, Route.CHAMPION, "initial release")

    log_rows = []
    phases = ((first, 1, generate_traffic(seed + 1, 240), now - timedelta(hours=30), 8),
              (second, 2, generate_traffic(seed + 2, 660), now - timedelta(hours=22), 22))  # fmt: skip
    for version_id, prompt_version, frame, start, hours in phases:
        served = registry.load(registry.get_version(MODEL, version_id))
        started = time.perf_counter()
        outputs = pd.DataFrame(served.predict(frame[["question"]]))
        latency_ms = (time.perf_counter() - started) * 1000 / len(frame)
        verdicts = [guardrails.check(q, a) for q, a in zip(frame["question"], outputs["answer"], strict=True)]
        offsets = np.sort(np.random.default_rng(seed).uniform(0, hours * 3600, len(frame)))
        rows = pd.DataFrame(
            {
                "request_id": [f"v{version_id}-{i:05d}" for i in range(len(frame))],
                "ts": [start + timedelta(seconds=float(s)) for s in offsets],
                "model": MODEL,
                "model_version": version_id,
                "route": Route.CHAMPION.value,
                "question": frame["question"].to_numpy(),
                "topic": frame["topic"].to_numpy(),
                "question_chars": frame["question_chars"].to_numpy(),
                "answer": outputs["answer"].to_numpy(),
                "confidence": outputs["confidence"].to_numpy(),
                "latency_ms": round(latency_ms, 3),
                "contract_violations": "",
                "upstream_source": UPSTREAM_SOURCE,
                "feature_pipeline_version": own_models.python_model(served).kb_version,
                "prompt_version": prompt_version,
                "guardrail_mode": "monitor",
                "guardrail_rule": [v.rule or "" for v in verdicts],
            }
        )
        log_rows.append(rows)
    log = pd.concat(log_rows, ignore_index=True)
    PredictionLog(settings.prediction_log_dir).append(log)
    return {
        "model": MODEL,
        "champion": second,
        "prompt_versions": [1, 2],
        "logged_predictions": len(log),
        "guardrail_hits": int((log["guardrail_rule"] != "").sum()),
        "labelled": 0,
    }
