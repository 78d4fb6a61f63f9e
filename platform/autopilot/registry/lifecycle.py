"""The registry contract and its lifecycle rules, shared by both backends.

:class:`Registry` is the abstract registry: backends implement storage
(register, get, list, load, aliases, tags, champion history); the moves
between statuses live here so the MLflow store and the in-memory twin behave
identically.

Each version carries a status tag (``autopilot.status``)::

    draft ──► testing ──► staging ──► production ──► archived
      │  │       │  │        │            ▲    ▲         │
      │  └───────┼──┴────────┼── promote ─┘    └─ rollback┘
      └──────────┴───────────┴──► archived

- :meth:`Registry.register` creates a ``draft``.
- :meth:`Registry.transition` makes the ordinary moves
  (draft→testing→staging, and any of them →archived). Moves into or out of
  ``production`` belong to :meth:`~Registry.promote` and
  :meth:`~Registry.rollback`, which also move the aliases and the champion
  history; asking ``transition`` for them raises :class:`TransitionError`.
- :meth:`Registry.promote` makes a draft, testing, staging or archived version
  the ``champion`` (status ``production``). The old champion is **archived**
  and gets the ``previous`` alias; a ``challenger`` alias on the promoted
  version is removed. The version is appended to the champion history, which
  lives in the registry itself (a registered-model tag), so it survives a
  restart of the process that promoted.
- :meth:`Registry.rollback` retires the current champion (archived, tagged
  ``autopilot.rolled_back_at``), removes it from the history, and makes the
  previous history entry champion again (``production``). Repeated rollbacks
  walk further back; with no earlier champion it raises ``VersionNotFound``.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

from autopilot.errors import RegistryError, TransitionError, VersionNotFound
from autopilot.registry.versions import (
    RESERVED_TAGS,
    ROLLED_BACK_TAG,
    STATUS_TAG,
    Lineage,
    LoadedModel,
    ModelVersion,
)
from autopilot.schema import FeatureSchema

__all__ = ["ALIASES", "HISTORY_KEEP", "STATUSES", "TRANSITIONS", "Registry"]

STATUSES = ("draft", "testing", "staging", "production", "archived")
#: Every allowed status move. Those into or out of ``production`` happen only
#: through :meth:`Registry.promote` and :meth:`Registry.rollback`.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"testing", "archived", "production"}),
    "testing": frozenset({"staging", "archived", "production"}),
    "staging": frozenset({"archived", "production"}),
    "production": frozenset({"archived"}),
    "archived": frozenset({"production"}),
}
ALIASES = ("champion", "challenger", "previous")
HISTORY_KEEP = 500  # history entries kept (a registry tag holds up to 100 kB)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise TransitionError(f"unknown status {status!r}; statuses are {STATUSES}")


class Registry(abc.ABC):
    """Model versions, aliases, lifecycle and champion history.

    Subclasses implement storage (:meth:`register`, :meth:`get`,
    :meth:`list_versions`, :meth:`load`, aliases, tags and the history);
    the lifecycle rules (:meth:`transition`, :meth:`promote`,
    :meth:`rollback`) live here so both backends behave identically.
    """

    # -- storage, per backend -------------------------------------------------

    @abc.abstractmethod
    def register(
        self,
        name: str,
        model: Any,
        *,
        schema: FeatureSchema,
        lineage: Lineage,
        reference_profile: dict | None = None,
        input_example: pd.DataFrame | None = None,
        run_id: str | None = None,
    ) -> ModelVersion:
        """Store ``model`` as a new ``draft`` version with its lineage and hash."""

    @abc.abstractmethod
    def get(self, name: str, version: str | int) -> ModelVersion:
        """One version; ``VersionNotFound`` when absent."""

    @abc.abstractmethod
    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first (empty when the model is unknown)."""

    @abc.abstractmethod
    def load(self, name: str, version: str | int) -> LoadedModel:
        """Verify the artifact's SHA-256, then unpickle; ``IntegrityError`` on mismatch."""

    @abc.abstractmethod
    def alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version an alias points at, or ``None``."""

    @abc.abstractmethod
    def _set_alias(self, name: str, alias: str, version: str) -> None: ...

    @abc.abstractmethod
    def _delete_alias(self, name: str, alias: str) -> None: ...

    @abc.abstractmethod
    def _write_tag(self, name: str, version: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def _read_history(self, name: str) -> list[str]: ...

    @abc.abstractmethod
    def _write_history(self, name: str, history: list[str]) -> None: ...

    # -- aliases and tags ---------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: str | int) -> None:
        """Point ``alias`` at ``version`` (``champion`` moves only by promote/rollback)."""
        if alias == "champion":
            raise RegistryError("the 'champion' alias moves only through promote() or rollback()")
        v = self.get(name, version)
        self._set_alias(name, alias, v.version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` if it exists (``champion`` moves only by promote/rollback)."""
        if alias == "champion":
            raise RegistryError("the 'champion' alias moves only through promote() or rollback()")
        self._delete_alias(name, alias)

    def set_tag(self, name: str, version: str | int, key: str, value: Any) -> None:
        """Set a free-form version tag (the status, hash and lineage tags are reserved)."""
        if key in RESERVED_TAGS:
            raise RegistryError(f"tag {key!r} is managed by the registry and cannot be set")
        v = self.get(name, version)
        self._write_tag(name, v.version, key, str(value))

    def champion_history(self, name: str) -> list[str]:
        """Versions that were champion, oldest first; the last is the current one."""
        return list(self._read_history(name))

    # -- lifecycle -----------------------------------------------------------------

    def transition(self, name: str, version: str | int, status: str) -> ModelVersion:
        """Move a version along the lifecycle (not into or out of ``production``).

        Raises
        ------
        TransitionError
            Unknown status, a move :data:`TRANSITIONS` does not allow, or a move
            into/out of ``production`` (use :meth:`promote` / :meth:`rollback`).
        """
        _check_status(status)
        v = self.get(name, version)
        if status == v.status:
            return v
        if status not in TRANSITIONS[v.status]:
            raise TransitionError(
                f"{name} v{v.version}: transition {v.status} -> {status} is not allowed "
                f"(allowed from {v.status}: {sorted(TRANSITIONS[v.status]) or 'none'})"
            )
        if "production" in (status, v.status):
            raise TransitionError(
                f"{name} v{v.version}: transition {v.status} -> {status} changes the champion; "
                "use promote() or rollback()"
            )
        self._write_tag(name, v.version, STATUS_TAG, status)
        return self.get(name, v.version)

    def promote(self, name: str, version: str | int) -> ModelVersion:
        """Make ``version`` the champion (status ``production``).

        The old champion becomes ``archived`` with the ``previous`` alias; a
        ``challenger`` alias on the promoted version is removed; the version is
        appended to the champion history. Promoting the current champion
        returns it unchanged.

        Raises
        ------
        VersionNotFound
            No such version.
        TransitionError
            The version's status cannot move to ``production``.
        """
        v = self.get(name, version)
        current = self.alias(name, "champion")
        if current is not None and current.version == v.version:
            return v
        if "production" not in TRANSITIONS[v.status]:
            raise TransitionError(
                f"{name} v{v.version}: transition {v.status} -> production is not allowed"
            )
        history = self._read_history(name)
        # Order: statuses, then aliases, then history, so a failure part-way leaves the
        # champion alias (what serving follows) on the old version.
        if current is not None:
            self._write_tag(name, current.version, STATUS_TAG, "archived")
        self._write_tag(name, v.version, STATUS_TAG, "production")
        if current is not None:
            self._set_alias(name, "previous", current.version)
        self._set_alias(name, "champion", v.version)
        challenger = self.alias(name, "challenger")
        if challenger is not None and challenger.version == v.version:
            self._delete_alias(name, "challenger")
        self._write_history(name, [*history, v.version])
        return self.get(name, v.version)

    def rollback(self, name: str) -> ModelVersion:
        """Return to the last good champion in one call.

        The current champion is archived, tagged ``autopilot.rolled_back_at``
        and dropped from the history; the newest earlier history entry that
        still exists becomes champion (``production``), and ``previous`` moves
        to the entry before it (or is removed).

        Raises
        ------
        VersionNotFound
            There is no champion, or no earlier champion to return to.
        """
        current = self.alias(name, "champion")
        if current is None:
            raise VersionNotFound(f"model {name!r} has no champion to roll back from")
        history = [h for h in self._read_history(name) if h != current.version]
        target: ModelVersion | None = None
        while history:
            try:
                target = self.get(name, history[-1])
                break
            except VersionNotFound:
                history.pop()  # deleted outside Autopilot: skip it
        if target is None:
            raise VersionNotFound(
                f"model {name!r}: no earlier champion to roll back to from v{current.version}"
            )
        self._write_tag(name, current.version, STATUS_TAG, "archived")
        self._write_tag(name, current.version, ROLLED_BACK_TAG, f"{time.time():.3f}")
        self._write_tag(name, target.version, STATUS_TAG, "production")
        self._set_alias(name, "champion", target.version)
        if len(history) >= 2:
            self._set_alias(name, "previous", history[-2])
        else:
            self._delete_alias(name, "previous")
        self._write_history(name, history)
        return self.get(name, target.version)
