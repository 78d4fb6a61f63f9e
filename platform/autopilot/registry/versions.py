"""A registered version as the rest of Autopilot sees it, and how it is recorded.

:class:`ModelVersion` is one version's current state, :class:`Lineage` where
it came from, :class:`LoadedModel` a verified model ready to serve. The
constants name the version tags and the JSON side files stored beside the
pickled model; both backends write exactly these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from autopilot.errors import VersionNotFound
from autopilot.registry.integrity import json_bytes
from autopilot.schema import FeatureSchema

__all__ = [
    "HISTORY_TAG",
    "LINEAGE_FILE",
    "LINEAGE_TAG",
    "PROFILE_FILE",
    "RESERVED_TAGS",
    "ROLLED_BACK_TAG",
    "SCHEMA_FILE",
    "SHA_TAG",
    "STATUS_TAG",
    "Lineage",
    "LoadedModel",
    "ModelVersion",
    "version_str",
]

STATUS_TAG = "autopilot.status"
SHA_TAG = "autopilot.sha256"
LINEAGE_TAG = "autopilot.lineage"
HISTORY_TAG = "autopilot.champion_history"  # a registered-model tag, not a version tag
ROLLED_BACK_TAG = "autopilot.rolled_back_at"
#: Version tags only the registry writes (``Registry.set_tag`` refuses them).
RESERVED_TAGS = frozenset({STATUS_TAG, SHA_TAG, LINEAGE_TAG})

SCHEMA_FILE = "schema.json"
PROFILE_FILE = "reference_profile.json"
LINEAGE_FILE = "lineage.json"


@dataclass(frozen=True)
class Lineage:
    """Where a version came from."""

    trigger: str  # e.g. "initial", "drift", "performance", "schedule", "manual", "online"
    parent_version: str | None  # the champion it was trained to replace
    data_fingerprint: str  # autopilot.training.data.fingerprint of the training frame
    data_window: str  # e.g. "rows 0:6000" or an ISO interval
    metrics: Mapping[str, float]
    training_run_id: str | None
    family: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # the mappings are dicts; hash their canonical JSON
        return hash(json_bytes(self.to_dict()))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["metrics"] = {str(k): float(v) for k, v in self.metrics.items()}
        d["params"] = json.loads(json.dumps(dict(self.params), default=str))
        return d

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Lineage:
        return cls(
            trigger=str(raw.get("trigger", "")),
            parent_version=None if raw.get("parent_version") is None
            else str(raw["parent_version"]),
            data_fingerprint=str(raw.get("data_fingerprint", "")),
            data_window=str(raw.get("data_window", "")),
            metrics={str(k): float(v) for k, v in dict(raw.get("metrics", {})).items()},
            training_run_id=raw.get("training_run_id"),
            family=str(raw.get("family", "")),
            params=dict(raw.get("params", {})),
        )


@dataclass(frozen=True)
class ModelVersion:
    """One registered version as the registry sees it now."""

    name: str
    version: str
    status: str
    aliases: tuple[str, ...]
    sha256: str
    run_id: str | None
    source: str
    lineage: Lineage
    created_at: float  # seconds since the epoch
    tags: Mapping[str, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.status, self.aliases, self.sha256))


@dataclass(frozen=True)
class LoadedModel:
    """A verified model with what it needs to serve and be monitored."""

    model: Any
    version: ModelVersion
    schema: FeatureSchema
    reference_profile: dict | None


def version_str(version: str | int) -> str:
    """A version number in canonical form (``"007"`` -> ``"7"``).

    >>> version_str(" 007 ")
    '7'
    """
    v = str(version).strip()
    if not v.isdigit():
        raise VersionNotFound(f"version {version!r} is not a version number")
    return str(int(v))
