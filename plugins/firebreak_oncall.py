"""Airflow plugin: the on-call loop's Airflow side — delivery, deadlines, the approval step.

Imported by ``dags/incident_response.py`` at parse time, so this module imports only Airflow
at module level; everything of Firebreak is imported inside the functions that run.

- :class:`OutboxNotifier` — a ``BaseNotifier`` the DAG's task callbacks run: it delivers the
  incident's pending notifications (pages, Slack, mail) through Airflow's notifiers right
  after each stage that enqueued some (``firebreak.oncall.notifiers``).
- :class:`IncidentDeadline` — a custom Deadline Alert reference: when the run was queued plus
  the severity route's target in the model's policy (``acknowledge_within``,
  ``contain_within``, ``update_every``). Registered below, so the scheduler and the
  api-server can evaluate it. :func:`on_deadline` is the callback: it escalates, posts the
  cadence update, or records why nothing was needed (``firebreak.oncall.escalation``).
- :class:`IncidentApproval` — Airflow's human-in-the-loop ``ApprovalOperator`` that asks only
  when the policy requires an approval, and judges the answer with the policy's rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseNotifier
from airflow.sdk.definitions.deadline import BaseDeadlineReference
from airflow.sdk.exceptions import AirflowFailException

log = logging.getLogger(__name__)

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")  # firebreak.incidents.enums.Severity (a DAG test checks)
CADENCE_UPDATES = 3  # firebreak.oncall.escalation.UPDATES_SCHEDULED


def _incident_id(conf: dict[str, Any] | None, run_id: str) -> str:
    from firebreak.incidents.identity import incident_id_from_conf

    return incident_id_from_conf(conf or {}, run_id)


class OutboxNotifier(BaseNotifier):
    """Deliver this run's incident's pending notifications (a task callback)."""

    template_fields = ()

    def notify(self, context: Any) -> None:
        try:
            from firebreak.oncall.notifiers import deliver_now

            run = context["dag_run"]
            done = deliver_now(_incident_id(run.conf, run.run_id))
            if done.sent or done.failed or done.pending:
                log.info("notifications: %s sent, %s failed, %s to retry", done.sent, done.failed, done.pending)
        except Exception:  # a notification problem must never turn into a task failure; it stays in the outbox
            log.exception("delivering the incident's notifications failed; they stay pending in the outbox")


@dataclass
class IncidentDeadline(BaseDeadlineReference):
    """When the run was queued plus the model's policy target for ``severity`` (None: no deadline).

    A run whose severity is ``auto`` gets every severity's deadlines (triage has not spoken
    yet); each callback acts only if the incident turned out to be of its severity.
    """

    severity: str = "SEV1"
    target: str = "acknowledge"
    nth: int = 1

    required_kwargs = {"dag_id", "run_id"}  # noqa: RUF012 — Airflow reads this class attribute

    def serialize_reference(self) -> dict[str, Any]:
        return {
            "reference_type": self.reference_name,
            "severity": self.severity,
            "target": self.target,
            "nth": self.nth,
        }

    @classmethod
    def deserialize_reference(cls, reference_data: dict[str, Any]) -> IncidentDeadline:
        return cls(str(reference_data["severity"]), str(reference_data["target"]), int(reference_data.get("nth", 1)))

    def _evaluate_with(self, *, session: Any, **kwargs: Any) -> datetime | None:
        try:
            return self._due(session, kwargs["dag_id"], kwargs["run_id"])
        except Exception:  # a deadline must never stop an incident's run from being created
            log.exception("no %s %s deadline for run %s", self.severity, self.target, kwargs.get("run_id"))
            return None

    def _due(self, session: Any, dag_id: str, run_id: str) -> datetime | None:
        from airflow.models import DagRun
        from sqlalchemy import select

        from firebreak.incidents.enums import Severity
        from firebreak.oncall.escalation import Target, deadline_after_opening
        from firebreak.policy.schema import load_policy
        from firebreak.settings import Settings

        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            return None
        conf = run.conf or {}
        if conf.get("dry_run") or conf.get("severity", "auto") not in ("auto", self.severity):
            return None
        policy = load_policy(str(conf.get("model", "")), Settings.from_env().policies_dir)
        delta = deadline_after_opening(policy, Severity(self.severity), Target(self.target), self.nth)
        if delta is None:
            return None
        base = run.queued_at or run.start_date or datetime.now(UTC)
        return base + delta


def on_deadline(severity: str, target: str, nth: int = 1, context: dict[str, Any] | None = None) -> str:
    """A Deadline Alert's callback: escalate, post a cadence update, or say why not; then deliver."""
    from firebreak.incidents.enums import Severity
    from firebreak.oncall.escalation import Target
    from firebreak.oncall.escalation import on_deadline as decide
    from firebreak.oncall.notifiers import deliver_now

    run = (context or {}).get("dag_run", {})
    incident_id = _incident_id(run.get("conf"), run.get("dag_run_id") or run.get("run_id") or "")
    due = (context or {}).get("deadline", {}).get("deadline_time")
    deadline = datetime.fromisoformat(due) if isinstance(due, str) else due
    outcome = decide(incident_id, Severity(severity), Target(target), nth, deadline=deadline)
    if outcome.acted:
        deliver_now(incident_id)
    log.info("deadline %s %s #%s for %s: %s", severity, target, nth, incident_id, outcome.reason)
    return outcome.reason


class IncidentApproval(ApprovalOperator):
    """The approver's step after a passed gate, asked only when the policy requires it.

    Not required: the task succeeds at once. Required: the run waits (``awaiting_input``,
    under Required Actions in the UI, answerable through the REST API) with the gate report
    as the body; the answer is judged by the policy's rules. Anything but a permitted
    Approve fails the task: ``promote`` and ``restore_traffic`` never run, traffic stays on
    the fallback and the incident ends ``contained_needs_human`` saying who and why.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Approve the promotion")
        super().__init__(**kwargs)

    def execute(self, context: Any) -> Any:
        from firebreak.errors import FirebreakError
        from firebreak.stages import approval_request

        run = context["dag_run"]
        try:
            asked = approval_request(_incident_id(run.conf, run.run_id))
        except FirebreakError as exc:
            raise AirflowFailException(str(exc)) from exc
        if not asked["required"]:
            self.log.info("no approval needed: the policy does not require one, or there is nothing to promote")
            return {"required": False}
        self.subject = asked["subject"]
        self.body = asked["body"]
        self.response_timeout = timedelta(seconds=asked["timeout_seconds"])
        if asked["approvers"]:
            self.assigned_users = [{"id": name, "name": name} for name in asked["approvers"]]
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from firebreak.errors import FirebreakError
        from firebreak.stages import record_approval

        run = context["dag_run"]
        user = event.get("responded_by_user") or {}
        by = user.get("name") or user.get("id") if isinstance(user, dict) else None
        timed_out = event.get("error_type") == "timeout" or bool(event.get("timedout"))
        try:
            record_approval(
                _incident_id(run.conf, run.run_id),
                chosen=list(event.get("chosen_options") or []),
                by=by,
                timed_out=timed_out,
            )
        except FirebreakError as exc:
            raise AirflowFailException(str(exc)) from exc
        return {"approved": True, "by": by}


class FirebreakOncallPlugin(AirflowPlugin):
    name = "firebreak_oncall"
    deadline_references = [IncidentDeadline]
