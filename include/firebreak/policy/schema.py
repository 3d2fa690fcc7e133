"""The policy schema (``include/policies/<model>.yaml``), validated at load.

A bad policy is a clear error naming the field; nothing runs on a policy that did not
validate, so the previous state stays in force.

Its size (about 560 lines) is earned: one model per policy section, every field with its
bounds and a description (the error names the field; ``docs/`` reads the descriptions), and
the checks across sections in one place, so a policy is either whole or refused.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from firebreak.errors import ConfigurationError, PolicyError, UnknownModelError
from firebreak.incidents.enums import FailureClass, Remediation, Route, Severity, Signal
from firebreak.model_names import ModelName, ModelNameError, model_stem
from firebreak.policy.metrics import HIGHER_IS_BETTER, TASK_METRICS

# Names Firebreak itself chooses (prompt names and aliases). Model names are MLflow's:
# firebreak.model_names.check_model_name.
MODEL_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")

# The gate's metrics per task (the names: firebreak.policy.metrics).
Task = Literal["classification", "regression"]
Metric = Literal["mae", "rmse", "mape", "accuracy", "auc", "f1", "log_loss"]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
EntryPoint = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: Any) -> Any:
    """``90s``, ``5m``, ``1h``, ``2d`` (or seconds, or ISO 8601) as a timedelta."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Features(_Strict):
    """The model's inputs and the prediction-log columns triage reads."""

    numeric: list[str]
    categorical: list[str] = []
    label: str = Field(description="Ground-truth column in the golden dataset and the label store.")
    output: str = Field(description="The model's main output column.")
    confidence: str = "confidence"
    lineage: list[str] = Field(default=[], description="Lineage columns in the prediction log.")
    task: Task | None = Field(
        None,
        description="classification or regression; when unset, the gate's metric says (MAE on 0/1 labels is the error rate).",
    )

    @property
    def inputs(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class OutputFloor(_Strict):
    """Sanity bound: output / ``relative_to`` must be at least ``min_ratio`` (price >= cost)."""

    relative_to: str
    min_ratio: float = Field(gt=0)


class Detection(_Strict):
    confidence_floor: Fraction = Field(description="Predictions under this confidence count as low-confidence.")
    window_hours: float = Field(gt=0, le=24 * 30)
    min_predictions: int = Field(ge=1)
    output_floor: OutputFloor | None = None
    golden_tolerance: Fraction = Field(description="Relative golden-metric regression tolerated vs the baseline.")
    drift_share: Fraction = Field(0.5, description="Share of drifted columns that makes the dataset drifted.")


class SeverityRule(_Strict):
    severity: Severity
    when: dict[Signal, Fraction] = Field(min_length=1, description="Any signal at or above its value matches.")


class SeverityMatrix(_Strict):
    rules: list[SeverityRule] = Field(min_length=1)
    default: Severity = Severity.SEV4


class Containment(_Strict):
    route: Literal[Route.HEURISTIC, Route.FALLBACK_MODEL, Route.DISABLED]
    heuristic: EntryPoint | None = None
    description: str
    scope: Literal["model", "segment"] = Field(
        "model",
        description=(
            "'segment': when triage finds the failure concentrated in one segment, only its rows go to the "
            "fallback and the rest stays on the champion; 'model' (or no segment found): all traffic moves."
        ),
    )

    @model_validator(mode="after")
    def _heuristic_named(self) -> Containment:
        if self.route == Route.HEURISTIC and not self.heuristic:
            raise ValueError("route 'heuristic' needs 'heuristic: module:function'")
        return self


class Training(_Strict):
    """How ``retrain`` builds a candidate: the policy's recipe, or a refit of the champion.

    Without a recipe, a champion logged with MLflow's scikit-learn flavor is refitted as a
    clone (``sklearn.base.clone``) on ``dataset`` plus the labelled traffic
    (:mod:`firebreak.remediation.refit`): recent rows weigh more for drift, group x label
    are re-weighted for bias.
    """

    recipe: EntryPoint | None = Field(None, description="module:function returning a pyfunc model; none: refit.")
    dataset: str = Field(description="Training data (inputs and label), relative to FIREBREAK_HOME or under include/.")
    recency_half_life_hours: float = Field(
        24.0, gt=0, le=24 * 365, description="Refit: a labelled row this many hours older than the newest weighs half."
    )


class RemediationPolicy(_Strict):
    by_failure_class: dict[FailureClass, Remediation]
    parameter_update: dict[str, float | int | str | bool] = {}


class Approval(_Strict):
    """The human sign-off a passed gate waits for when ``requires_approval`` is set (SOP: the approver)."""

    timeout: Duration = Field(timedelta(hours=24), description="No answer by then counts as a rejection.")
    approvers: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,100}$")]] = Field(
        [], description="Airflow user names allowed to answer; empty lets any user with access to the DAG."
    )
    forbid_builder: bool = Field(True, description="The candidate's builder may not approve it (four-eyes rule).")

    @model_validator(mode="after")
    def _timeout_positive(self) -> Approval:
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        return self


