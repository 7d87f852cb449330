"""The evaluation harness: run search methods on (device, budget) tasks over seeds and score their picks
against the oracle.

Per task and method configuration, over seeds: best accuracy found (true accuracy of the method's first
pick), regret vs the oracle (points), the pick's true latency, violations (picks over the budget), accuracy
queries used and wall time — each as mean ± std. Outputs: JSON, a markdown table, a Pareto plot (PNG).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwdiffnas.baselines.base import SearchTask
from hwdiffnas.benchmark import QueryOracle, Store, latency_for, oracle, pareto_front
from hwdiffnas.errors import UserError
from hwdiffnas.jsonable import to_jsonable
from hwdiffnas.methods import get_method

HELP_GRID: dict[str, tuple[str, ...]] = {
    "fpga": ("4ms", "5ms", "6ms"),
    "eyeriss": ("5ms", "7ms", "9ms"),
    "pixel2": ("14ms", "18ms", "22ms"),
    "gold_6226": ("8ms", "11ms", "14ms"),
    "titan_rtx_256": ("18ms", "21ms", "25ms"),
}
QUANTILE_DEVICES: tuple[str, ...] = ("pixel3", "raspi4", "jetson-nano-fp16", "edgetpu-int8", "pi5-litert")
QUANTILE_BUDGETS: tuple[str, ...] = ("p25", "p50", "p75")


def default_grid(devices: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """The protocol's (device, budget) pairs: HELP's fixed budgets, then the quantile devices."""
    grid = [(d, b) for d, bs in HELP_GRID.items() for b in bs]
    grid += [(d, b) for d in QUANTILE_DEVICES for b in QUANTILE_BUDGETS]
    if devices:
        unknown = sorted(set(devices) - {d for d, _ in grid})
        if unknown:
            raise UserError(f"device(s) {', '.join(unknown)} are not in the grid; grid devices: "
                            f"{', '.join(dict.fromkeys(d for d, _ in grid))}")
        grid = [(d, b) for d, b in grid if d in devices]
    return grid


@dataclass(frozen=True)
class MethodConfig:
    """One method with its options and search query budget (labels for a predictor come on top)."""

    method: str
    queries: int
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.method}[{opts}]@{self.queries}" if opts else f"{self.method}@{self.queries}"


def _stat(values: Sequence[float]) -> dict[str, float]:
    arr = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(arr) == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=0)), "n": int(len(arr))}


def run_task(task: SearchTask, accuracy: np.ndarray, config: MethodConfig, seeds: Sequence[int],
             oracle_accuracy: float) -> dict[str, Any]:
    """Run one method configuration on one task for every seed; per-seed records plus mean ± std."""
    method = get_method(config.method, **config.options)
    runs = []
    for seed in seeds:
        budget = config.queries + method.label_queries(task)
        q = QueryOracle(accuracy, budget)
        t0 = time.perf_counter()
        picks = method.run(task, q, int(seed))
        wall = time.perf_counter() - t0
        lat = np.asarray(task.latency_ms, dtype=np.float64)
        over = [p for p in picks if not (np.isfinite(lat[p.index]) and lat[p.index] <= task.budget_ms)]
        if picks:
            top = picks[0]
            best = float(accuracy[top.index])
            rec = {"seed": int(seed), "index": top.index, "arch_str": top.arch_str, "accuracy": best,
                   "regret": oracle_accuracy - best, "latency_ms": float(lat[top.index]),
                   "violation": bool(top in over)}
        else:
            rec = {"seed": int(seed), "index": None, "arch_str": None, "accuracy": math.nan, "regret": math.nan,
                   "latency_ms": math.nan, "violation": False}
        rec.update(violations=len(over), picks=len(picks), queries=q.used, wall_s=wall)
        runs.append(rec)
    summary = {k: _stat([r[k] for r in runs]) for k in ("accuracy", "regret", "latency_ms", "violations",
                                                         "queries", "wall_s")}
    summary["no_pick"] = sum(1 for r in runs if r["index"] is None)
    return {"config": config.label, "method": config.method, "options": config.options,
            "search_queries": config.queries, "describe": method.describe(), "summary": summary, "runs": runs}


def make_task(store: Store, device: str | None, budget: str, dataset: str = "cifar100", column: str = "nats",
              device_table: str | Path | None = None,
              resolved: dict[tuple[Any, ...], Any] | None = None) -> tuple[SearchTask, np.ndarray, dict[str, Any]]:
    """The task for a device (or table) and budget text, the accuracy array, and the oracle record.

    A ``pNN`` budget is the device's percentile over every connected cell (`hwdiffnas.latency.device.budget_for`;
    ``resolved`` caches the devices it resolves across tasks)."""
    from hwdiffnas.latency.device import budget_for

    name, lat = latency_for(store, device, device_table)
    conn = store.connected()
    cells = store.cells()
    budget_ms = budget_for(budget, store, device, device_table, resolved=resolved)
    acc = store.accuracy(dataset, column)
    best = oracle(acc, lat, budget_ms, conn, cells, device=name)
    task = SearchTask(name, budget_ms, lat, conn, cells, dataset, column)
    return task, acc, best.to_dict()


def run_grid(store: Store, grid: Sequence[tuple[str, str]], configs: Sequence[MethodConfig], seeds: Sequence[int],
             dataset: str = "cifar100", column: str = "nats", device_table: str | Path | None = None,
             log: Callable[[str], None] | None = None, space: str = "nb201") -> dict[str, Any]:
    """Every (device, budget) × method configuration × seed; returns the full result dict. The tasks and the
    baselines are NB201's; another ``space`` is refused by name."""
    from hwdiffnas.spaces.base import require_space

    require_space(space, ("nb201",), "the benchmark harness (its tasks and baselines)")
    store.check_space(space)
    t0 = time.perf_counter()
    entries = []
    resolved: dict[tuple[Any, ...], Any] = {}
    for device, budget in grid:
        task, acc, best = make_task(store, device, budget, dataset, column, device_table, resolved)
        results = []
        for cfg in configs:
            res = run_task(task, acc, cfg, seeds, best["accuracy"])
            results.append(res)
            if log:
                s = res["summary"]
                log(f"{task.device} {budget} ({task.budget_ms:.4g} ms) {cfg.label}: acc "
                    f"{s['accuracy']['mean']:.2f}±{s['accuracy']['std']:.2f}, regret {s['regret']['mean']:.2f}")
        entries.append({"device": task.device, "budget": budget, "budget_ms": task.budget_ms, "oracle": best,
                        "latency_source": (f"table:{device_table}" if device_table
                                           else store.latency_source(task.device)),
                        "results": results})
    return {"dataset": dataset, "column": column, "seeds": list(map(int, seeds)),
            "configs": [c.label for c in configs], "grid": entries, "wall_s": time.perf_counter() - t0}


