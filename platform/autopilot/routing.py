"""The routing table and the pure rule that picks a version for a request.

The table (which versions are live, their weights, the mode) belongs to the
controller; the endpoint's replicas hold the last copy they received and call
:func:`choose_version` per request. No Ray, no I/O: this module is plain data
and arithmetic so both sides can test it in milliseconds.

Sticky routing uses *weighted rendezvous hashing*: for a caller key ``k`` and
each arm ``i`` with weight ``w_i > 0``, draw ``u_i = H(k, version_i)`` uniform
in (0, 1) from SHA-256 (stable across processes, unlike ``hash()``) and pick the
arm with the smallest ``-ln(u_i) / w_i``. Each term is an exponential variable
with rate ``w_i``, so arm ``i`` wins with probability exactly ``w_i / sum(w)``;
and because a key's score for an arm never depends on the other arms, changing
one arm's weight only moves keys to or from *that* arm (the fewest users move),
and adding or removing an arm only moves the keys it wins or held.

Modes
-----
``split``
    A/B/n: the weights decide who answers.
``bandit``
    Same rule; the controller rewrites the weights from Thompson sampling.
``shadow``
    The champion answers every request; every challenger with weight > 0 (or
    any challenger when weights are all on the champion) receives a copy
    whose answer is recorded but never returned.

A ``paused`` table sends all traffic to the champion and makes no shadow
copies: an experiment on hold exposes nobody to the challenger.

Example
-------
>>> import numpy as np
>>> t = RoutingTable("churn", 3, "split",
...                  (Arm("4", 0.9, "champion"), Arm("5", 0.1, "challenger")), None)
>>> choose_version(t, "user-42", np.random.default_rng(0)) == \\
...     choose_version(t, "user-42", np.random.default_rng(1))
True
>>> RoutingTable.from_dict(t.to_dict()) == t
True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from autopilot.records import NAMESPACE

__all__ = [
    "CONTROLLER_ACTOR",
    "NAMESPACE",
    "Arm",
    "Mode",
    "Role",
    "RoutingTable",
    "choose_version",
    "key_unit",
    "shadow_versions",
]

#: Actor name the endpoint polls for tables and sends admin commands to, in the one
#: Ray namespace of every Autopilot actor (:data:`autopilot.records.NAMESPACE`):
#: ``ray.get_actor(CONTROLLER_ACTOR, namespace=NAMESPACE).routing_table.remote(model)``.
CONTROLLER_ACTOR = "autopilot-controller"

Mode = Literal["split", "shadow", "bandit"]
Role = Literal["champion", "challenger", "fallback"]
_MODES = ("split", "shadow", "bandit")
_ROLES = ("champion", "challenger", "fallback")
_WEIGHT_TOL = 1e-6


@dataclass(frozen=True)
class Arm:
    """One live version and its share of traffic.

    Parameters
    ----------
    version : str
        Registry version number, as a string (``"7"``).
    weight : float
        Share of traffic in [0, 1]; ignored for the ``fallback`` role.
    role : {"champion", "challenger", "fallback"}
    """

    version: str
    weight: float
    role: Role

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not self.version:
            raise ValueError(f"arm version must be a non-empty string, got {self.version!r}")
        if self.role not in _ROLES:
            raise ValueError(f"arm role must be one of {_ROLES}, got {self.role!r}")
        w = float(self.weight)
        if not math.isfinite(w) or w < 0.0:
            raise ValueError(f"arm {self.version!r} weight must be finite and >= 0, got {w!r}")
        object.__setattr__(self, "weight", w)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "weight": self.weight, "role": self.role}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Arm:
        return cls(str(raw["version"]), float(raw["weight"]), raw["role"])


@dataclass(frozen=True)
class RoutingTable:
    """Versions, weights and mode for one model; ``table_version`` only grows.

    Invariants (checked on construction, ``ValueError`` naming the problem):
    exactly one champion; distinct versions; weights >= 0 summing to 1 over the
    non-fallback arms; at most one fallback arm, and if there is one,
    ``fallback`` names it. ``fallback`` may also name a version that is not an
    arm (a previous good version kept loaded only for the breaker).
    """

    model: str
    table_version: int
    mode: Mode
    arms: tuple[Arm, ...]
    fallback: str | None = None
    paused: bool = False
    _weights: tuple[tuple[str, float], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty string, got {self.model!r}")
        if isinstance(self.table_version, bool) or not isinstance(self.table_version, int):
            raise TypeError(f"table_version must be an int, got {self.table_version!r}")
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {self.mode!r}")
        arms = tuple(self.arms)
        object.__setattr__(self, "arms", arms)
        if not arms:
            raise ValueError("a routing table needs at least one arm (the champion)")
        versions = [a.version for a in arms]
        dupes = sorted({v for v in versions if versions.count(v) > 1})
        if dupes:
            raise ValueError(f"versions must be distinct, repeated: {dupes}")
        champions = [a.version for a in arms if a.role == "champion"]
        if len(champions) != 1:
            raise ValueError(
                f"exactly one champion arm required, got {len(champions)}: {champions}"
            )
        fallbacks = [a.version for a in arms if a.role == "fallback"]
        if len(fallbacks) > 1:
            raise ValueError(f"at most one fallback arm, got {fallbacks}")
        if fallbacks and self.fallback != fallbacks[0]:
            raise ValueError(
                f"fallback={self.fallback!r} must name the fallback arm {fallbacks[0]!r}"
            )
        total = sum(a.weight for a in arms if a.role != "fallback")
        if abs(total - 1.0) > _WEIGHT_TOL:
            raise ValueError(f"weights of non-fallback arms must sum to 1, got {total:.6g}")
        if self.fallback is not None and (not isinstance(self.fallback, str) or not self.fallback):
            raise ValueError(
                f"fallback must be a non-empty version string or None, got {self.fallback!r}"
            )
        # Renormalise away the float tolerance once, so choose_version need not.
        live = tuple(
            (a.version, a.weight / total) for a in arms if a.role != "fallback" and a.weight > 0
        )
        object.__setattr__(self, "_weights", live)

    # ------------------------------------------------------------------ views

    @property
    def champion(self) -> str:
        """The champion's version."""
        return next(a.version for a in self.arms if a.role == "champion")

    @property
    def challengers(self) -> tuple[str, ...]:
        return tuple(a.version for a in self.arms if a.role == "challenger")

    @property
    def versions(self) -> tuple[str, ...]:
        """Every version the table needs loaded (arms, then a non-arm fallback)."""
        vs = tuple(a.version for a in self.arms)
        if self.fallback is not None and self.fallback not in vs:
            vs += (self.fallback,)
        return vs

    def weights(self) -> dict[str, float]:
        """Version -> weight over the non-fallback arms."""
        return {a.version: a.weight for a in self.arms if a.role != "fallback"}

    # ----------------------------------------------------------- conversions

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "table_version": self.table_version,
            "mode": self.mode,
            "arms": [a.to_dict() for a in self.arms],
            "fallback": self.fallback,
            "paused": self.paused,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RoutingTable:
        """Inverse of :meth:`to_dict`; a missing key raises ``ValueError`` naming it."""
        missing = [k for k in ("model", "table_version", "mode", "arms") if k not in raw]
        if missing:
            raise ValueError(f"routing table dict lacks keys {missing}")
        return cls(
            model=str(raw["model"]),
            table_version=int(raw["table_version"]),
            mode=raw["mode"],
            arms=tuple(Arm.from_dict(a) for a in raw["arms"]),
            fallback=None if raw.get("fallback") is None else str(raw["fallback"]),
            paused=bool(raw.get("paused", False)),
        )

    def with_weights(
        self, weights: Mapping[str, float], table_version: int | None = None
    ) -> RoutingTable:
        """A copy with new weights for the named arms (others keep theirs).

        >>> arms = (Arm("1", 1.0, "champion"), Arm("2", 0.0, "challenger"))
        >>> t = RoutingTable("m", 1, "split", arms)
        >>> t.with_weights({"1": 0.5, "2": 0.5}).weights()
        {'1': 0.5, '2': 0.5}
        """
        unknown = sorted(set(weights) - {a.version for a in self.arms})
        if unknown:
            raise ValueError(f"set_weights names versions that are not arms: {unknown}")
        arms = tuple(
            Arm(a.version, float(weights.get(a.version, a.weight)), a.role) for a in self.arms
        )
        tv = self.table_version + 1 if table_version is None else table_version
        return RoutingTable(self.model, tv, self.mode, arms, self.fallback, self.paused)