class Gate(_Strict):
    """The promotion gate: the candidate against the pre-incident champion, on the policy's metric.

    For a lower-is-better metric (MAE, RMSE, MAPE, log-loss) the limits apply to the metric;
    for a higher-is-better one (accuracy, AUC, F1) to its shortfall ``1 - metric`` (the
    error rate for accuracy), so ``golden_max_regression: 0.05`` reads the same way for both.
    """

    metric: Metric = "mae"
    golden_max_regression: Fraction = Field(description="Candidate golden loss <= champion's x (1 + this).")
    golden_slack: float = Field(
        0.0,
        ge=0.0,
        description="... plus this much loss in the metric's units: the sampling noise of a small golden set "
        "(a champion trained on its golden rows scores them near perfectly; a refit never saw them). "
        "At most 1 for accuracy, AUC and F1; in the label's units for MAE and RMSE.",
    )
    recent_min_improvement: Fraction = Field(description="Candidate recent loss <= champion's x (1 - this).")
    max_sanity_violation_rate: Fraction = 0.0
    max_low_confidence_rate: Fraction = 1.0
    min_labelled_rows: int = Field(100, ge=1)
    held_out_share: float = Field(
        0.3,
        ge=0.1,
        le=0.9,
        description="Share of the incident's labelled traffic a refit (a retrain without a recipe) never sees: the "
        "gate judges the refit's recent figures on these rows only (picked by a hash of request_id).",
    )
    requires_approval: bool = False
    approval: Approval = Field(default_factory=lambda: Approval())

    @model_validator(mode="after")
    def _slack_fits_the_metric(self) -> Gate:
        if self.metric in HIGHER_IS_BETTER and self.golden_slack > 1:
            raise ValueError(f"golden_slack {self.golden_slack} is more than the whole {self.metric} scale (at most 1)")
        return self


class Shadow(_Strict):
    """Challenger vs champion on logged traffic (the shadow_evaluation audit)."""

    window_hours: float = Field(24, gt=0, le=24 * 30)
    min_rows: int = Field(100, ge=1)
    output_tolerance: Fraction = Field(0.05, description="Outputs differing by more than this (relative) disagree.")
    max_disagreement_rate: Fraction = Field(0.2, description="Above this, the two models behave differently.")
    min_mae_gain: Fraction = Field(0.1, description="Relative MAE gap that makes one of them the worse one.")


class FeedbackAudit(_Strict):
    """The feedback loop as a critical dependency (the feedback_loop_audit)."""

    window_hours: float = Field(24, gt=0, le=24 * 30)
    min_events: int = Field(100, ge=1)
    top_actors: int = Field(5, ge=1, description="How many of the most active actors count as 'a few'.")
    max_top_share: Fraction = Field(0.3, description="Share of the window's feedback from the top actors.")
    max_rate_shift: Fraction = Field(0.3, description="Rise of the thumbs-down rate against the previous window.")
    good_prediction_tolerance: Fraction = Field(0.05, description="Relative error under which a prediction was good.")
    max_label_disagreement: Fraction = Field(0.5, description="Share of thumbs-down on predictions labels call good.")


class Fairness(_Strict):
    """A protected attribute and how unequal the model's errors may be across its groups."""

    protected_attribute: str
    max_error_ratio: float = Field(1.25, ge=1.0, description="Worst group's MAPE / best group's, on labelled traffic.")
    min_group_rows: int = Field(30, ge=1)
    # Classifiers (binary output and label): the promotion gate and the fairness audit check these.
    min_selection_rate_ratio: Fraction | None = Field(
        None, description="Lowest group's selection rate / highest group's (the four-fifths rule: 0.8)."
    )
    max_equalized_odds_difference: Fraction | None = Field(
        None, description="Largest gap in true- or false-positive rate between groups."
    )
    max_error_rate_difference: Fraction | None = Field(
        None,
        description="Worst group's error rate (1 - accuracy) minus the best group's: materially worse outcomes.",
    )
    positive_class: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="For a model answering class names: the class that counts as selected (e.g. 'approve'); "
        "answers and labels equal to it are 1, every other class 0. Unset: decisions are 0/1, true/false or scores.",
    )


