"""``python -m resnet_exp.gpu_check [--out DIR] [--budget SECONDS] [--data-root DIR] [--dry-run]``:
the GPU proof in one command (``make gpu-check``).

On a CUDA machine it runs, in order, within ``--budget`` seconds of wall time (default 480):

1. ``environment``: ``nvidia-smi``, the versions of Python, torch, CUDA and the project's packages;
2. ``gpu-tests``: ``pytest -m gpu`` (tests/test_gpu.py: bf16 against fp32, channels_last, the
   device pipeline on CUDA, the divergence guard's 25-step check, compile=reduce-overhead, an exact
   resume, two jobs of the parallel launcher on one GPU, DDP with nccl and SyncBatchNorm);
3. ``bench-default``, ``bench-fast`` and ``bench-compile``: ``python -m resnet_exp.bench``, the
   default path (fp32), ``trainer.precision=auto`` (bf16 where the GPU has it) and
   ``compile=reduce-overhead``, each against the torchvision reference in the same run; and
   ``bench-depth-110`` and ``-164``: He et al.'s small-image network at 110 and 164 layers (28 px,
   ``precision=auto``), what ``experiment=depth``'s jobs cost on this GPU;
4. ``sweep-default``: the default sweep ``python -m resnet_exp.run -m block.order=post,pre``, timed
   from process start to exit;
5. ``sweep-parallel``: 2 orderings x 5 seeds under ``hydra/launcher=parallel``, timed likewise;
6. ``reports``: ``python -m resnet_exp.report`` of both sweeps.

Everything goes into one folder (``--out``, default ``outputs/gpu_check``), ready to commit under
``experiments/``: each stage's log, the bench JSON, ``nvidia-smi.txt``, ``versions.json``, the
sweeps' per-job ``config.yaml``, ``metrics.csv`` and ``status.json`` and their reports (not their
checkpoints), and ``summary.json`` and ``README.md`` with each stage's outcome and wall time. A
stage that the remaining budget cannot hold is skipped and listed, not lost. Without CUDA it says
so in one line and exits 2; ``--dry-run`` lists the stages and checks the environment anywhere.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# What the proof needs besides torch (the GPU machine has torch, Lightning and the scientific
# stack; the rest comes as wheels, experiments/gpu_check/wheels.sh).
NEEDED = ("hydra", "omegaconf", "wandb", "pytest", "hydra_plugins.hydra_joblib_launcher", "pytorch_lightning")
# Where the sweeps' files go in the folder: what a report needs, and no checkpoints. Spelled here, not
# taken from records.py: this module runs before the wheels it installs (omegaconf among them) are
# there, so it imports only the standard library (tests/test_gpu_check.py holds both).
KEPT = ("config.yaml", "metrics.csv", "status.json", "signal.csv", "train_curve.csv", "run.log", ".hydra/hydra.yaml")


@dataclass
class Stage:
    name: str
    commands: list[list[str]]
    least_s: float  # below this much budget left, the stage is skipped rather than cut short
    outcome: dict = field(default_factory=dict)


def stages(python: str, out: Path, runs: Path, data: list[str], jobs: int) -> list[Stage]:
    run = [python, "-m", "resnet_exp.run", "-m"]

    def bench(name: str, overrides: list[str], least_s: float) -> Stage:
        """python -m resnet_exp.bench with these overrides, its JSON as NAME.json (bench_default.json)."""
        out_file = out / f"{name.replace('-', '_')}.json"
        return Stage(name, [[python, "-m", "resnet_exp.bench", "--out", str(out_file), *overrides, *data]], least_s)

    return [
        Stage(
            "gpu-tests",
            [
                [
                    python,
                    "-m",
                    "pytest",
                    "-m",
                    "gpu",
                    "-o",
                    "addopts=-ra",
                    "-p",
                    "no:cacheprovider",
                    "tests/test_gpu.py",
                    f"--junitxml={out / 'gpu_tests.xml'}",
                ]
            ],
            60,
        ),  # fmt: skip
        bench("bench-default", [], 30),
        bench("bench-fast", ["trainer.precision=auto"], 30),  # the bf16 fast path, opt-in since fp32 is the default
        bench("bench-compile", ["compile=reduce-overhead"], 90),
        # experiment=depth's deepest networks (He et al.'s small-image network at 28 px): what its jobs cost here
        bench("bench-depth-110", ["model=cifar_resnet110", "data.resize=null", "trainer.precision=auto"], 30),
        bench("bench-depth-164", ["model=cifar_resnet164", "data.resize=null", "trainer.precision=auto"], 30),
        Stage(
            "sweep-default", [[*run, "block.order=post,pre", *data, f"hydra.sweep.dir={runs / 'sweep_default'}"]], 45
        ),
        Stage(
            "sweep-parallel",
            [
                [
                    *run,
                    "hydra/launcher=parallel",
                    f"hydra.launcher.n_jobs={jobs}",
                    "block.order=post,pre",
                    "seed=1,2,3,4,5",
                    *data,
                    f"hydra.sweep.dir={runs / 'sweep_parallel'}",
                ]
            ],  # fmt: skip
            60,
        ),
        Stage(
            "reports",
            [
                [python, "-m", "resnet_exp.report", str(runs / name), "--out", str(out / name)]
                for name in ("sweep_default", "sweep_parallel")
            ],  # fmt: skip
            10,
        ),
    ]


def environment(data_root: str | None) -> tuple[dict, list[str]]:
    """The versions that matter and what is missing (one line each)."""
    problems = [f"{name} is not installed" for name in NEEDED if importlib.util.find_spec(name) is None]
    info: dict = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        import torch

        info.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
        if torch.cuda.is_available():
            info.update(gpu=torch.cuda.get_device_name(0), gpus=torch.cuda.device_count(),
                        bf16=torch.cuda.is_bf16_supported(), cudnn=torch.backends.cudnn.version())  # fmt: skip
    except ImportError:
        problems.append("torch is not installed")
    for name in ("torchvision", "pytorch_lightning", "torchmetrics", "hydra", "omegaconf", "wandb", "numpy", "scipy"):
        try:
            info[name] = __import__(name).__version__
        except Exception:
            info[name] = None
    try:
        from resnet_exp.config import DataConfig
        from resnet_exp.data import DataError, check

        defaults = DataConfig()  # the data set the GPU tests and timed sweeps train on: the default one
        info["data"] = str(check(defaults.name, data_root, defaults.cache_dir, download=False))
    except DataError as e:
        problems.append(str(e))
    except ImportError as e:
        problems.append(f"the project cannot be imported ({e})")
    return info, problems


def run_stage(stage: Stage, out: Path, left: float) -> None:
    """Run the stage's commands one after another, with what is left of the budget as their limit;
    record the outcome (ok, failed, timed out) and the wall time, from process start to exit."""
    log = out / f"{stage.name}.log"
    start = time.monotonic()
    status, codes = "ok", []
    with open(log, "w") as f:
        for command in stage.commands:
            f.write("$ " + " ".join(command) + "\n")
            f.flush()
            remaining = left - (time.monotonic() - start)
            try:
                codes.append(subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, timeout=remaining).returncode)
            except subprocess.TimeoutExpired:
                status = "timed out"
                break
    if status == "ok" and any(codes):
        status = "failed"
    stage.outcome = {"status": status, "wall_s": round(time.monotonic() - start, 1), "exit_codes": codes}


def keep_sweeps(runs: Path, out: Path) -> None:
    """Copy what a report and a reader need of each sweep into the folder, leaving checkpoints."""
    for sweep in sorted(p for p in runs.iterdir() if p.is_dir()):
        for path in sweep.rglob("*"):
            rel = path.relative_to(sweep)
            if path.is_file() and (rel.name == "sweep.yaml" or any(str(rel).endswith(k) for k in KEPT)):
                target = out / sweep.name / "jobs" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


def write_summary(out: Path, info: dict, done: list[Stage], budget: float, wall: float) -> None:
    summary = {
        "environment": info,
        "budget_s": budget,
        "wall_s": round(wall, 1),
        "stages": {s.name: s.outcome for s in done},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# GPU check",
        "",
        f"{info.get('gpu', 'no GPU')}; Python {info['python']}, torch {info.get('torch')} (CUDA {info.get('cuda')}), "
        f"pytorch-lightning {info.get('pytorch_lightning')}. Made by `python -m resnet_exp.gpu_check`, "
        f"{wall:.0f} s of its {budget:.0f} s budget.",
        "",
        "| stage | outcome | wall s | log |",
        "|---|---|---|---|",
    ]
    for s in done:
        o = s.outcome
        lines.append(f"| {s.name} | {o['status']}{': ' + o['reason'] if o.get('reason') else ''} | "
                     f"{o.get('wall_s', '')} | `{s.name}.log` |")  # fmt: skip
    (out / "README.md").write_text("\n".join(lines) + "\n")


def _cuda() -> bool:
    """Whether torch is installed and sees a CUDA GPU (torch alone is imported)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def main(argv: list[str] | None = None) -> int:
    # command_line.described's rule, spelled here: this module imports nothing of the project's (KEPT)
    summary = " ".join(__doc__.strip().split("\n\n")[0].split()).split("``: ", 1)[1]
    parser = argparse.ArgumentParser(prog="python -m resnet_exp.gpu_check", description=summary)
    parser.add_argument("--out", type=Path, default=Path("outputs/gpu_check"), help="the folder to write")
    parser.add_argument("--budget", type=float, default=480, help="seconds of wall time for all stages (480)")
    parser.add_argument("--data-root", default=None, help="the folder of the four IDX files (data.root)")
    parser.add_argument("--jobs", type=int, default=5, help="jobs at once in the parallel sweep (default 5)")
    parser.add_argument("--dry-run", action="store_true", help="list the stages and check the environment only")
    args = parser.parse_args(argv)
    began = time.monotonic()
    if not args.dry_run and not _cuda():  # said at once, before the versions and the data are read
        print("error: no CUDA GPU here (torch.cuda.is_available() is False); run the GPU check on a GPU machine",
              file=sys.stderr)  # fmt: skip
        return 2
    info, problems = environment(args.data_root)
    data = [f"data.root={Path(args.data_root).resolve()}"] if args.data_root else []
    planned = stages(sys.executable, args.out.resolve(), Path("<scratch>"), data, args.jobs)
    if args.dry_run:
        print(f"environment: {json.dumps(info)}")
        for problem in problems:
            print(f"problem: {problem}")
        print(f"CUDA: {'yes, ' + str(info.get('gpu')) if info.get('cuda_available') else 'no (the stages need it)'}")
        print(f"stages, within {args.budget:.0f} s, into {args.out}:")
        print("  environment: nvidia-smi, versions.json")
        for s in planned:
            for command in s.commands:
                print(f"  {s.name} (needs at least {s.least_s:.0f} s): {' '.join(command)}")
        return 2 if problems else 0
    if problems:
        print(f"error: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
              file=sys.stderr)  # fmt: skip
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "versions.json").write_text(json.dumps(info, indent=2) + "\n")
    smi = shutil.which("nvidia-smi")
    (out / "nvidia-smi.txt").write_text(subprocess.run([smi], capture_output=True, text=True).stdout if smi else "")
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch:
        runs = Path(scratch)
        todo = stages(sys.executable, out, runs, data, args.jobs)
        for stage in todo:
            left = args.budget - (time.monotonic() - began)
            if left < stage.least_s:
                stage.outcome = {
                    "status": "skipped",
                    "reason": f"{left:.0f} s of budget left, needs {stage.least_s:.0f}",
                }
            else:
                print(f"{stage.name} ...", flush=True)
                run_stage(stage, out, left)
            print(f"{stage.name}: {stage.outcome['status']} ({stage.outcome.get('wall_s', 0)} s)", flush=True)
        keep_sweeps(runs, out)
    write_summary(out, info, todo, args.budget, time.monotonic() - began)
    print(f"written: {out}")
    return 0 if all(s.outcome["status"] == "ok" for s in todo) else 1


if __name__ == "__main__":
    sys.exit(main())