# --- reports -----------------------------------------------------------------------------------------------
def _pm(stat: dict[str, float], fmt: str = ".2f") -> str:
    if stat["n"] == 0:
        return "-"
    return f"{stat['mean']:{fmt}} ± {stat['std']:{fmt}}"


def markdown_table(result: dict[str, Any]) -> str:
    """The grid as a markdown table (one row per device × budget × method configuration)."""
    head = ("| device | budget | budget ms | oracle acc | method | best acc | regret (pts) | latency ms | "
            "violations | queries | wall s |")
    lines = [f"Accuracy: {result['dataset']} / column `{result['column']}`; seeds: {len(result['seeds'])} "
             "(mean ± std)", "", head, "|" + "---|" * 11]
    for e in result["grid"]:
        for r in e["results"]:
            s = r["summary"]
            lines.append(
                f"| {e['device']} | {e['budget']} | {e['budget_ms']:.4g} | {e['oracle']['accuracy']:.2f} | "
                f"{r['config']} | {_pm(s['accuracy'])} | {_pm(s['regret'])} | {_pm(s['latency_ms'], '.3g')} | "
                f"{_pm(s['violations'], '.1f')} | {_pm(s['queries'], '.0f')} | {_pm(s['wall_s'], '.3f')} |")
    return "\n".join(lines) + "\n"


