"""Shapley values over modality groups: how much each modality moved each prediction.

The players are modality groups (all image slots together, all tabular columns together, ...). A
coalition's value is the model's output when only the coalition's groups are present and every
other group is forced absent, which the network turns into its learned missing tokens, exactly
as it handles a modality missing from the data. With G groups that is at most 2^G forward passes
over the rows: exact for G <= ``exact_max``, Monte Carlo over permutations beyond.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

ValueFn = Callable[[frozenset[str]], np.ndarray]

BASE_COLUMN = "attr.base"
_PROBLEMS = ("binary", "multiclass", "regression")


def shapley_values(
    value_fn: ValueFn,
    players: Sequence[str],
    *,
    exact_max: int = 6,
    permutations: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """Per-row Shapley value of each player, (N, P) in the order of ``players``.

    ``value_fn(coalition)`` returns the per-row value (N,) with only ``coalition``'s players
    present. Each coalition is evaluated at most once. For P <= ``exact_max`` all 2^P coalitions
    are evaluated and the values are exact; beyond, ``permutations`` random orderings (rounded up
    to an even number: each drawn with its reverse, which lowers the variance) are averaged.
    Both paths satisfy efficiency: each row's values sum to value(all) - value(empty), up to
    float rounding.
    """
    names = list(players)
    if not names:
        raise ValueError("shapley_values needs at least one player")
    if len(set(names)) != len(names):
        raise ValueError(f"players must be unique, got {names}")
    if permutations < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations}")
    evaluate = _CachedGame(value_fn, names)
    if len(names) <= exact_max:
        return _exact(evaluate, len(names))
    return _sampled(evaluate, len(names), permutations, seed)


def modality_attributions(
    network_forward: Callable[[dict[str, bool]], np.ndarray],
    groups: Mapping[str, Sequence[str]],
    *,
    problem: str,
    exact_max: int = 6,
    permutations: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Each modality group's Shapley contribution to each row's prediction.

    ``groups`` maps a group name to its slot names. ``network_forward(keep)`` gets one bool per
    slot (False: force the slot absent in every row, True: leave it as the data has it) and runs
    the network over all N rows in a fixed order. It returns, for ``problem`` "binary" or
    "multiclass", log-probabilities (N, C) (log-softmax; for a single-logit binary model stack
    ``[logsigmoid(-z), logsigmoid(z)]``); for "regression", predictions (N,) in target units.

    The value explained is, for classification, the log-probability of the class the model
    predicts with every group present; for regression, the prediction itself. Columns:

    - ``attr.<group>``: that group's contribution to the value, in its units (nats or target
      units). Positive means the group pushed towards the predicted class (or raised the
      prediction).
    - ``attr.base``: the value with every group absent, i.e. the model's answer from learned
      missing tokens alone (for classification, roughly the log prior of the predicted class).

    Per row, ``attr.base`` + the sum of the group columns equals the full-information value. A
    group absent from a row in the data is a dummy player there (forcing it absent changes
    nothing), so its contribution is 0 on that row without any special case.
    """
    if problem not in _PROBLEMS:
        raise ValueError(f"problem must be one of {_PROBLEMS}, got {problem!r}")
    slots_of = {g: list(s) for g, s in groups.items()}
    all_slots = [s for slots in slots_of.values() for s in slots]
    if not slots_of or any(not s for s in slots_of.values()):
        raise ValueError(f"every group needs at least one slot, got {slots_of}")
    if len(set(all_slots)) != len(all_slots):
        raise ValueError(f"a slot belongs to more than one group: {slots_of}")

    outputs: dict[frozenset[str], np.ndarray] = {}

    def forward(coalition: frozenset[str]) -> np.ndarray:
        # Memoised: the full and empty coalitions are needed here and again inside the game.
        if coalition not in outputs:
            keep = {slot: g in coalition for g, slots in slots_of.items() for slot in slots}
            outputs[coalition] = np.asarray(network_forward(keep), dtype=np.float64)
        return outputs[coalition]

    full = forward(frozenset(slots_of))
    if problem == "regression":
        full = _as_predictions(full)
        value_fn: ValueFn = lambda c: _as_predictions(forward(c))  # noqa: E731
    else:
        # The class to explain is fixed from the full-information answer so every coalition is
        # scored on the same class; otherwise the game would change with the coalition.
        predicted = _check_log_probs(full).argmax(axis=1)
        rows = np.arange(len(predicted))
        value_fn = lambda c: _check_log_probs(forward(c))[rows, predicted]  # noqa: E731

    players = list(slots_of)
    base = value_fn(frozenset())
    phi = shapley_values(
        value_fn, players, exact_max=exact_max, permutations=permutations, seed=seed
    )
    frame = pd.DataFrame(phi, columns=[f"attr.{g}" for g in players])
    frame[BASE_COLUMN] = base
    return frame