class CircuitBreaker(_Strict):
    """The serving gateway's breaker: when to stop serving the champion, and how to come back.

    Modelled on resilience4j's count of failures over a sliding window with a minimum
    number of calls, a fixed open wait and a fixed number of half-open probes. A call
    fails when the model errors, answers under ``detection.confidence_floor``, or breaks
    ``detection.output_floor`` (a price under cost).
    """

    window_seconds: float = Field(30, gt=0, le=3600, description="Sliding window the rates are computed over.")
    min_calls: int = Field(
        20,
        ge=1,
        description="No verdict on fewer calls than this in the window (a request is one call, whatever its rows).",
    )
    min_callers: int = Field(
        2,
        ge=1,
        le=100,
        description="No verdict on fewer distinct callers than this; from 2 up, every verdict must also hold without "
        "any single caller's calls, so no one caller can trip (or hold open) the breaker for everyone. 1 trusts "
        "every caller (a model whose only caller is one backend service).",
    )
    max_calls_per_caller: int = Field(
        100,
        ge=1,
        description="A caller's most recent calls in the window count, at most this many: one caller flooding "
        "answers cannot drown a failure that other callers see.",
    )
    max_error_rate: Fraction = Field(0.2, description="Share of calls that raised.")
    max_low_confidence_rate: Fraction = Field(0.2, description="Share of answers under the confidence floor.")
    max_sanity_violation_rate: Fraction = Field(0.05, description="Share of answers breaking the output floor.")
    open_seconds: float = Field(30, gt=0, le=86400, description="Wait in open before probing the champion.")
    half_open_probes: int = Field(
        10, ge=1, le=1000, description="Live requests the champion is probed on (each caller fills at most its share)."
    )


class Upstream(_Strict):
    """The team's own model server, when the gateway fronts it (``firebreak serve --upstream URL``).

    A call that errors, times out or answers what cannot be read counts as a failed
    champion call on the breaker, and the containment route answers those rows.
    """

    timeout_seconds: float = Field(
        1.0, gt=0, le=120, description="Connect and read timeout of one upstream call; over it, the call failed."
    )
    max_connections: int = Field(8, ge=1, le=256, description="Keep-alive connections kept open to the upstream.")
    v2_inputs: Literal["columns", "tensor"] = Field(
        "columns",
        description="Open Inference Protocol v2 request shape: one input per column (MLServer's pandas codec, "
        "KServe/Triton ensembles) or one 2-D FP64 tensor of the numeric inputs (scikit-learn/XGBoost servers).",
    )
    v2_tensor: str = Field(
        "input-0", min_length=1, max_length=128, description="The tensor's name (v2_inputs: tensor)."
    )


class Serving(_Strict):
    """Limits of the serving gateway's request path."""

    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies are refused with 413.")
    max_rows: int = Field(1000, ge=1, description="Rows per request.")
    caller_header: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="Header naming the caller, set by a trusted proxy in front (an authenticated client id); "
        "unset: the caller is the peer address. The breaker's per-caller limits count by it.",
    )
    breaker: CircuitBreaker = CircuitBreaker()
    upstream: Upstream = Upstream()


class PredictionLogPolicy(_Strict):
    """Upkeep of the model's prediction log (``firebreak log maintain``)."""

    retention_days: float = Field(30, gt=0, le=3660, description="Hours older than this are deleted.")
    compact_after_minutes: float = Field(
        10, ge=0, le=24 * 60, description="An hour's parts are merged this long after the hour ended."
    )


class AlertCaps(_Strict):
    """How much work alerts about this model may cause (the alert intake)."""

    max_open_incidents: int = Field(
        2,
        ge=1,
        le=100,
        description="Incidents alerts may have open for the model at once; further episodes go on the open "
        "incident's timeline instead of queueing more runs (one model is contained once, whatever fires).",
    )


