"""The report's pictures: accuracy and loss curves per group (curves.png), and the signal
through each residual unit (signal.png), with matplotlib."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from resnet_exp.analysis.groups import Group
from resnet_exp.analysis.jobs import PRECISE, RUNNING

# The panels of curves.png: (name, title, y-axis label, scale, the curve of a job); accuracies in %,
# as in the tables. A panel no completed run has a curve for is left out.
PANELS = (
    ("test/acc", f"test accuracy, {PRECISE}", "accuracy (%)", 100.0, lambda j: j.acc(PRECISE)),
    ("test/acc_running", f"test accuracy, {RUNNING}", "accuracy (%)", 100.0, lambda j: j.acc(RUNNING)),
    ("train/acc", "training accuracy", "accuracy (%)", 100.0, lambda j: j.curve("train/acc")),
    ("train/loss", "training loss", "cross-entropy", 1.0, lambda j: j.curve("train/loss")),
)


def curve_data(groups: Sequence[Group]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """What curves.png draws: per panel (by name) and per group, (epochs, mean, std) over the group's
    completed runs (std 0 for one run), cut to the shortest run's epochs; groups without a completed
    run with that curve are left out, and so are panels without any."""
    data: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for name, _, _, scale, of in PANELS:
        panel = {}
        for g in groups:
            curves = [c for c in (of(j) for j in g.done) if c]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            y = np.array([c[:length] for c in curves]) * scale
            std = y.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(length)
            panel[f"{g.label} (n={len(curves)})"] = (np.arange(1, length + 1), y.mean(axis=0), std)
        if panel:
            data[name] = panel
    return data


def plot(groups: Sequence[Group], path: Path) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Draw curves.png: one panel per metric of ``PANELS``, a mean line and a ± std band per group;
    returns the data drawn (``curve_data``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = curve_data(groups)
    panels = [p for p in PANELS if p[0] in data] or list(PANELS[2:])
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.8))
    for ax, (key, title, ylabel, _, _) in zip(axes, panels):
        longest = 1
        for label, (x, mean, std) in data.get(key, {}).items():
            (line,) = ax.plot(x, mean, marker="o", markersize=3, label=label)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
            longest = max(longest, len(x))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_xticks(range(1, longest + 1, max(1, longest // 10)))
        ax.set_title(f"{title}: mean ± std over seeds", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:  # below the panels, where it hides no point
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.035 * ((len(labels) - 1) // 3), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return data


# The panels of signal.png: (measure, title, log scale)
SIGNAL_PANELS = (
    ("act_std", "output std of each residual unit", False),
    ("input_grad_norm", "loss gradient norm at each unit's input", True),
)


def signal_data(groups: Sequence[Group]) -> dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """What signal.png draws: per (measure, moment) and group, the unit depths and the mean over
    the group's completed runs of the measure at initialisation ("init", epoch 0) and at the end
    ("end", each run's last measured epoch); a run is counted where it measured that moment, and
    groups whose runs measured nothing are left out."""
    data: dict[tuple[str, str], dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for measure, _, _ in SIGNAL_PANELS:
        for moment in ("init", "end"):
            panel = data.setdefault((measure, moment), {})
            for g in groups:
                per_run = []
                for j in g.done:
                    rows = [r for r in j.signal if r["kind"] == "unit"]
                    if not rows:
                        continue
                    epoch = 0.0 if moment == "init" else max(r["epoch"] for r in rows)
                    chosen = sorted((r for r in rows if r["epoch"] == epoch), key=lambda r: r["depth"])
                    if chosen:  # a run resumed after the project gained the probe has no epoch 0
                        per_run.append([r[measure] for r in chosen])
                if per_run and len({len(r) for r in per_run}) == 1:
                    depths = np.arange(1, len(per_run[0]) + 1)
                    panel[f"{g.label} (n={len(per_run)})"] = (depths, np.array(per_run).mean(axis=0))
    return data


def plot_signal(groups: Sequence[Group], path: Path) -> dict:
    """Draw signal.png (where any run measured signal propagation): the output std and the input
    gradient norm of each residual unit against its depth, at initialisation and at the end, mean
    over seeds per group; returns the data drawn (``signal_data``)."""
    data = signal_data(groups)
    if not any(data.values()):
        return data
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for row, (measure, title, log_scale) in enumerate(SIGNAL_PANELS):
        for col, moment in enumerate(("init", "end")):
            ax = axes[row][col]
            for label, (x, y) in data[(measure, moment)].items():
                ax.plot(x, y, marker="o", markersize=4, label=label)
            ax.set_title(f"{title}, {'at initialisation' if moment == 'init' else 'after the last epoch'}", fontsize=10)
            ax.set_xlabel("residual unit (depth, input side first)")
            ax.set_ylabel(measure.replace("_", " "))
            if log_scale:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05 + 0.03 * ((len(labels) - 1) // 3), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return data