def summary_by_config(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Mean regret and accuracy per method configuration over all grid cells (for a compact overview)."""
    out: dict[str, dict[str, list[float]]] = {}
    for e in result["grid"]:
        for r in e["results"]:
            d = out.setdefault(r["config"], {"regret": [], "exact": [], "queries": [], "wall": []})
            d["regret"] += [x["regret"] for x in r["runs"]]
            d["exact"] += [float(x["regret"] == 0) for x in r["runs"]]
            d["queries"] += [x["queries"] for x in r["runs"]]
            d["wall"] += [x["wall_s"] for x in r["runs"]]
    return [{"config": k, "regret": _stat(v["regret"]), "found_oracle": float(np.mean(v["exact"])),
             "queries": _stat(v["queries"]), "wall_s": _stat(v["wall"])} for k, v in out.items()]


def pareto_plot(store: Store, result: dict[str, Any], path: Path, device_table: str | Path | None = None) -> Path:
    """Accuracy vs latency per device: all connected cells, the oracle front, budgets and each method's picks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = list(dict.fromkeys(e["device"] for e in result["grid"]))
    acc = store.accuracy(result["dataset"], result["column"])
    conn = store.connected()
    ncol = min(3, len(devices))
    nrow = math.ceil(len(devices) / ncol)
    width, height = max(8.0, 5.2 * ncol), 4.2 * nrow
    fig, axes = plt.subplots(nrow, ncol, figsize=(width, height), squeeze=False)
    configs = result["configs"]
    colors = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(configs)}
    markers = "osD^v<>px*"
    for ax, dev in zip(axes.flat, devices):
        _, lat = latency_for(store, None if device_table else dev, device_table)
        ok = conn & np.isfinite(lat) & np.isfinite(acc)
        ax.scatter(lat[ok], acc[ok], s=2, c="0.82", label="connected cells", rasterized=True)
        front = pareto_front(acc, lat, conn)
        ax.step(lat[front], acc[front], where="post", c="k", lw=1, label="oracle front")
        for e in (e for e in result["grid"] if e["device"] == dev):
            ax.axvline(e["budget_ms"], c="0.5", ls="--", lw=0.8)
            for j, r in enumerate(e["results"]):
                pts = [(x["latency_ms"], x["accuracy"]) for x in r["runs"] if x["index"] is not None]
                if pts:
                    xs, ys = zip(*pts)
                    ax.scatter(xs, ys, s=22, color=colors[r["config"]], marker=markers[j % len(markers)],
                               edgecolors="k", linewidths=0.3, alpha=0.8)
        lo = np.nanpercentile(acc[ok], 20) if ok.any() else 0
        ax.set_ylim(lo, np.nanmax(acc[ok]) + 0.5 if ok.any() else 100)
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel(f"{result['dataset']} accuracy (%)")
        ax.set_title(dev)
    for ax in list(axes.flat)[len(devices):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color="k", lw=1, label="oracle front"),
               plt.Line2D([], [], color="0.5", ls="--", lw=0.8, label="budgets")]
    handles += [plt.Line2D([], [], ls="", marker=markers[i % len(markers)], color=colors[c], label=c)
                for i, c in enumerate(configs)]
    legend_cols = max(2, int(width // 2.6))
    legend_rows = math.ceil(len(handles) / legend_cols)
    fig.legend(handles=handles, loc="lower center", ncol=legend_cols, fontsize=8)
    fig.tight_layout(rect=(0, min(0.5, (0.15 + 0.22 * legend_rows) / height), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(store: Store, result: dict[str, Any], out_dir: Path, stem: str = "bench",
                  device_table: str | Path | None = None, plot: bool = True) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and (with ``plot``) ``<stem>_pareto.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "markdown": out_dir / f"{stem}.md"}
    paths["json"].write_text(json.dumps(to_jsonable(result), indent=1) + "\n")
    paths["markdown"].write_text(markdown_table(result))
    if plot:
        paths["png"] = pareto_plot(store, result, out_dir / f"{stem}_pareto.png", device_table)
    return paths
