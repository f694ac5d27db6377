"""Turn a run's figures into ratios against the baselines, targets, a table and a plot."""

from __future__ import annotations

from itertools import cycle
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["Check", "checks", "plot", "table"]


class Check(msgspec.Struct, frozen=True):
    """One target of the performance issue, measured as a ratio."""

    name: str
    ratio: float
    limit: float
    at_most: bool  # True: ratio <= limit is met; False: ratio >= limit is met

    @property
    def met(self) -> bool:
        return self.ratio <= self.limit if self.at_most else self.ratio >= self.limit

    def line(self) -> str:
        sign = "<=" if self.at_most else ">="
        verdict = "met" if self.met else "NOT met"
        return f"{self.name}: {self.ratio:.2f}x (target {sign} {self.limit}x) {verdict}"


_CONTENDERS = ("eventlog", "floor", "blob")


def _median(figures: dict[str, Any], section: str, name: str, size: int) -> float:
    value: float = figures[section][name][str(size)]["median_ms"]
    return value


def _peers(figures: dict[str, Any]) -> list[str]:
    """The peers measured in this run (see `peers.py`), in the order they ran."""
    return [name for name in figures["per_turn"] if name not in _CONTENDERS]


def checks(figures: dict[str, Any]) -> list[Check]:
    """The issue's targets, evaluated on one backend's figures."""
    sizes = sorted(int(size) for size in figures["per_turn"]["eventlog"])
    small, big = sizes[0], sizes[-1]
    mid = 1000 if 1000 in sizes else big
    turn = figures["per_turn"]
    found = [
        Check(
            f"save_delta at {big} / at {small} entries",
            _median(figures, "per_turn", "eventlog", big)
            / _median(figures, "per_turn", "eventlog", small),
            1.1,
            True,
        ),
        Check(
            f"save_delta / raw floor at {big} entries",
            _median(figures, "per_turn", "eventlog", big)
            / _median(figures, "per_turn", "floor", big),
            1.3,
            True,
        ),
        Check(
            f"blob rewrite / save_delta at {big} entries (speed-up)",
            _median(figures, "per_turn", "blob", big)
            / _median(figures, "per_turn", "eventlog", big),
            100,
            False,
        ),
    ]
    if "wal_bytes_per_turn" in turn["eventlog"][str(big)]:
        found.append(
            Check(
                f"WAL bytes per turn / raw floor's at {big} entries",
                turn["eventlog"][str(big)]["wal_bytes_per_turn"]
                / turn["floor"][str(big)]["wal_bytes_per_turn"],
                1.2,
                True,
            )
        )
    snapshot = figures["snapshot_save"]
    found += [
        Check(
            f"save of a one-turn-different snapshot / (3 x encoding its entries + save_delta)"
            f" at {size} entries",
            snapshot[str(size)]["median_ms"]
            / (
                3 * snapshot[str(size)]["encode_ms"]
                + _median(figures, "per_turn", "eventlog", size)
            ),
            1.0,
            True,
        )
        for size in sorted({mid, big})
    ]
    found += [
        Check(
            f"blob rewrite / save of a one-turn-different snapshot at {big} entries (speed-up)",
            _median(figures, "per_turn", "blob", big) / snapshot[str(big)]["median_ms"],
            10,
            False,
        ),
        Check(
            f"load / raw floor read-and-decode at {big} entries",
            _median(figures, "load", "eventlog", big) / _median(figures, "load", "floor", big),
            1.2,
            True,
        ),
        Check(
            "load with half the entries tombstoned / without",
            figures["tombstoned_load"]["tombstoned_ms"] / figures["tombstoned_load"]["plain_ms"],
            1.1,
            True,
        ),
        Check(
            "8-thread throughput / raw floor's",
            figures["throughput_turns_per_s"]["eventlog"]
            / figures["throughput_turns_per_s"]["floor"],
            0.8,
            False,
        ),
    ]
    found += [
        Check(
            f"eventlog per turn / {peer} per turn at {big} entries",
            _median(figures, "per_turn", "eventlog", big) / _median(figures, "per_turn", peer, big),
            1.0,
            True,
        )
        for peer in _peers(figures)
    ]
    return found