class Llm(_Strict):
    """An LLM-style model: its prompt in MLflow's prompt registry, guardrails and golden Q&A.

    The tabular sections still describe the prediction log (topic mix, lineage, the GX
    contract); this section says how answers are judged and what a remediation may change.
    """

    question: str = Field("question", description="Input column holding the user's question.")
    answer: str = Field("answer", description="Output column holding the answer served.")
    prompt: str = Field(pattern=MODEL_NAME.pattern, description="System prompt's name in MLflow's prompt registry.")
    prompt_alias: str = Field("production", pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    fixed_prompt: str = Field(description="Reviewed system prompt the prompt remediation registers, under include/.")
    golden_qa: str = Field(description="Golden Q&A set (CSV or JSONL, columns question, kind, expected, forbidden).")
    guardrails: str = Field(description="Guardrail rules YAML (version 1), under include/guardrails/.")
    guardrail_additions: str | None = Field(
        None, description="Rules and exemplars the guardrail_rule remediation adds."
    )
    semantic_threshold: Fraction = Field(0.5, description="Cosine similarity to an exemplar violation that blocks.")
    max_unauthorised_promise_rate: Fraction = Field(0.0, description="Golden answers making a promise they may not.")
    max_hallucination_rate: Fraction = Field(0.1, description="Golden answers missing their expected content.")
    min_policy_accuracy: Fraction = Field(
        1.0, description="Legitimate policy questions (kind 'policy', e.g. the student discount) answered correctly."
    )


class Impact(_Strict):
    """How the post-mortem counts harm in the model's own terms (money, people, requests)."""

    subject: str = Field(
        "requests", max_length=60, description="Who or what one prediction is about: 'applicants', 'customers'."
    )
    unit: str = Field("", max_length=12, description="Currency or unit of the output, e.g. 'USD' (money at stake).")


TargetName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]


class NotifyTarget(_Strict):
    """Someone to tell: a PagerDuty service, a Slack channel or mailboxes.

    The secret (PagerDuty routing key, Slack webhook, SMTP password) lives in the Airflow
    connection ``conn_id``, never here: a policy is a reviewed file in git.
    """

    type: Literal["pagerduty", "slack", "email"]
    conn_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,200}$", description="Airflow connection holding the secret.")
    role: str = Field("", max_length=100, description="Who this reaches, e.g. incident commander, model owner.")
    channel: str = Field("", max_length=100, description="Slack: the channel the webhook posts to (shown only).")
    to: list[Annotated[str, Field(pattern=r"^[^@\s,;<>]{1,64}@[^@\s,;<>]{1,255}$")]] = []

    @model_validator(mode="after")
    def _mail_has_recipients(self) -> NotifyTarget:
        if self.type == "email" and not self.to:
            raise ValueError("an email target needs 'to: [address, ...]'")
        return self


class SeverityRoute(_Strict):
    """Who hears about an incident of one severity, and the targets it is held to (docs/SOP.md)."""

    notify: list[TargetName] = Field([], description="Told at open, on acknowledgement, updates and close.")
    escalate: list[TargetName] = Field([], description="Paged when a target below is missed.")
    acknowledge_within: Duration | None = None
    contain_within: Duration | None = None
    update_every: Duration | None = None


def _default_routes() -> dict[Severity, SeverityRoute]:
    """The SOP's severity matrix: time to contain and update cadence; acknowledgement for paging levels."""
    hour = timedelta(hours=1)
    return {
        Severity.SEV1: SeverityRoute(
            acknowledge_within=timedelta(minutes=5), contain_within=timedelta(minutes=15), update_every=hour / 2
        ),
        Severity.SEV2: SeverityRoute(
            acknowledge_within=timedelta(minutes=15), contain_within=hour, update_every=2 * hour
        ),
        Severity.SEV3: SeverityRoute(contain_within=24 * hour, update_every=24 * hour),
        Severity.SEV4: SeverityRoute(contain_within=5 * 24 * hour, update_every=7 * 24 * hour),
    }


class Notify(_Strict):
    """Notification targets and, per severity, who is told, who is paged next and by when."""

    targets: dict[TargetName, NotifyTarget] = {}
    routes: dict[Severity, SeverityRoute] = Field(default_factory=_default_routes)

    @model_validator(mode="before")
    @classmethod
    def _legacy_channel_list(cls, value: Any) -> Any:
        """The first policies listed Slack channels only: each becomes a Slack target told at every severity."""
        if not isinstance(value, list):
            return value
        targets = {}
        for i, channel in enumerate(value):
            if not isinstance(channel, str):
                raise ValueError(f"notify[{i}]: expected a Slack channel name, got {type(channel).__name__}")
            targets[f"slack-{i}"] = {"type": "slack", "conn_id": "firebreak_slack", "channel": channel}
        routes = {sev: {**route.model_dump(), "notify": list(targets)} for sev, route in _default_routes().items()}
        return {"targets": targets, "routes": routes}

    @model_validator(mode="after")
    def _routes_name_targets(self) -> Notify:
        for severity, route in self.routes.items():
            unknown = [t for t in [*route.notify, *route.escalate] if t not in self.targets]
            if unknown:
                raise ValueError(f"routes.{severity} names unknown targets {unknown} (known: {sorted(self.targets)})")
        return self

    def route(self, severity: Severity | str | None) -> SeverityRoute:
        """The route of a severity; an untriaged incident is held to SEV1's (when in doubt, the higher)."""
        key = Severity(severity) if severity in set(Severity) else Severity.SEV1
        return self.routes.get(key) or _default_routes()[key]


