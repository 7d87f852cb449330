"""Climbing toward a device's frontier in any space, vectorized over op-code matrices: a beam of the best fitting
architectures, each round extended by every single-position change of each member and by random two-position
changes, kept to the best that fit. Scores and the fit test are cheap functions (an exact count or a surrogate;
a latency model), so a climb costs milliseconds per round. Used to produce a generator's training data near the
frontier and to refine a search's samples."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Codes = np.ndarray
"""(n, positions) int64 op codes."""


@dataclass(frozen=True)
class Climb:
    """The final beam (best first) with its scores, and the candidates scored along the way."""

    codes: Codes
    scores: np.ndarray
    scored: int
    rounds: int


def single_moves(codes: Codes, n_choices: int) -> Codes:
    """Every architecture one position away from a row of ``codes`` (rows × positions × (choices − 1))."""
    m, p = codes.shape
    out = np.repeat(codes[:, None, None, :], p, axis=1).repeat(n_choices, axis=2)  # (m, p, c, p)
    pos = np.arange(p)
    out[:, pos, :, pos] = np.arange(n_choices)[None, None, :]
    out = out.reshape(-1, p)
    changed = np.any(out != np.repeat(codes, p * n_choices, axis=0), axis=1)
    return out[changed]


def pair_moves(codes: Codes, n_choices: int, per_row: int, rng: np.random.Generator) -> Codes:
    """``per_row`` random changes of two distinct positions of each row."""
    m, p = codes.shape
    if per_row <= 0 or p < 2:
        return np.zeros((0, p), dtype=np.int64)
    out = np.repeat(codes, per_row, axis=0)
    first = rng.integers(p, size=len(out))
    second = (first + rng.integers(1, p, size=len(out))) % p
    rows = np.arange(len(out))
    out[rows, first] = rng.integers(n_choices, size=len(out))
    out[rows, second] = rng.integers(n_choices, size=len(out))
    return out


def unique_rows(codes: Codes) -> Codes:
    """The distinct rows of ``codes`` in order of first appearance."""
    if len(codes) == 0:
        return codes
    _u, idx = np.unique(codes, axis=0, return_index=True)
    return codes[np.sort(idx)]


def climb(start: Codes, n_choices: int, fits: Callable[[Codes], np.ndarray], score: Callable[[Codes], np.ndarray],
          rng: np.random.Generator, beam: int = 24, rounds: int = 30, pairs_per_row: int = 128,
          patience: int = 3, full_pairs: int = 2) -> Climb:
    """Beam hill-climbing from the fitting rows of ``start``: up to ``rounds`` rounds, stopping after
    ``patience`` rounds without a better best score; the best ``full_pairs`` members get their whole
    two-position neighbourhood each round. ``fits(codes)`` → (n,) bool; ``score(codes)`` → (n,)."""
    start = unique_rows(np.asarray(start, dtype=np.int64))
    ok = fits(start) if len(start) else np.zeros(0, dtype=bool)
    pop = start[ok]
    if len(pop) == 0:
        return Climb(pop, np.zeros(0), 0, 0)
    pop_s = score(pop)
    order = np.argsort(-pop_s, kind="stable")[:beam]
    pop, pop_s = pop[order], pop_s[order]
    scored, stale, done = len(start), 0, 0
    for step in range(1, rounds + 1):
        done = step
        ones = single_moves(pop, n_choices)
        twos = single_moves(single_moves(pop[:full_pairs], n_choices), n_choices) if full_pairs else ones[:0]
        cand = np.concatenate([ones, twos, pair_moves(pop, n_choices, pairs_per_row, rng)])
        cand = unique_rows(cand)
        cand = cand[fits(cand)]
        scored += len(cand)
        if len(cand) == 0:
            break
        merged = unique_rows(np.concatenate([pop, cand]))
        merged_s = score(merged)
        order = np.argsort(-merged_s, kind="stable")[:beam]
        best_before = float(pop_s[0])
        pop, pop_s = merged[order], merged_s[order]
        stale = stale + 1 if float(pop_s[0]) <= best_before + 1e-12 * max(1.0, abs(best_before)) else 0
        if stale >= patience:
            break
    return Climb(pop, pop_s, scored, done)


@dataclass(frozen=True)
class Additive:
    """``f(codes) = constant + Σ_positions table[position, code]`` (verified on a sample)."""

    table: np.ndarray  # (positions, choices)
    constant: float


def additive_form(fn: Callable[[Codes], np.ndarray], positions: int, n_choices: int, check: Codes,
                  rtol: float = 1e-6) -> Additive | None:
    """``fn`` as a sum over positions when it is one: the table from single-position changes of the all-zero
    architecture, verified on the ``check`` rows (None when any differs by more than ``rtol`` relative)."""
    base = np.zeros((1, positions), dtype=np.int64)
    variants = single_moves(base, n_choices)  # (positions × (choices − 1), positions), position-major
    values = np.asarray(fn(np.concatenate([base, variants])), dtype=np.float64)
    if not np.all(np.isfinite(values)):
        return None
    f0 = float(values[0])
    table = np.zeros((positions, n_choices))
    pos = np.argmax(variants != 0, axis=1)
    table[pos, variants[np.arange(len(variants)), pos]] = values[1:] - f0
    want = np.asarray(fn(check), dtype=np.float64)
    got = f0 + table[np.arange(positions)[None, :], check].sum(axis=1)
    scale = np.maximum(np.abs(want), 1e-12)
    if not np.all(np.abs(got - want) <= rtol * scale + 1e-9):
        return None
    return Additive(table, f0)


def knapsack_frontier(score: Additive, cost: Additive, budget: float) -> Codes | None:
    """The exact best architecture under ``Σ cost ≤ budget`` for an additive score and cost (a multiple-choice
    knapsack; None when nothing fits), as a (1, positions) code row."""
    from hwdiffnas.knapsack import solve_multiple_choice

    sol = solve_multiple_choice(cost.table, score.table, budget - cost.constant)
    return None if sol is None else np.asarray([sol.choices], dtype=np.int64)
