"""`otns bench` results: the helper's raw output -> samples -> statistics -> table, verdict, plot.

Pure functions over the measurements, so they are tested without booting anything.
"""
from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

METHODS = ("classic", "open_tree", "open_tree_recursive", "fsmount", "empty_move")
LABELS = {
    "classic": "(a) unshare + pivot_root",
    "open_tree": "(b) open_tree NAMESPACE",
    "open_tree_recursive": "(b) open_tree NAMESPACE|RECURSIVE",
    "fsmount": "(c) fsmount NAMESPACE",
    "empty_move": "(c) UNSHARE_EMPTY_MNTNS + move_mount",
}
# The claim holds when (b) grows by less than FLAT from the smallest to the largest table
# while (a) grows by more than GROWS.
FLAT = 1.5
GROWS = 2.0


@dataclass
class Raw:
    samples: list[tuple[str, int, int, int, int, int]] = field(default_factory=list)  # method, M, P, worker, i, ns
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why
    mounts: dict[int, int] = field(default_factory=dict)  # requested -> reached
    cpus: int | None = None
    checks: list[dict] = field(default_factory=list)  # --check: one record per method and M


def parse_raw(text: str) -> Raw:
    raw = Raw()
    for line in text.splitlines():
        if line.startswith("#skip "):
            _, method, why = line.split(" ", 2)
            raw.skipped[method] = why
        elif line.startswith("#mounts "):
            _, want, have = line.split()
            raw.mounts[int(want)] = int(have)
        elif line.startswith("#cpus "):
            raw.cpus = int(line.split()[1])
        elif line.startswith("{"):
            raw.checks.append(json.loads(line))
        elif line and not line.startswith("#"):
            m, mounts, p, w, i, ns = line.split(",")
            raw.samples.append((m, int(mounts), int(p), int(w), int(i), int(ns)))
    return raw


def to_csv(raw: Raw) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["method", "mounts", "workers", "worker", "iteration", "ns"])
    w.writerows(raw.samples)
    return out.getvalue()