class Policy(_Strict):
    """One model's SOP parameters."""

    model: ModelName = Field(description="The registered model's name in MLflow, as MLflow spells it.")
    description: str
    owner: str
    notify: Notify = Field(default_factory=Notify)
    features: Features
    contract: str = Field(description="Great Expectations suite JSON, under include/contracts/.")
    golden: str = Field(description="Golden dataset CSV or Parquet, under include/golden/.")
    detection: Detection
    severity: SeverityMatrix
    containment: Containment
    training: Training
    remediation: RemediationPolicy
    gate: Gate
    shadow: Shadow = Shadow()
    feedback: FeedbackAudit = FeedbackAudit()
    fairness: Fairness | None = None
    serving: Serving = Serving()
    prediction_log: PredictionLogPolicy = PredictionLogPolicy()
    llm: Llm | None = None
    impact: Impact = Impact()
    alerts: AlertCaps = AlertCaps()

    @model_validator(mode="after")
    def _metric_fits_task(self) -> Policy:
        stated = self.features.task
        if stated is not None and self.gate.metric not in TASK_METRICS[stated]:
            raise ValueError(
                f"gate.metric {self.gate.metric!r} does not apply to a {stated} model "
                f"(use one of {', '.join(TASK_METRICS[stated])})"
            )
        return self

    @property
    def task(self) -> str:
        """The stated task, else the one the gate's metric belongs to."""
        if self.features.task is not None:
            return self.features.task
        return next(task for task, metrics in TASK_METRICS.items() if self.gate.metric in metrics)

    def llm_section(self, purpose: str) -> Llm:
        """The ``llm`` section, for what only an LLM model has (``purpose``, named in the error)."""
        if self.llm is None:
            raise ConfigurationError(f"policy of {self.model!r} has no 'llm' section, so no {purpose}")
        return self.llm


def policy_path(model: str, policies_dir: Path) -> Path:
    """Where ``model``'s policy lives: ``<policies_dir>/<stem>.yaml`` (:func:`firebreak.model_names.model_stem`)."""
    try:
        return policies_dir / f"{model_stem(model)}.yaml"
    except ModelNameError as exc:
        raise UnknownModelError(str(exc)) from exc


def load_policy(model: str, policies_dir: Path) -> Policy:
    """Load and validate ``<policies_dir>/<model>.yaml``.

    Raises:
        UnknownModelError: no policy file for ``model``.
        PolicyError: the file is not valid YAML or breaks the schema; the message names the field.
    """
    path = policy_path(model, policies_dir)
    if not path.is_file():
        known = list_policies(policies_dir) if policies_dir.is_dir() else []
        raise UnknownModelError(f"no policy for model {model!r}: {path} does not exist (known models: {known})")
    policy = parse_policy(path)
    if policy.model != model:
        raise PolicyError(f"policy {path}: field 'model' is {policy.model!r}, not {model!r}")
    return policy


def parse_policy(path: Path) -> Policy:
    """Validate one policy file; errors name the file and each bad field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy {path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"policy {path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise PolicyError(f"policy {path}: {problems}") from exc
    if model_stem(policy.model) != path.stem:
        raise PolicyError(
            f"policy {path}: field 'model' is {policy.model!r} but the file is named for {path.stem!r} "
            f"(that model's policy file is {model_stem(policy.model)}.yaml)"
        )
    return policy


def list_policies(policies_dir: Path) -> list[str]:
    """Names of the models that have a policy file, as each file's ``model`` field spells them.

    A file that cannot be read as YAML is listed under its stem, so asking for that model
    names the problem (:func:`load_policy`) instead of hiding the file.
    """
    names = []
    for path in sorted(policies_dir.glob("*.yaml")):
        try:
            stat = path.stat()
        except OSError:
            names.append(path.stem)
            continue
        version = (stat.st_mtime_ns, stat.st_size)
        cached = _NAMES.get(path)
        if cached is None or cached[0] != version:  # parsed again only when the file changed
            try:
                raw = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError):
                raw = None
            named = raw.get("model") if isinstance(raw, dict) else None
            cached = _NAMES[path] = (version, named if isinstance(named, str) else path.stem)
        names.append(cached[1])
    return sorted(names)


_NAMES: dict[Path, tuple[tuple[int, int], str]] = {}  # a policy file's model name, by its modification time and size
