"""Shapley values over modality groups: hand-computed games, the axioms, the masking contract."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from polymodal.predict.attribution import modality_attributions, shapley_values


def _brute_force(value: Callable[[frozenset[str]], np.ndarray], players: list[str]) -> np.ndarray:
    """Shapley values by the definition: average marginal contribution over every ordering."""
    total = 0.0
    for order in itertools.permutations(players):
        contrib = np.zeros((len(value(frozenset())), len(players)))
        seen: frozenset[str] = frozenset()
        for p in order:
            contrib[:, players.index(p)] = value(seen | {p}) - value(seen)
            seen = seen | {p}
        total = total + contrib
    return total / math.factorial(len(players))


def _random_game(n_players: int, n_rows: int, seed: int) -> Callable[[frozenset[str]], np.ndarray]:
    # An arbitrary set function per row: every coalition gets its own random value.
    rng = np.random.default_rng(seed)
    players = [f"p{i}" for i in range(n_players)]
    table = {
        frozenset(c): rng.normal(size=n_rows)
        for k in range(n_players + 1)
        for c in itertools.combinations(players, k)
    }
    return lambda coalition: table[coalition]


def test_hand_computed_game_with_interactions() -> None:
    # v(S) = r * (1[A] + 2[B] + 3[C] + 4[A and B] + 6[A, B and C]): a pair term is split in
    # halves, the triple term in thirds -> phi = r * (1+2+2, 2+2+2, 3+2) = r * (5, 6, 5).
    r = np.array([1.0, -2.0, 0.5])

    def value(s: frozenset[str]) -> np.ndarray:
        a, b, c = "A" in s, "B" in s, "C" in s
        return r * (1 * a + 2 * b + 3 * c + 4 * (a and b) + 6 * (a and b and c))

    phi = shapley_values(value, ["A", "B", "C"])
    np.testing.assert_allclose(phi, r[:, None] * np.array([5.0, 6.0, 5.0]), atol=1e-12)


def test_exact_path_matches_definition_and_is_efficient() -> None:
    players = ["p0", "p1", "p2", "p3", "p4"]
    value = _random_game(5, n_rows=7, seed=1)
    phi = shapley_values(value, players)
    np.testing.assert_allclose(phi, _brute_force(value, players), atol=1e-12)
    full, empty = value(frozenset(players)), value(frozenset())
    np.testing.assert_allclose(phi.sum(axis=1), full - empty, atol=1e-12)


def test_each_coalition_is_evaluated_once() -> None:
    calls: list[frozenset[str]] = []
    base = _random_game(4, n_rows=3, seed=2)

    def value(s: frozenset[str]) -> np.ndarray:
        calls.append(s)
        return base(s)

    shapley_values(value, ["p0", "p1", "p2", "p3"])
    assert len(calls) == 16 == len(set(calls))


def test_symmetry_and_dummy_axioms() -> None:
    # A and B are interchangeable, D never changes anything.
    def value(s: frozenset[str]) -> np.ndarray:
        a, b, c = "A" in s, "B" in s, "C" in s
        return np.array([3.0 * (a or b) + 2.0 * c * (a and b) + 0.5 * c])

    phi = shapley_values(value, ["A", "B", "C", "D"])[0]
    assert phi[0] == pytest.approx(phi[1], abs=1e-12)
    assert phi[3] == 0.0
    assert phi.sum() == pytest.approx(5.5, abs=1e-12)


def _structured_game(threshold: float) -> Callable[[frozenset[str]], np.ndarray]:
    # Like a real model's: main effects, pair interactions, and a term for "4 or more present".
    rng = np.random.default_rng(3)
    players = [f"p{i}" for i in range(7)]
    main, pair = rng.normal(size=(7, 5)), rng.normal(size=(7, 7, 5)) * 0.5

    def value(s: frozenset[str]) -> np.ndarray:
        idx = [players.index(p) for p in s]
        v = main[idx].sum(axis=0) + sum(pair[i, j] for i in idx for j in idx if i < j)
        return v + threshold * (len(idx) >= 4)

    return value


def test_monte_carlo_path_is_efficient_and_close_to_exact() -> None:
    players = [f"p{i}" for i in range(7)]
    value = _structured_game(threshold=2.0)
    exact = shapley_values(value, players, exact_max=7)
    sampled = shapley_values(value, players, permutations=200, seed=0)  # 7 > default exact_max
    full, empty = value(frozenset(players)), value(frozenset())
    np.testing.assert_allclose(sampled.sum(axis=1), full - empty, atol=1e-12)
    assert not np.allclose(sampled, exact)  # really the sampled path
    # Only the threshold term is sampled with error: sd 2 * sqrt(1/7 * 6/7) / sqrt(100) = 0.07.
    assert np.abs(sampled - exact).max() < 0.25
    np.testing.assert_array_equal(sampled, shapley_values(value, players, seed=0))


def test_antithetic_pairs_make_pair_interactions_exact() -> None:
    # Reversing an ordering swaps who comes first in every pair, so one pair of orderings
    # already splits each pair term in halves.
    players = [f"p{i}" for i in range(7)]
    value = _structured_game(threshold=0.0)
    exact = shapley_values(value, players, exact_max=7)
    np.testing.assert_allclose(shapley_values(value, players, permutations=2), exact, atol=1e-12)


def test_monte_carlo_error_shrinks_with_more_permutations() -> None:
    # Independent random coalition values: the worst case for sampling.
    players = [f"p{i}" for i in range(7)]
    value = _random_game(7, n_rows=200, seed=3)
    exact = shapley_values(value, players, exact_max=7)
    error = {
        k: np.abs(shapley_values(value, players, permutations=k) - exact).mean() for k in (20, 500)
    }
    assert 3.0 < error[20] / error[500] < 8.0  # ~sqrt(25) = 5


def test_monte_carlo_is_exact_for_an_additive_game() -> None:
    weights = np.arange(1.0, 9.0)
    players = [f"p{i}" for i in range(8)]

    def value(s: frozenset[str]) -> np.ndarray:
        return np.array([sum(weights[players.index(p)] for p in s)])

    np.testing.assert_allclose(shapley_values(value, players, permutations=2)[0], weights)


def test_bad_value_fn_shapes_and_players_are_refused() -> None:
    with pytest.raises(ValueError, match="one value per row"):
        shapley_values(lambda s: np.zeros((2, 2)), ["a"])
    with pytest.raises(ValueError, match="one value per row"):
        shapley_values(lambda s: np.zeros(len(s) + 1), ["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        shapley_values(lambda s: np.zeros(1), ["a", "a"])


# A fake network over four slots in three groups, following the fusion contract: a slot that is
# absent (in the data, or forced by keep=False) is replaced by its learned missing vector.
SLOTS = {"image": ["photo1", "photo2"], "tabular": ["tabular"], "text": ["caption"]}
ALL = [s for group in SLOTS.values() for s in group]
N = 40


class FakeNetwork:
    def __init__(self, n_outputs: int, seed: int = 0, interact: bool = True) -> None:
        rng = np.random.default_rng(seed)
        self.n_outputs, self.interact = n_outputs, interact
        self.x = {s: rng.normal(size=(N, 3)) for s in ALL}
        self.present = {s: rng.random(N) > 0.3 for s in ALL}
        self.w = {s: rng.normal(size=(3, n_outputs)) for s in ALL}
        self.missing = {s: rng.normal(size=n_outputs) for s in ALL}
        self.interaction = rng.normal(size=n_outputs)

    def term(self, slot: str, keep: bool) -> np.ndarray:
        on = (self.present[slot] & keep)[:, None]
        return np.where(on, self.x[slot] @ self.w[slot], self.missing[slot])

    def __call__(self, keep: dict[str, bool]) -> np.ndarray:
        t = {s: self.term(s, keep[s]) for s in ALL}
        z = sum(t.values())
        if self.interact:
            z = z + np.tanh(t["photo1"] * t["caption"]) * self.interaction
        if self.n_outputs == 1:
            return z[:, 0]
        return z - np.logaddexp.reduce(z, axis=1, keepdims=True)


def _everything(on: bool) -> dict[str, bool]:
    return dict.fromkeys(ALL, on)


@pytest.mark.parametrize("n_classes", [2, 5])
def test_classification_attributions_explain_the_predicted_class(n_classes: int) -> None:
    net = FakeNetwork(n_classes)
    frame = modality_attributions(net, SLOTS, problem="multiclass")
    assert list(frame.columns) == ["attr.image", "attr.tabular", "attr.text", "attr.base"]
    assert len(frame) == N

    rows = np.arange(N)
    full = net(_everything(True))
    predicted = full.argmax(axis=1)
    np.testing.assert_allclose(frame.sum(axis=1), full[rows, predicted], atol=1e-10)
    empty = net(_everything(False))
    np.testing.assert_allclose(frame["attr.base"], empty[rows, predicted], atol=1e-12)
    # The empty coalition prefers one class for every row; the explained class is still each
    # row's own prediction, so rows predicted otherwise get a base below the empty-argmax one.
    assert len(set(predicted)) > 1


def test_a_group_absent_in_the_data_contributes_exactly_zero() -> None:
    net = FakeNetwork(3, seed=4)
    frame = modality_attributions(net, SLOTS, problem="multiclass")
    image_absent = ~net.present["photo1"] & ~net.present["photo2"]
    text_absent = ~net.present["caption"]
    assert image_absent.sum() >= 2 and text_absent.sum() >= 2
    assert (frame.loc[image_absent, "attr.image"] == 0.0).all()
    assert (frame.loc[text_absent, "attr.text"] == 0.0).all()
    # ...and only there: where present, the groups do contribute.
    assert (frame.loc[~image_absent, "attr.image"] != 0.0).all()


def test_regression_attributions_are_in_target_units() -> None:
    # Additive network: each group's value is its own term minus its missing vector's term.
    net = FakeNetwork(1, seed=5, interact=False)
    frame = modality_attributions(net, SLOTS, problem="regression")
    present = net.present["tabular"]
    own = (net.x["tabular"] @ net.w["tabular"])[:, 0] - net.missing["tabular"][0]
    np.testing.assert_allclose(frame["attr.tabular"], np.where(present, own, 0.0), atol=1e-12)
    np.testing.assert_allclose(frame.sum(axis=1), net(_everything(True)), atol=1e-10)
    np.testing.assert_allclose(frame["attr.base"], net(_everything(False)), atol=1e-12)

    # With an interaction, efficiency still holds exactly.
    net = FakeNetwork(1, seed=5)
    frame = modality_attributions(net, SLOTS, problem="regression")
    np.testing.assert_allclose(frame.sum(axis=1), net(_everything(True)), atol=1e-10)


def test_many_groups_use_sampling_and_stay_efficient() -> None:
    groups = {f"g{i}": [f"s{i}"] for i in range(8)}
    rng = np.random.default_rng(6)
    w = rng.normal(size=(8, N))
    calls = []

    def forward(keep: dict[str, bool]) -> np.ndarray:
        calls.append(keep)
        on = np.array([keep[f"s{i}"] for i in range(8)], dtype=float)
        return on @ w + 0.3 * on[0] * on[1] * w[2]

    frame = modality_attributions(forward, groups, problem="regression", permutations=20)
    assert len(calls) < 2**8  # sampled, not all 256 coalitions
    np.testing.assert_allclose(frame.sum(axis=1), forward({f"s{i}": True for i in range(8)}))
    np.testing.assert_allclose(frame["attr.g7"], w[7], atol=1e-12)  # additive player: exact


def test_each_forward_pass_is_run_once() -> None:
    forward = FakeNetwork(3)
    seen: list[tuple[bool, ...]] = []

    def counting(keep: dict[str, bool]) -> np.ndarray:
        seen.append(tuple(keep.values()))
        return forward(keep)

    modality_attributions(counting, SLOTS, problem="binary")
    assert len(seen) == 2 ** len(SLOTS) == len(set(seen))


def test_wrong_network_outputs_are_refused() -> None:
    forward = FakeNetwork(3)
    with pytest.raises(ValueError, match="log_softmax"):
        modality_attributions(lambda k: forward(k) + 1.0, SLOTS, problem="multiclass")
    with pytest.raises(ValueError, match=r"predictions \(N,\)"):
        modality_attributions(forward, SLOTS, problem="regression")
    with pytest.raises(ValueError, match="more than one group"):
        modality_attributions(forward, {"a": ["x"], "b": ["x"]}, problem="regression")
    with pytest.raises(ValueError, match="problem"):
        modality_attributions(forward, SLOTS, problem="classification")
    assert isinstance(modality_attributions(forward, SLOTS, problem="multiclass"), pd.DataFrame)