# ------------------------------------------------------------------- routing


def key_unit(key: str, salt: str) -> float:
    """Map ``(key, salt)`` to a uniform number in the open interval (0, 1) via SHA-256.

    >>> 0.0 < key_unit("user-1", "7") < 1.0
    True
    >>> key_unit("user-1", "7") == key_unit("user-1", "7")
    True
    """
    digest = hashlib.sha256(f"{salt}\x1f{key}".encode()).digest()
    # 53 bits fill a double's mantissa; +0.5 keeps it off 0 and 1 exactly.
    return (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53 + 0.5 / 2.0**53


def choose_version(table: RoutingTable, key: str | None, rng: np.random.Generator) -> str:
    """The version that answers a request.

    Parameters
    ----------
    table : RoutingTable
    key : str or None
        The caller's key (user id). Given a key, the choice is deterministic
        (weighted rendezvous hashing, see the module docstring); without one,
        a weighted draw from ``rng``.
    rng : numpy.random.Generator

    Returns
    -------
    str
        In ``shadow`` mode or when paused, always the champion.

    Examples
    --------
    >>> import numpy as np
    >>> t = RoutingTable("m", 1, "split", (Arm("1", 0.5, "champion"), Arm("2", 0.5, "challenger")))
    >>> rng = np.random.default_rng(0)
    >>> picks = [choose_version(t, f"u{i}", rng) for i in range(2000)]
    >>> 0.45 < picks.count("2") / 2000 < 0.55
    True
    """
    if table.paused or table.mode == "shadow":
        return table.champion
    live = table._weights
    if len(live) == 1:
        return live[0][0]
    if key is None:
        u = float(rng.random())
        acc = 0.0
        for version, w in live:
            acc += w
            if u < acc:
                return version
        return live[-1][0]
    best_version, best_score = live[0][0], math.inf
    for version, w in live:
        score = -math.log(key_unit(key, version)) / w
        if score < best_score:
            best_version, best_score = version, score
    return best_version


def shadow_versions(table: RoutingTable) -> tuple[str, ...]:
    """Challengers that get a copy of every request (shadow mode, not paused).

    >>> t = RoutingTable("m", 1, "shadow", (Arm("1", 1.0, "champion"), Arm("2", 0.0, "challenger")))
    >>> shadow_versions(t)
    ('2',)
    """
    if table.paused or table.mode != "shadow":
        return ()
    return table.challengers