@dataclass
class Cell:
    method: str
    mounts: int
    workers: int
    n: int
    median_us: float
    p90_us: float


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100), as benchmark tools report it."""
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def cells(raw: Raw) -> list[Cell]:
    groups: dict[tuple[str, int, int], list[float]] = {}
    for m, mounts, p, _, _, ns in raw.samples:
        groups.setdefault((m, mounts, p), []).append(ns / 1000)
    return [Cell(m, mounts, p, len(v), statistics.median(v), percentile(v, 90))
            for (m, mounts, p), v in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][1], METHODS.index(kv[0][0])))]


def lookup(cs: list[Cell], method: str, mounts: int, workers: int) -> Cell | None:
    return next((c for c in cs if (c.method, c.mounts, c.workers) == (method, mounts, workers)), None)


def ratio(cs: list[Cell], mounts: int, workers: int, a: str = "classic", b: str = "open_tree") -> float | None:
    ca, cb = lookup(cs, a, mounts, workers), lookup(cs, b, mounts, workers)
    return ca.median_us / cb.median_us if ca and cb and cb.median_us > 0 else None


def growth(cs: list[Cell], method: str, workers: int) -> tuple[int, int, float] | None:
    """(smallest M, largest M, median cost at largest / at smallest) for one method."""
    mine = sorted((c for c in cs if c.method == method and c.workers == workers), key=lambda c: c.mounts)
    if len(mine) < 2 or mine[0].median_us <= 0:
        return None
    return mine[0].mounts, mine[-1].mounts, mine[-1].median_us / mine[0].median_us


@dataclass
class Verdict:
    holds: bool | None  # None: cannot tell
    line: str


def verdict(cs: list[Cell], raw: Raw) -> Verdict:
    workers = min((c.workers for c in cs), default=1)
    a, b = growth(cs, "classic", workers), growth(cs, "open_tree", workers)
    if "open_tree" in raw.skipped:
        return Verdict(None, f"CANNOT TELL: this kernel lacks OPEN_TREE_NAMESPACE ({raw.skipped['open_tree']})")
    if a is None or b is None:
        return Verdict(None, "CANNOT TELL: measure at least two mount-table sizes for both (a) and (b)")
    lo, hi, ga = a
    gb = b[2]
    flat, grows = gb < FLAT, ga > GROWS
    detail = (f"from {lo} to {hi} mounts (P={workers}), (b) open_tree costs x{gb:.2f} "
              f"and (a) unshare+pivot_root x{ga:.1f}")
    if flat and grows:
        return Verdict(True, f"HOLDS: {detail}: (b) stays flat while (a) grows")
    why = "; ".join(x for x in (
        None if flat else f"(b) is not flat (x{gb:.2f} >= x{FLAT})",
        None if grows else f"(a) does not grow (x{ga:.2f} <= x{GROWS})") if x)
    return Verdict(False, f"DOES NOT HOLD: {detail}: {why}")


def markdown(cs: list[Cell], raw: Raw, title: str) -> str:
    methods = [m for m in METHODS if any(c.method == m for c in cs)]
    lines = [f"# {title}", ""]
    for p in sorted({c.workers for c in cs}):
        lines += [f"## P = {p} worker{'s' if p > 1 else ''}: per-namespace cost, median / p90 in µs", "",
                  "| mounts | " + " | ".join(LABELS[m].replace("|", "\\|") for m in methods) + " | (a)/(b) |",
                  "|---:|" + "---:|" * len(methods) + "---:|"]
        for mounts in sorted({c.mounts for c in cs if c.workers == p}):
            row = []
            for m in methods:
                c = lookup(cs, m, mounts, p)
                row.append(f"{c.median_us:,.0f} / {c.p90_us:,.0f}" if c else "-")
            r = ratio(cs, mounts, p)
            lines.append(f"| {mounts:,} | " + " | ".join(row) + f" | {f'{r:.1f}' if r else '-'} |")
        lines.append("")
    for m, why in raw.skipped.items():
        lines.append(f"- {LABELS.get(m, m)}: not measured, {why}")
    return "\n".join(lines) + "\n"


def plot(cs: list[Cell], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    styles = {1: "-"}
    for p in sorted({c.workers for c in cs}):
        for m in METHODS:
            mine = sorted((c for c in cs if c.method == m and c.workers == p), key=lambda c: c.mounts)
            if not mine:
                continue
            ax.plot([c.mounts for c in mine], [c.median_us for c in mine], styles.get(p, "--"), marker="o",
                    label=f"{LABELS[m]}, P={p}", color=f"C{METHODS.index(m)}", alpha=1.0 if p == 1 else 0.6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter
    plain = FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.set_xticks(sorted({c.mounts for c in cs}))  # the measured sizes, as plain numbers
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("mounts in the caller's mount namespace (M)")
    ax.set_ylabel("per-namespace cost, median (µs)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


# What each method's namespace holds, seen from inside (mountinfo lists what lies under the
# root): the rootfs, plus its one submount where the method copies submounts.
EXPECTED_INSIDE = {"classic": 2, "open_tree": 1, "open_tree_recursive": 2, "fsmount": 1, "empty_move": 1}
ROOTFS_SOURCE = "otns-bench-rootfs"


def check_problems(c: dict) -> list[str]:
    """What is wrong with one method's --check record (empty when it built the right namespace
    every time and left the caller as it found it)."""
    m = c["method"]
    if "error" in c:
        return [c["error"]]
    fresh_tmpfs = m == "fsmount"  # its root is a new, empty tmpfs, not the prepared rootfs
    wrong = []
    if c["mounts_inside"] != EXPECTED_INSIDE[m]:
        wrong.append(f"{c['mounts_inside']} mounts inside, expected {EXPECTED_INSIDE[m]}")
    if not c["root_tmpfs"]:
        wrong.append("the root is not a tmpfs")
    if fresh_tmpfs and (c["marker"] or c["root_source"] == ROOTFS_SOURCE):
        wrong.append("the root is the prepared rootfs, not a fresh tmpfs")
    if not fresh_tmpfs and not (c["marker"] and c["root_source"] == ROOTFS_SOURCE):
        wrong.append(f"the root is {c['root_source'] or '?'}, not the prepared rootfs")
    if not c["other_ns"]:
        wrong.append("the worker was still in the caller's namespace")
    if not c["back_home"]:
        wrong.append("the worker did not get back to the caller's namespace")
    if not c["caller_mounts_unchanged"] or c["caller_mounts"] != c["mounts"]:
        wrong.append("the caller's mount table changed")
    if c["fds_after"] != c["fds_before"]:
        wrong.append(f"fds leaked: {c['fds_before']} before, {c['fds_after']} after")
    if c["ns_alive_after"]:
        wrong.append(f"{c['ns_alive_after']} of {c['iterations']} namespaces still exist after their last user left")
    if c["ns_unknown"]:
        wrong.append(f"cannot tell whether {c['ns_unknown']} namespaces were freed (listmount by namespace id failed)")
    return wrong
