"""The GPU proof's plumbing, on the CPU: its refusal without CUDA, its dry run, how a stage's
outcome and the budget are recorded, what of a sweep it keeps."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from resnet_exp import gpu_check
from tests.conftest import run_cli


def test_it_starts_before_the_wheels_it_installs():
    """gpu_check runs on a GPU machine before the project's other dependencies are there (it lists
    what is missing): at its top it imports the standard library only, nothing of the project's."""
    import ast

    tree = ast.parse(open(gpu_check.__file__).read())
    roots = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    assert roots - {"__future__"} <= set(sys.stdlib_module_names), roots - set(sys.stdlib_module_names)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run")
def test_without_cuda_it_says_so_in_one_line(tmp_path):
    r = run_cli("resnet_exp.gpu_check", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "error: no CUDA GPU here (torch.cuda.is_available() is False); run the GPU check on a GPU machine"
    )
    assert not (tmp_path / "out").exists()


def test_dry_run_lists_the_stages_and_checks_the_environment(tmp_path, data_dir):
    r = run_cli("resnet_exp.gpu_check", "--dry-run", "--data-root", str(data_dir), "--budget", "300", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    env = json.loads(r.stdout.splitlines()[0].removeprefix("environment: "))
    assert env["torch"] == torch.__version__ and env["data"] == str(data_dir)
    names = [line.split()[0] for line in r.stdout.splitlines() if line.startswith("  ")]
    assert names == ["environment:", "gpu-tests", "bench-default", "bench-fast", "bench-compile", "bench-depth-110",
                     "bench-depth-164", "sweep-default", "sweep-parallel", "reports", "reports"]  # fmt: skip
    assert "block.order=post,pre seed=1,2,3,4,5" in r.stdout and f"data.root={data_dir}" in r.stdout
    assert "within 300 s" in r.stdout and not (tmp_path / "outputs").exists()


def test_stage_outcomes_budget_and_what_is_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    ok = gpu_check.Stage("ok", [[sys.executable, "-c", "print('hello')"]], 0)
    failed = gpu_check.Stage("failed", [[sys.executable, "-c", "raise SystemExit(3)"]], 0)
    slow = gpu_check.Stage("slow", [[sys.executable, "-c", "pass"]], 0)
    gpu_check.run_stage(ok, out, left=600)
    gpu_check.run_stage(failed, out, left=600)
    gpu_check.run_stage(slow, out, left=1e-4)  # less time than starting Python takes
    assert (ok.outcome["status"], ok.outcome["exit_codes"]) == ("ok", [0])
    assert (failed.outcome["status"], failed.outcome["exit_codes"]) == ("failed", [3])
    assert slow.outcome["status"] == "timed out"
    assert "hello" in (out / "ok.log").read_text() and (out / "ok.log").read_text().startswith("$ ")
    skipped = gpu_check.Stage("late", [], 60, {"status": "skipped", "reason": "10 s of budget left, needs 60"})

    runs = tmp_path / "runs" / "sweep_default"
    for rel in ("0/metrics.csv", "0/config.yaml", "0/status.json", "0/checkpoints/last.ckpt", "sweep.yaml"):
        (runs / rel).parent.mkdir(parents=True, exist_ok=True)
        (runs / rel).write_text(rel)
    gpu_check.keep_sweeps(tmp_path / "runs", out)
    kept = sorted(str(p.relative_to(out / "sweep_default")) for p in (out / "sweep_default").rglob("*") if p.is_file())
    assert kept == ["jobs/0/config.yaml", "jobs/0/metrics.csv", "jobs/0/status.json", "jobs/sweep.yaml"]
    # its own spelling of the names (it runs before omegaconf is installed) is every record's
    from resnet_exp.runs.records import RECORDS, RUN_LOG

    assert set(gpu_check.KEPT) >= {*RECORDS, RUN_LOG}

    gpu_check.write_summary(out, {"python": "3.12", "gpu": "X"}, [ok, failed, slow, skipped], 480, 123.4)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stages"]["late"]["status"] == "skipped" and summary["wall_s"] == 123.4
    readme = (out / "README.md").read_text()
    assert "| late | skipped: 10 s of budget left, needs 60 |  | `late.log` |" in readme
    assert "| failed | failed |" in readme
