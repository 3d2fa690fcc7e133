"""The append-only alias ledger: every alias move, with who, when, why and which incident.

MLflow keeps no history of alias moves; :meth:`firebreak.registry.mlflow_registry.Registry.move_alias`
writes a ``pending`` row here before the registry call and marks it ``applied`` or ``failed`` after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from firebreak.state_db import Store, metadata, utcnow

alias_ledger = sa.Table(
    "alias_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(100), nullable=False, index=True),
    sa.Column("alias", sa.String(60), nullable=False),
    sa.Column("old_version", sa.String(20)),
    sa.Column("new_version", sa.String(20)),
    sa.Column("incident_id", sa.String(80)),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    # pending -> applied | failed: the row is written before the registry call, so a
    # crash between the two leaves a visible pending row instead of a silent gap.
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    # The artifact digest of new_version this move verified (firebreak.registry.verification):
    # loaders compare a version's artifacts with it. None on rows written before digests existed.
    sa.Column("digest", sa.String(80)),
    # The person who signed the move off when the policy requires an approval (the approver of a promotion).
    sa.Column("approved_by", sa.String(100)),
)

# The digest of every version Firebreak registered, recorded right after logging it: a version
# is loadable before any alias points at it (a candidate's golden figures, the scenario's traffic).
verified_artifacts = sa.Table(
    "verified_artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(100), nullable=False, index=True),
    sa.Column("version", sa.String(20), nullable=False),
    sa.Column("digest", sa.String(80), nullable=False),
    sa.Column("recorded_by", sa.String(100), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    model: str
    alias: str
    old_version: str | None
    new_version: str | None
    incident_id: str | None
    actor: str
    reason: str
    status: str
    at: datetime
    digest: str | None = None
    approved_by: str | None = None


class AliasLedger(Store):
    """Typed access to the alias ledger."""

    tables = (alias_ledger, verified_artifacts)

    # -- alias ledger --------------------------------------------------------------

    def begin_move(
        self,
        *,
        model: str,
        alias: str,
        old: str | None,
        new: str | None,
        incident_id: str | None,
        actor: str,
        reason: str,
        at: datetime | None = None,
        digest: str | None = None,
        approved_by: str | None = None,
    ) -> int:
        """Write a ``pending`` row before the registry call (``at``: now, unless replaying a record)."""
        with self.begin() as conn:
            result = conn.execute(
                alias_ledger.insert().values(
                    model=model,
                    alias=alias,
                    old_version=old,
                    new_version=new,
                    incident_id=incident_id,
                    actor=actor,
                    reason=reason,
                    status="pending",
                    at=at or utcnow(),
                    digest=digest,
                    approved_by=approved_by,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def finish_move(self, entry_id: int, status: str) -> None:
        with self.begin() as conn:
            conn.execute(alias_ledger.update().where(alias_ledger.c.id == entry_id).values(status=status))

    def mark(self, model: str) -> str:
        """The model's last alias-ledger row and its status: changes whenever an alias moves.

        The status matters: a row is written ``pending`` before MLflow moves the alias and
        turns ``applied`` after, so a reader between the two still sees the move later.
        """
        with self.begin() as conn:
            row = conn.execute(
                sa.select(alias_ledger.c.id, alias_ledger.c.status)
                .where(alias_ledger.c.model == model)
                .order_by(alias_ledger.c.id.desc())
                .limit(1)
            ).first()
        return f"{row.id}:{row.status}" if row else "none"

    def moved_at(self, model: str, alias: str, version: str) -> datetime | None:
        """When ``alias`` last moved to ``version`` (applied), or None when the ledger never saw it."""
        with self.begin() as conn:
            at = conn.execute(
                sa.select(alias_ledger.c.at)
                .where(
                    alias_ledger.c.model == model,
                    alias_ledger.c.alias == alias,
                    alias_ledger.c.new_version == version,
                    alias_ledger.c.status == "applied",
                )
                .order_by(alias_ledger.c.id.desc())
                .limit(1)
            ).scalar()
        return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at

    def record_registered(self, model: str, version: str, digest: str, *, by: str) -> None:
        """The digest of a version Firebreak just registered."""
        with self.begin() as conn:
            conn.execute(
                verified_artifacts.insert().values(
                    model=model, version=version, digest=digest, recorded_by=by[:100], at=utcnow()
                )
            )

    def digests(self, model: str, version: str) -> set[str]:
        """Every digest Firebreak recorded for the version: at registration and on applied alias moves."""
        with self.begin() as conn:
            registered = conn.execute(
                sa.select(verified_artifacts.c.digest).where(
                    verified_artifacts.c.model == model, verified_artifacts.c.version == version
                )
            ).scalars()
            moved = conn.execute(
                sa.select(alias_ledger.c.digest).where(
                    alias_ledger.c.model == model,
                    alias_ledger.c.new_version == version,
                    alias_ledger.c.status == "applied",
                    alias_ledger.c.digest.is_not(None),
                )
            ).scalars()
            return {*registered, *moved}

    def last_move(self, model: str, alias: str) -> tuple[bool, str | None]:
        """(whether the ledger ever applied a move of ``alias``, the version it last moved it to)."""
        with self.begin() as conn:
            row = conn.execute(
                sa.select(alias_ledger.c.new_version)
                .where(alias_ledger.c.model == model, alias_ledger.c.alias == alias, alias_ledger.c.status == "applied")
                .order_by(alias_ledger.c.id.desc())
                .limit(1)
            ).first()
        return (row is not None, row.new_version if row is not None else None)

    def entries(self, model: str) -> list[LedgerEntry]:
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(alias_ledger).where(alias_ledger.c.model == model).order_by(alias_ledger.c.id)
            ).mappings()
            return [LedgerEntry(**r) for r in rows]

    def forget_model(self, model: str) -> None:
        """Delete the model's ledger rows (demo resets only; production never calls this)."""
        with self.begin() as conn:
            conn.execute(alias_ledger.delete().where(alias_ledger.c.model == model))
            conn.execute(verified_artifacts.delete().where(verified_artifacts.c.model == model))