def table(backend: str, figures: dict[str, Any]) -> str:
    """A plain-text table of one backend's figures and its checks."""
    lines = [f"== {backend} ==", "per-turn append, median / p95 ms (WAL bytes per turn)"]
    names = (*_CONTENDERS, *_peers(figures))
    lines.append(f"{'entries':>8}  " + "  ".join(f"{n:>24}" for n in names))
    for size in figures["per_turn"]["eventlog"]:
        cells = []
        for name in names:
            cell = figures["per_turn"][name][size]
            text = f"{cell['median_ms']:.3f} / {cell['p95_ms']:.3f}"
            if "wal_bytes_per_turn" in cell:
                text += f" ({cell['wal_bytes_per_turn']:.0f})"
            cells.append(f"{text:>24}")
        lines.append(f"{size:>8}  " + "  ".join(cells))
    lines.append("load of the whole session, median ms")
    for size in figures["load"]["eventlog"]:
        cells = [f"{figures['load'][n][size]['median_ms']:>24.3f}" for n in names]
        lines.append(f"{size:>8}  " + "  ".join(cells))
    lines.extend(f"peer {name}: {text}" for name, text in figures.get("peers", {}).items())
    lines.extend(
        f"peer {name}: not installed (bench-peers extra; {reason})"
        for name, reason in figures.get("peers_not_installed", {}).items()
    )
    lines.append(
        "eventlog save of a snapshot differing by one turn, median ms"
        " (beside: msgspec encoding of its entries, once each)"
    )
    for size, cell in figures["snapshot_save"].items():
        lines.append(f"{size:>8}  {cell['median_ms']:>24.3f}  {cell['encode_ms']:>24.3f}")
    tomb = figures["tombstoned_load"]
    lines.append(
        f"load of {tomb['live']} live entries: {tomb['plain_ms']:.2f} ms plain, "
        f"{tomb['tombstoned_ms']:.2f} ms beside as many tombstones"
    )
    lines.append(
        "peak Python memory of the biggest load (tracemalloc): "
        + ", ".join(f"{n} {v / 1e6:.1f} MB" for n, v in figures["peak_load_memory_bytes"].items())
    )
    lines.append(
        "storage bytes per entry: "
        + ", ".join(f"{n} {v:.0f}" for n, v in figures["storage_bytes_per_entry"].items())
    )
    throughput = figures["throughput_turns_per_s"]
    lines.append(
        "throughput, turns/s, 8 writers on own sessions: "
        f"eventlog {throughput['eventlog']:.0f} (threads), "
        f"eventlog {throughput['eventlog_async']:.0f} (asyncio tasks, one store), "
        f"floor {throughput['floor']:.0f} (threads); async / threaded sync = "
        f"{throughput['eventlog_async'] / throughput['eventlog']:.2f}x"
    )
    lines.append("targets:")
    lines.extend(f"  {check.line()}" for check in checks(figures))
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    """Latency against session length, eventlog vs the others; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    backends = list(results["backends"])
    fig, axes = plt.subplots(1, len(backends), figsize=(6 * len(backends), 4), squeeze=False)
    for axis, backend in zip(axes[0], backends, strict=True):
        figures = results["backends"][backend]
        per_turn = figures["per_turn"]
        names = (*_CONTENDERS, *_peers(figures))
        for name, style in zip(names, cycle(("o-", "s--", "^:", "x-.", "d-.")), strict=False):
            sizes = [int(size) for size in per_turn[name]]
            axis.plot(
                sizes, [per_turn[name][str(s)]["median_ms"] for s in sizes], style, label=name
            )
        axis.set(
            xscale="log",
            yscale="log",
            xlabel="entries already in the session",
            ylabel="median ms per turn",
            title=backend,
        )
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