class _CachedGame:
    """value_fn memoised per coalition, with shape checks; coalitions addressed by bitmask."""

    def __init__(self, value_fn: ValueFn, players: list[str]) -> None:
        self._value_fn = value_fn
        self._players = players
        self._cache: dict[int, np.ndarray] = {}
        self.n_rows: int | None = None

    def __call__(self, mask: int) -> np.ndarray:
        if mask not in self._cache:
            coalition = frozenset(p for i, p in enumerate(self._players) if mask >> i & 1)
            value = np.asarray(self._value_fn(coalition), dtype=np.float64)
            if value.ndim != 1 or (self.n_rows is not None and len(value) != self.n_rows):
                raise ValueError(
                    f"value_fn must return one value per row, shape ({self.n_rows or 'N'},); "
                    f"got {value.shape} for coalition {sorted(coalition)}"
                )
            self.n_rows = len(value)
            self._cache[mask] = value
        return self._cache[mask]


def _exact(evaluate: _CachedGame, n: int) -> np.ndarray:
    values = np.stack([evaluate(mask) for mask in range(1 << n)])  # (2^n, N)
    sizes = np.array([mask.bit_count() for mask in range(1 << n)])
    # Weight of a coalition S (not containing i) in player i's value: |S|! (n-|S|-1)! / n!.
    weight = np.array([math.factorial(s) * math.factorial(n - s - 1) for s in range(n)])
    weight = weight / math.factorial(n)
    phi = np.zeros((values.shape[1], n))
    for i in range(n):
        bit = 1 << i
        without = np.array([m for m in range(1 << n) if not m & bit])
        marginal = values[without | bit] - values[without]  # (2^(n-1), N)
        phi[:, i] = weight[sizes[without]] @ marginal
    return phi


def _sampled(evaluate: _CachedGame, n: int, permutations: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pairs = (permutations + 1) // 2
    total: np.ndarray | None = None
    for _ in range(pairs):
        order = rng.permutation(n)
        for perm in (order, order[::-1]):
            # Walking one ordering telescopes, so every sample is exactly efficient.
            mask, previous = 0, evaluate(0)
            contrib = np.zeros((len(previous), n))
            for player in perm:
                mask |= 1 << int(player)
                current = evaluate(mask)
                contrib[:, player] = current - previous
                previous = current
            total = contrib if total is None else total + contrib
    assert total is not None
    return total / (2 * pairs)


def _as_predictions(out: np.ndarray) -> np.ndarray:
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim != 1:
        raise ValueError(f"a regression forward must return predictions (N,), got {out.shape}")
    return out


def _check_log_probs(out: np.ndarray) -> np.ndarray:
    if out.ndim != 2 or out.shape[1] < 2:
        raise ValueError(f"a classification forward must return log-probs (N, C>=2): {out.shape}")
    total = np.logaddexp.reduce(out, axis=1)
    if not np.allclose(total, 0.0, atol=1e-3):
        raise ValueError(
            "a classification forward must return log-probabilities (rows logsumexp to 0); "
            "apply log_softmax to the logits"
        )
    return out
