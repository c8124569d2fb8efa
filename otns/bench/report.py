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

from base import safefs

METHODS = ("classic", "open_tree", "open_tree_recursive", "fsmount", "empty_move")
LABELS = {
    "classic": "(a) unshare + pivot_root",
    "open_tree": "(b) open_tree NAMESPACE",
    "open_tree_recursive": "(b) open_tree NAMESPACE|RECURSIVE",
    "fsmount": "(c) fsmount NAMESPACE",
    "empty_move": "(c) UNSHARE_EMPTY_MNTNS + move_mount",
}
# The claim, as slopes of log(cost) against log(M): 1 when a namespace costs in proportion
# to the caller's mount table, 0 when its size does not matter. From 30 to 10,000 mounts,
# FLAT_SLOPE allows (b) at most x1.8 and GROWS_SLOPE asks (a) for at least x5.7.
FLAT_SLOPE = 0.1
GROWS_SLOPE = 0.3
# Resamples for the slopes' confidence intervals; a fixed seed keeps a verdict reproducible.
BOOTSTRAP = 2000
CONFIDENCE = 0.95
SEED = 20261128


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
class Slope:
    """How one method's median cost scales with M: Theil-Sen slope in log-log space (the
    median of the slopes between every two sizes, so one disturbed size cannot move it) and
    its bootstrap interval (samples resampled within each size)."""
    estimate: float
    low: float
    high: float
    sizes: int


def _theil_sen(logm, logc):
    """Theil-Sen slopes, one per row of logc (shape: rows x sizes)."""
    import numpy as np

    i, j = np.triu_indices(len(logm), k=1)
    return np.median((logc[:, j] - logc[:, i]) / (logm[j] - logm[i]), axis=1)


def slope(raw: Raw, method: str, workers: int) -> Slope | None:
    import numpy as np

    groups: dict[int, list[int]] = {}
    for meth, mounts, p, _, _, ns in raw.samples:
        if meth == method and p == workers and ns > 0:
            groups.setdefault(mounts, []).append(ns)
    sizes = sorted(groups)
    if len(sizes) < 2:
        return None
    logm = np.log(np.array(sizes, dtype=float))
    point = np.log(np.array([[statistics.median(groups[size]) for size in sizes]]))
    rng = np.random.default_rng(SEED)
    boots = np.empty((BOOTSTRAP, len(sizes)))
    for k, size in enumerate(sizes):
        v = np.array(groups[size], dtype=float)
        boots[:, k] = np.median(v[rng.integers(0, len(v), size=(BOOTSTRAP, len(v)))], axis=1)
    spread = _theil_sen(logm, np.log(boots))
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(spread, [tail, 100 - tail])
    return Slope(float(_theil_sen(logm, point)[0]), float(low), float(high), len(sizes))


@dataclass
class Verdict:
    holds: bool | None  # None: cannot tell
    line: str
    noisy: bool = False  # cannot tell because the measurements disagree: another round may settle it


def verdict(cs: list[Cell], raw: Raw) -> Verdict:
    """HOLDS only when the whole interval of (b)'s slope is flat and the whole interval of (a)'s
    grows; DOES NOT HOLD only when an interval lies wholly on the wrong side; else CANNOT TELL."""
    workers = min((c.workers for c in cs), default=1)
    if "open_tree" in raw.skipped:
        return Verdict(None, f"CANNOT TELL: this kernel lacks OPEN_TREE_NAMESPACE ({raw.skipped['open_tree']})")
    a, b = slope(raw, "classic", workers), slope(raw, "open_tree", workers)
    ga, gb = growth(cs, "classic", workers), growth(cs, "open_tree", workers)
    if a is None or b is None or ga is None or gb is None:
        return Verdict(None, "CANNOT TELL: measure at least two mount-table sizes for both (a) and (b)")
    lo, hi = ga[0], ga[1]
    detail = (f"from {lo} to {hi} mounts (P={workers}, {b.sizes} sizes), (b) open_tree costs x{gb[2]:.2f} "
              f"(log-log slope {b.estimate:.2f}, {CONFIDENCE:.0%} interval {b.low:.2f}..{b.high:.2f}) "
              f"and (a) unshare+pivot_root x{ga[2]:.1f} (slope {a.estimate:.2f}, {a.low:.2f}..{a.high:.2f})")
    if b.high < FLAT_SLOPE and a.low > GROWS_SLOPE:
        return Verdict(True, f"HOLDS: {detail}: (b) stays flat while (a) grows")
    wrong = [x for x in (
        f"(b) grows (slope >= {FLAT_SLOPE})" if b.low >= FLAT_SLOPE else None,
        f"(a) does not grow (slope <= {GROWS_SLOPE})" if a.high <= GROWS_SLOPE else None) if x]
    if wrong:
        return Verdict(False, f"DOES NOT HOLD: {detail}: {'; '.join(wrong)}")
    return Verdict(None, f"CANNOT TELL: {detail}: the measurements are too noisy to decide", noisy=True)


def cost_table(cs: list[Cell], workers: int) -> tuple[list[str], list[list[str]]]:
    """The per-namespace cost with P workers, median / p90 in µs: the header and a row per M
    (the terminal and bench.md show the same table)."""
    methods = [m for m in METHODS if any(c.method == m for c in cs)]
    rows = []
    for mounts in sorted({c.mounts for c in cs if c.workers == workers}):
        cells = [lookup(cs, m, mounts, workers) for m in methods]
        r = ratio(cs, mounts, workers)
        rows.append([f"{mounts:,}", *(f"{c.median_us:,.0f} / {c.p90_us:,.0f}" if c else "-" for c in cells),
                     f"{r:.1f}" if r else "-"])
    return ["mounts", *(LABELS[m] for m in methods), "(a)/(b)"], rows


def markdown(cs: list[Cell], raw: Raw, title: str) -> str:
    lines = [f"# {title}", ""]
    for p in sorted({c.workers for c in cs}):
        header, rows = cost_table(cs, p)
        lines += [f"## P = {p} worker{'s' if p > 1 else ''}: per-namespace cost, median / p90 in µs", "",
                  "| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
                  "|---:|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
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
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    safefs.write_atomic(path, png.getvalue())


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
