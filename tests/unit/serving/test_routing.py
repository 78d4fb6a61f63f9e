"""Routing table invariants and the sticky weighted choice."""

from __future__ import annotations

import numpy as np
import pytest

from autopilot.routing import Arm, RoutingTable, choose_version, key_unit, shadow_versions


def _table(w_champ: float, w_chal: float, mode: str = "split", **kw) -> RoutingTable:
    return RoutingTable(
        "m", 1, mode, (Arm("1", w_champ, "champion"), Arm("2", w_chal, "challenger")), **kw
    )


def test_validation_names_the_problem() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        _table(0.5, 0.4)
    with pytest.raises(ValueError, match="exactly one champion"):
        RoutingTable("m", 1, "split", (Arm("1", 0.5, "challenger"), Arm("2", 0.5, "challenger")))
    with pytest.raises(ValueError, match="distinct"):
        RoutingTable("m", 1, "split", (Arm("1", 0.5, "champion"), Arm("1", 0.5, "challenger")))
    with pytest.raises(ValueError, match="weight"):
        Arm("1", -0.1, "champion")
    with pytest.raises(ValueError, match="role"):
        Arm("1", 1.0, "boss")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        _table(1.0, 0.0, mode="canary")
    with pytest.raises(ValueError, match="fallback"):
        RoutingTable("m", 1, "split", (Arm("1", 1.0, "champion"), Arm("0", 0.0, "fallback")), "9")
    with pytest.raises(ValueError, match="lacks keys"):
        RoutingTable.from_dict({"model": "m"})


def test_fallback_arm_weight_is_ignored_and_round_trip() -> None:
    t = RoutingTable(
        "m", 4, "split",
        (Arm("2", 1.0, "champion"), Arm("1", 0.7, "fallback")), fallback="1", paused=True,
    )
    assert RoutingTable.from_dict(t.to_dict()) == t
    assert t.versions == ("2", "1")
    assert t.weights() == {"2": 1.0}


def test_key_unit_is_stable_known_value() -> None:
    # Pinned: hashlib-based, so identical in every process and Python version.
    assert key_unit("user-1", "7") == pytest.approx(key_unit("user-1", "7"))
    vals = np.array([key_unit(f"k{i}", "s") for i in range(5000)])
    assert 0 < vals.min() and vals.max() < 1
    assert abs(vals.mean() - 0.5) < 0.02


def test_sticky_and_proportional() -> None:
    t = _table(0.9, 0.1)
    rng = np.random.default_rng(0)
    keys = [f"user-{i}" for i in range(20_000)]
    picks = [choose_version(t, k, rng) for k in keys]
    share = picks.count("2") / len(picks)
    se = (0.1 * 0.9 / len(picks)) ** 0.5
    assert abs(share - 0.1) < 4 * se
    # same key, any rng: same version
    again = [choose_version(t, k, np.random.default_rng(99)) for k in keys[:500]]
    assert again == picks[:500]


def test_moving_weight_moves_only_needed_users() -> None:
    keys = [f"u{i}" for i in range(10_000)]
    rng = np.random.default_rng(1)
    before = [choose_version(_table(0.9, 0.1), k, rng) for k in keys]
    after = [choose_version(_table(0.75, 0.25), k, rng) for k in keys]
    # Raising the challenger's weight never moves a user away from it.
    assert all(a == "2" for b, a in zip(before, after, strict=True) if b == "2")
    moved = sum(b != a for b, a in zip(before, after, strict=True)) / len(keys)
    assert abs(moved - 0.15) < 0.02


def test_three_arms_change_one_weight_moves_only_to_that_arm() -> None:
    def t3(w: tuple[float, float, float]) -> RoutingTable:
        return RoutingTable("m", 1, "split", (
            Arm("1", w[0], "champion"), Arm("2", w[1], "challenger"), Arm("3", w[2], "challenger"),
        ))
    keys = [f"u{i}" for i in range(5000)]
    rng = np.random.default_rng(2)
    b = [choose_version(t3((0.5, 0.3, 0.2)), k, rng) for k in keys]
    a = [choose_version(t3((0.4, 0.24, 0.36)), k, rng) for k in keys]  # only arm 3 scaled up
    assert all(y == "3" for x, y in zip(b, a, strict=True) if x != y)


def test_random_without_key_uses_rng() -> None:
    t = _table(0.5, 0.5)
    picks1 = [choose_version(t, None, np.random.default_rng(5)) for _ in range(3)]
    rng = np.random.default_rng(7)
    picks = [choose_version(t, None, rng) for _ in range(4000)]
    assert len(set(picks1)) == 1  # same seed, same first draw
    assert 0.45 < picks.count("1") / 4000 < 0.55


def test_shadow_and_paused_route_to_champion() -> None:
    s = _table(0.5, 0.5, mode="shadow")
    rng = np.random.default_rng(0)
    assert {choose_version(s, f"k{i}", rng) for i in range(200)} == {"1"}
    assert shadow_versions(s) == ("2",)
    p = _table(0.5, 0.5, paused=True)
    assert {choose_version(p, f"k{i}", rng) for i in range(200)} == {"1"}
    assert shadow_versions(p) == ()
    assert shadow_versions(_table(0.5, 0.5)) == ()


def test_zero_weight_arm_never_chosen_and_with_weights() -> None:
    t = _table(1.0, 0.0)
    rng = np.random.default_rng(0)
    assert {choose_version(t, f"k{i}", rng) for i in range(300)} == {"1"}
    assert {choose_version(t, None, rng) for i in range(300)} == {"1"}
    t2 = t.with_weights({"2": 1.0, "1": 0.0})
    assert t2.table_version == 2 and t2.weights() == {"1": 0.0, "2": 1.0}
    with pytest.raises(ValueError, match="not arms"):
        t.with_weights({"9": 1.0})
