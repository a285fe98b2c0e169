"""What the SLURM launcher reads of SLURM's replies and of ``hydra.launcher``'s values, without a
cluster: squeue's job ids, sinfo's time limits and GRES, each against values worked by hand, and
the values no cluster takes, refused in one line before SLURM is asked (tests/test_slurm puts the
same refusals to a real cluster through the CLI)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

pytest.importorskip("submitit")  # the SLURM extra

from resnet_exp.runs.slurm import gpu_count, gres_gpus, last_line, limit_minutes, task_count, value_problem  # noqa: E402


def test_squeue_job_ids_count_their_tasks():
    # a pending array's tasks in one line (with its throttle), one task, a plain job, a heterogeneous job's part
    assert [task_count(j) for j in ("123_[0-3,5%2]", "123_[7]", "123_4", "123", "123+0")] == [5, 1, 1, 1, 1]


def test_sinfo_time_limits_in_minutes():
    cases = {"infinite": None, "UNLIMITED": None, "1-00:00:00": 1440, "2-12:30:00": 3630, "2:00:00": 120,
             "30:00": 30, "45": 45, "1:30:01": 91}  # fmt: skip
    assert {limit: limit_minutes(limit) for limit in cases} == cases


def test_gres_gpus_and_the_last_line_of_a_message():
    assert [gpu_count(g) for g in ("gpu:4", "gpu:a100:2", "gpu:a100:4(S:0-1)", "gpu")] == [4, 2, 4, 0]
    assert [gres_gpus(g) for g in ("gpu:a100:2,tmp:1", "gpu:2,gpu:v100:1", "(null)")] == [2, 3, 0]
    assert last_line("sbatch: warning: x\nsbatch: error: Batch job submission failed\n\n", "none") == (
        "sbatch: error: Batch job submission failed"
    )
    assert last_line("  \n", "sbatch failed") == "sbatch failed"


@pytest.mark.parametrize(
    "values,message",
    [
        ({}, None),
        ({"timeout_min": 0}, "hydra.launcher.timeout_min=0 must be 1 or more"),
        ({"tasks_per_node": 0}, "hydra.launcher.tasks_per_node=0 must be 1 or more"),
        ({"gpus_per_node": -1}, "hydra.launcher.gpus_per_node=-1 must be 0 or more"),
        ({"timeout_min": 5, "signal_delay_s": 299}, None),
        (
            {"timeout_min": 5, "signal_delay_s": 300},
            "hydra.launcher.signal_delay_s=300 is not less than hydra.launcher.timeout_min=5 minutes (300 s): the "
            "time-limit warning would come as the job starts, and each start would count as a timeout; make it "
            "shorter than the limit (a tenth of it: 30)",
        ),
    ],
)
def test_values_no_cluster_takes(values, message):
    preset = {"timeout_min": 60, "signal_delay_s": 120, "nodes": 1, "tasks_per_node": 1, "cpus_per_task": 8,
              "gpus_per_node": 1, "mem_gb": 32, "max_num_timeout": 5, "array_parallelism": 64}  # fmt: skip
    assert value_problem(OmegaConf.create({**preset, **values})) == message
