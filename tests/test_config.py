"""Configs compose for every ordering; bad input stops before any work with a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from resnet_exp.config import ConfigError, compose_config, validate
from resnet_exp.models.blocks import ORDERINGS
from tests.conftest import ROOT, run_cli, run_cli_here


@pytest.mark.parametrize("order", sorted(ORDERINGS))
def test_composes_the_seed_recipe(order):
    cfg = compose_config([f"block.order={order}"])
    validate(cfg)
    assert cfg.block.order == order
    assert (cfg.data.resize, cfg.data.batch_size, cfg.optim.lr, cfg.trainer.max_epochs) == (96, 256, 0.1, 10)
    assert cfg.optim._target_ == "torch.optim.SGD" and cfg.optim.momentum == 0.0
    assert list(cfg.model.channels) == [32, 64, 128] and list(cfg.model.blocks) == [2, 2, 2]
    assert cfg.logger.wandb.mode in ("offline", "online", "disabled")


@pytest.mark.parametrize(
    "experiment,params",
    [
        (
            "identity_mappings",
            {"block.order": "post,bn_after_add,relu_before_add,relu_only_pre,pre", "seed": "1,2,3,4,5"},
        ),
        ("degradation", {"model": "resnet18,resnet34", "block.shortcut": "projection,none"}),
        ("tuned_orderings", {"block.order": "post,pre", "optim.lr": "0.025,0.05,0.1,0.2,0.4", "seed": "1,2"}),
        ("quick", {"block.order": "post,pre"}),
    ],
)
def test_experiment_presets_are_multiruns(experiment, params):
    cfg = compose_config([f"experiment={experiment}"], return_hydra_config=True)
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert dict(cfg.hydra.sweeper.params) == params


def test_every_trainer_argument_is_a_key():
    cfg = compose_config(
        ["trainer.gradient_clip_val=0.5", "trainer.deterministic=true", "trainer.precision=bf16-mixed"]
    )
    assert (cfg.trainer.gradient_clip_val, cfg.trainer.deterministic, cfg.trainer.precision) == (
        0.5,
        True,
        "bf16-mixed",
    )


def test_optimizer_and_scheduler_are_config_choices():
    cfg = compose_config(["optim=adamw", "scheduler=cosine", "trainer.max_epochs=4"])
    assert cfg.optim._target_ == "torch.optim.AdamW"
    assert cfg.scheduler._target_ == "torch.optim.lr_scheduler.CosineAnnealingLR" and cfg.scheduler.T_max == 4


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "block.order=postt",
            "block.order=postt is not a known ordering; choose one of: "
            "post, bn_after_add, relu_before_add, relu_only_pre, pre",
        ),
        ("block.shortcut=skip", "block.shortcut=skip is not a shortcut; choose one of: projection, none"),
        ("block.projection_input=x", "block.projection_input=x is not valid; choose one of: relu, preact"),
        ("model.final_norm=maybe", "model.final_norm=maybe is not valid; choose one of: true, false, auto"),
        ("data.batch_size=0", "data.batch_size=0 must be a whole number of at least 1"),
        ("optim.lr=0", "optim.lr=0 must be a finite number greater than 0"),
        (
            "logger.wandb.mode=onlin",
            "logger.wandb.mode=onlin is not a W&B mode; choose one of: online, offline, disabled",
        ),
        ("data.pipeline=gpu", "data.pipeline=gpu is not a pipeline; choose one of: auto, device, torchvision"),
        ("data.augment=flip", "data.augment=flip is not an augmentation; choose one of: none, crop_flip"),
        (
            "trainer=ddp trainer.devices=3",
            "data.batch_size=256 cannot be split evenly over 3 processes (trainer.devices x trainer.num_nodes); "
            "choose a multiple of 3",
        ),
        ("data.batch_size=1000000", "data.batch_size=1000000 is more than the 60000 training images"),
        ("data.val_size=10000 data.batch_size=50001", "data.batch_size=50001 is more than the 50000 training"),
        ("optim.lr=inf", "optim.lr=inf must be a finite number greater than 0"),
        ("seed=-1", "seed=-1 must be from 0 to 4294967295"),
        ("model.num_classes=0", "model.num_classes=0 cannot hold Fashion-MNIST's 10 classes (labels 0-9); use 10"),
        ("trainer.precision=fp7", "trainer.precision=fp7 is not a precision; choose one of: auto, 32-true, bf16-mixed"),
        ("trainer.accelerator=tpu", "trainer.accelerator=tpu is not available here; choose one of: auto, cpu, gpu"),
        ("trainer.devices=5", "trainer.devices=5 needs a run on several processes: use trainer=ddp"),
        ("trainer.devices=0", "trainer.devices=0 must be at least 1 (or -1 or auto: every device there is"),
        # every number, from one rule: NaN and infinity refused where the library would take them
        ("optim.momentum=nan", "optim.momentum=nan must be a finite number"),
        ("optim=adamw optim.weight_decay=inf", "optim.weight_decay=inf must be a finite number"),
        ("scheduler=step scheduler.gamma=nan", "scheduler.gamma=nan must be a finite number"),
        ("trainer.gradient_clip_val=-inf", "trainer.gradient_clip_val=-inf must be a finite number"),
        # a word where a number is: named, not a comparison's TypeError
        ("trainer.max_epochs=abc", "trainer.max_epochs=abc must be a whole number"),
        # memory the config alone says it needs: the data set resized once, held whole
        (
            "data.resize=100000",
            "data.resize=100000 needs 636.6 TB to hold Fashion-MNIST's 70,000 images resized once "
            "(data.pipeline=auto), and this machine has",
        ),  # fmt: skip
        ("trainer.limit_train_batches=abc", "trainer.limit_train_batches=abc must be a number (a count of batches"),
        ("trainer=ddp trainer.devices=-2", "trainer.devices=-2 must be at least 1 (or -1 or auto"),
        ("+foo=bar", "foo is not a config key; the keys there are: block, model, data, optim"),
        ("+data.foo=1", "data.foo is not a config key; the keys there are: name, root, cache_dir, download"),
        (
            "compile=fast",
            "compile=fast is not a torch.compile mode; choose one of: default, reduce-overhead, max-autotune, "
            "max-autotune-no-cudagraphs (or null: eager)",
        ),
    ],
)
def test_validate_names_bad_value_and_choices(override, message):
    """Each refused value in one line, as the command line words it (``load_config``: composed, where
    the schema refuses a name that is not one of a field's choices, then checked)."""
    from resnet_exp.command_line import load_config

    with pytest.raises(ConfigError) as err:
        load_config(override.split())
    assert str(err.value).startswith(message)


def test_the_schema_itself_refuses_a_name_that_is_not_a_choice():
    """The named choices are enums in the schema: OmegaConf refuses another name when the config is
    composed, with the key and the allowed names, before any check runs; a choice reads as the
    string it names."""
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as err:
        compose_config(["block.order=postt"])
    cause = str(err.value.__cause__)
    assert "Invalid value 'postt', expected one of [post, bn_after_add, relu_before_add, relu_only_pre, pre]" in cause
    assert "full_key: block.order" in cause
    cfg = compose_config(["block.order=pre", "data.pipeline=device"])
    assert cfg.block.order == "pre" and f"{cfg.block.order}/{cfg.data.pipeline}" == "pre/device"


def test_bad_value_in_any_sweep_job_stops_the_sweep_before_any_work(tmp_path):
    r = run_cli("resnet_exp.run", "-m", "block.order=post,postt", f"output_dir={tmp_path}/out", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: block.order=postt is not a known ordering; choose one of: "
        f"post, bn_after_add, relu_before_add, relu_only_pre, pre "
        f"(in job block.order=postt output_dir={tmp_path}/out)"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("swept", "refused", "message"),
    [
        # a library's refusal, found on stand-in parts (build.check_parts)
        (
            "optim.momentum=0.9,-1",
            "optim.momentum=-1",
            "torch.optim.SGD refuses optim: ValueError: Invalid momentum value: -1",
        ),  # fmt: skip
        # the data set's, found when its files are checked
        ("data.root=DATA,/nonexistent", "data.root=/nonexistent", "data.root=/nonexistent is not a directory"),
    ],
)
def test_a_refused_sweep_names_the_job_that_carries_the_refused_value(
    tmp_path, data_dir, monkeypatch, capfd, swept, refused, message
):
    """Each job's overrides are named where a check over the sweep's distinct parts refuses one, so
    that in a sweep of presets the user need not search for it."""
    out = f"output_dir={tmp_path}/out"
    args = ["-m", swept.replace("DATA", str(data_dir)), out]
    code, err = run_cli_here(*args, cwd=tmp_path, monkeypatch=monkeypatch, capfd=capfd)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"error: {message}") and err.rstrip().endswith(f"(in job {refused} {out})")
    assert not (tmp_path / "out").exists()


def test_activations_that_cannot_fit_in_memory_are_refused_before_any_work(tmp_path, data_dir, monkeypatch, capfd):
    """The memory one training step's activations need at least (every convolution's output, from
    the network run on the meta device) against this machine's: at 1000 px a batch of 60,000 needs
    terabytes, on any machine. Checked per job of a sweep, named; a batch that fits goes on."""
    from resnet_exp.config import bytes_text, machine_memory

    out = f"output_dir={tmp_path}/out"
    big = [
        "data.pipeline=torchvision",
        "data.resize=1000",
        "evaluation.precise_bn_batches=1",
        "trainer.precision=32-true",
    ]
    code, err = run_cli_here(*big, "data.batch_size=60000", out, cwd=tmp_path, monkeypatch=monkeypatch, capfd=capfd)
    # 60,000 images x 23,500,000 convolution outputs each (the stem alone 32 x 500 x 500) x 4 bytes
    need = 60000 * (32 * 500 * 500 + 4 * 32 * 250 * 250 + (4 + 1) * 64 * 125 * 125 + (4 + 1) * 128 * 63 * 63) * 4
    assert (code, err) == (
        2,
        f"error: data.batch_size=60000 at data.resize=1000 needs at least {bytes_text(need)} for the activations of one "
        "training step (model.channels=[32, 64, 128], model.blocks=[2, 2, 2]), and this machine has "
        f"{bytes_text(machine_memory())}; choose a smaller data.batch_size or data.resize\n",
    )
    code, err = run_cli_here(
        "-m", *big, "data.batch_size=2,60000", out, cwd=tmp_path, monkeypatch=monkeypatch, capfd=capfd
    )
    assert code == 2 and len(err.splitlines()) == 1
    assert err.endswith(f"(in job {' '.join(big)} data.batch_size=60000 {out})\n")
    assert not (tmp_path / "out").exists()


def test_bad_value_in_single_run_stops_before_any_work(tmp_path):
    r = run_cli("resnet_exp.run", "data.batch_size=0", f"output_dir={tmp_path}/out", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: data.batch_size=0 must be a whole number of at least 1"
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def broken_data(tmp_path_factory, data_dir):
    """Data folders that are wrong in one way each: empty, a truncated file, a wrong magic number."""
    import shutil

    root = tmp_path_factory.mktemp("broken")
    (root / "empty").mkdir()
    for name in ("truncated", "magic"):
        shutil.copytree(data_dir, root / name)
    victim = root / "truncated" / "t10k-images-idx3-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:100_000])
    import gzip

    labels = gzip.decompress((root / "magic" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (root / "magic" / "t10k-labels-idx1-ubyte.gz").unlink()
    (root / "magic" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03" + labels[4:])
    (root / "file").write_text("not a directory")
    return root


# Each case runs the command's entry point in the test's process (run_cli_here: a new interpreter
# for each would be most of the suite's time spent importing torch); those marked FRESH, one for each
# stage that refuses input (Hydra's composition, the data check, torch, Lightning, the output
# directory), run it as a user does, in a new process: its one line is all it prints there too.
FRESH = pytest.mark.fresh_process


@pytest.mark.parametrize(
    "args,message",
    [
        pytest.param(
            ["data.bogus=1"],
            "Could not override 'data.bogus': there is no such config group or key; the keys of data are: "
            "data.name, data.root, data.cache_dir, data.download, data.resize, data.batch_size, data.num_workers, "
            "data.pipeline, data.val_size, data.normalize, data.augment (python -m resnet_exp.run --help)",
            marks=FRESH,
        ),
        # a mistyped group or key: the nearest real one, with the value, as the line to type instead
        (
            ["optimizer=adamw"],
            "Could not override 'optimizer': there is no such config group or key; did you mean optim=adamw?",
        ),
        (
            ["-m", "blocks.order=post,pre"],
            "Could not override 'blocks.order': there is no such config group or key; did you mean block.order=post,pre?",
        ),
        (  # a launcher's key: the launcher the command line chose has it, or has none
            ["-m", "hydra/launcher=slurm", "hydra.launcher.partion=gpu"],
            "Could not override 'hydra.launcher.partion': there is no such config group or key; "
            "did you mean hydra.launcher.partition=gpu?",
        ),
        (
            ["-m", "hydra/launcher=slurm", "hydra.launcher.additional_parameters.hold=true"],
            "Could not override 'hydra.launcher.additional_parameters.hold': hydra.launcher.additional_parameters is "
            "a mapping; a key of its own is added with +: +hydra.launcher.additional_parameters.hold=true",
        ),
        (
            ["-m", "hydra.launcher.partition=gpu"],
            "Could not override 'hydra.launcher.partition': there is no such config group or key; the keys of "
            "hydra/launcher=basic: there are none (python -m resnet_exp.run --help)",
        ),
        (
            ["experimnt=identity_mappings"],
            "Could not override 'experimnt': there is no such config group or key; "
            "did you mean experiment=identity_mappings?",
        ),
        (
            ["data.batch_size=abc"],
            "Error merging override data.batch_size=abc; Value 'abc' of type 'str' could not be converted to Integer",
        ),
        (
            ["model=resnet99"],
            "In 'config': Could not find 'model/resnet99'; Available options in 'model': cifar_resnet110, cifar_resnet164, cifar_resnet20, cifar_resnet56, cifar_resnet998, resnet18, resnet34, seed",
        ),
        (["optim.momentum=abc"], "optim.momentum=abc must be a number (torch.optim.SGD's momentum)"),
        (["optim.nesterov=abc"], "optim.nesterov=abc must be true or false (torch.optim.SGD's nesterov)"),
        (
            ["scheduler=step", "scheduler.step_size=abc"],
            "scheduler.step_size=abc must be a whole number (torch.optim.lr_scheduler.StepLR's step_size)",
        ),
        # a group's choice is a name, never a path that would load a file from elsewhere
        pytest.param(
            ["experiment=../../../../tmp/x"],
            "experiment=../../../../tmp/x is a path, not a choice of experiment; choose one of: degradation, depth, "
            "depth_he_schedule, identity_mappings, quick, tuned_orderings (a preset of your own: --config-dir DIR, "
            "with DIR/experiment/NAME.yaml, then experiment=NAME)",
            marks=FRESH,
        ),
        (
            ["-m", "model=seed,/tmp/model"],
            "model=/tmp/model is a path, not a choice of model; choose one of: cifar_resnet110, cifar_resnet164, "
            "cifar_resnet20, cifar_resnet56, cifar_resnet998, resnet18, resnet34, seed (a preset of your own: "
            "--config-dir DIR, with DIR/model/NAME.yaml, then model=NAME)",
        ),
        (
            ["hydra/launcher=../../slurm"],
            "hydra/launcher=../../slurm is a path, not a choice of hydra/launcher; choose one of: basic, joblib, "
            "parallel, slurm, submitit_local, submitit_slurm (a preset of your own: --config-dir DIR, with "
            "DIR/hydra/launcher/NAME.yaml, then hydra/launcher=NAME)",
        ),
        (
            ["-m", "block.order=post,pre", "trainer.max_epocs=3"],
            "Could not override 'trainer.max_epocs': there is no such config group or key; "
            "did you mean trainer.max_epochs=3?",
        ),
        (
            ["data.root={broken}/missing"],
            "data.root={broken}/missing is not a directory; point data.root at the folder of the four IDX files",
        ),
        (
            ["data.root={broken}/empty"],
            "data.root={broken}/empty lacks train-images-idx3-ubyte, "
            "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
            "(plain or .gz)",
        ),
        pytest.param(
            ["-m", "seed=1,2", "data.root={broken}/truncated"],
            "{broken}/truncated/t10k-images-idx3-ubyte.gz: cannot be read (Compressed file ended before the "
            "end-of-stream marker was reached); the file is truncated or corrupt "
            "(in job seed=1 data.root={broken}/truncated output_dir={out})",
            marks=FRESH,
        ),
        (
            ["data.root={broken}/magic"],
            "{broken}/magic/t10k-labels-idx1-ubyte: magic number 2051, expected 2049 (an IDX label file)",
        ),
        # what only the libraries can judge, asked of them before any job starts
        (
            ["optim.momentum=-1"],
            "torch.optim.SGD refuses optim: ValueError: Invalid momentum value: -1 "
            "(given: optim.lr=0.1 optim.momentum=-1 optim.weight_decay=0.0 optim.nesterov=False)",
        ),
        pytest.param(
            ["-m", "optim.nesterov=true", "seed=1,2"],
            "torch.optim.SGD refuses optim: ValueError: Nesterov momentum requires a momentum and zero dampening "
            "(given: optim.lr=0.1 optim.momentum=0.0 optim.weight_decay=0.0 optim.nesterov=True) "
            "(in job optim.nesterov=True seed=1 output_dir={out})",
            marks=FRESH,
        ),
        (
            ["+optim.bogus=1"],
            "torch.optim.SGD refuses optim: TypeError: SGD.__init__() got an unexpected keyword argument 'bogus' "
            "(given: optim.lr=0.1 optim.momentum=0.0 optim.weight_decay=0.0 optim.nesterov=False optim.bogus=1)",
        ),
        (
            ["scheduler=step", "scheduler.step_size=0"],
            "torch.optim.lr_scheduler.StepLR refuses scheduler: ZeroDivisionError: integer modulo by zero "
            "(given: scheduler.step_size=0 scheduler.gamma=0.1)",
        ),
        pytest.param(
            ["trainer.num_nodes=0"],
            "pytorch_lightning.Trainer refuses trainer: ValueError: `num_nodes` must be a positive integer, but got 0. "
            "(given: trainer.devices=1 trainer.num_nodes=0 trainer.precision=32-true trainer.max_epochs=10 "
            "trainer.num_sanity_val_steps=0 trainer.log_every_n_steps=50)",
            marks=FRESH,
        ),
        (
            ["trainer=ddp", "trainer.devices=2"],
            "trainer.sync_batchnorm=true needs CUDA GPUs (SyncBatchNorm), and this run trains on the CPU; "
            "set trainer.sync_batchnorm=false",
        ),
        pytest.param(
            ["trainer.accelerator=gpu"],
            "trainer.accelerator=gpu trainer.devices=1: no CUDA GPU is available here; use trainer.accelerator=auto "
            "(the CPU here) or cpu",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="asks for a GPU where there is none"),
        ),
        (
            ["trainer.strategy=bogus"],
            "pytorch_lightning.Trainer refuses trainer: ValueError: You selected an invalid strategy name: "
            "`strategy='bogus'`.",
        ),
        (
            ["model.in_channels=3"],
            "model.in_channels=3 does not match Fashion-MNIST's 1-channel (grey) images; use 1 (the default takes the data set's)",
        ),
        (["data.name=mnist"], "data.name=mnist is not a data set; choose one of: cifar10, fashion_mnist"),
        (
            ["trainer.limit_train_batches=0"],
            "trainer.limit_train_batches=0 trains nothing; give a number of batches (e.g. 20) or a fraction of the "
            "epoch (e.g. 0.1)",
        ),
        pytest.param(["output_dir={broken}/file/out"], None, marks=FRESH),
        (
            ["-m", "block.order=post,pre", "--cfg", "job"],
            "--multirun and --cfg cannot be used together: choose one (--cfg job shows one run's config, without -m)",
        ),
        (
            ["-m", "seed=1,2", "hydra.sweep.subdir=../elsewhere/${{hydra.job.num}}"],
            "hydra.sweep.subdir=../elsewhere/${{hydra.job.num}} is not supported: a sweep's jobs are its numbered "
            "folders (hydra.sweep.subdir=${{hydra.job.num}}), where it resumes, checks and sums them up; name the "
            "sweep with hydra.sweep.dir=DIR instead",
        ),
    ],
)
def test_bad_input_is_one_line_before_any_work(tmp_path, broken_data, args, message, request, monkeypatch, capfd):
    args = [a.format(broken=broken_data) for a in args]
    out = [] if any(a.startswith("output_dir=") for a in args) else [f"output_dir={tmp_path}/out"]
    if request.node.get_closest_marker("fresh_process"):
        r = run_cli("resnet_exp.run", *args, *out, cwd=tmp_path)
        code, stderr = r.returncode, r.stderr
    else:
        code, stderr = run_cli_here(*args, *out, cwd=tmp_path, monkeypatch=monkeypatch, capfd=capfd)
    assert code == 2, stderr[-3000:]
    (line,) = stderr.strip().splitlines()  # one line, no traceback
    if message is None:  # the run directory's name holds the start time
        assert line.startswith(f"error: output directory {broken_data}/file/out/runs/")
        assert line.endswith(
            f"cannot be used ({broken_data}/file is not a directory); "
            "choose another with output_dir=DIR or hydra.sweep.dir=DIR"
        )
    elif message.endswith("."):  # the library's message goes on with its own advice
        assert line.startswith("error: " + message)
    else:
        assert line == "error: " + message.format(broken=broken_data, out=f"{tmp_path}/out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("multirun", [False, True])
def test_an_output_directory_too_long_for_the_file_system_is_one_line_before_any_work(tmp_path, multirun):
    """A name longer than the file system allows, or a path that the job's files beneath it would
    take past the longest path allowed, is refused as the directory is named, not as a traceback
    from the first file written."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    head = ["-m", "seed=1,2"] if multirun else []
    name = "n" * 300
    r = run_cli("resnet_exp.run", *head, f"{key}={tmp_path}/{name}/out", cwd=tmp_path)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: output directory ") and line.endswith(
        f"cannot be used: its part {'n' * 40}...{'n' * 20} is 300 characters, more than the 255 a name may have "
        "here; choose a shorter one with output_dir=DIR or hydra.sweep.dir=DIR"
    )
    deep = Path(tmp_path, *["d" * 200] * 20)  # 4,000 characters and more
    r = run_cli("resnet_exp.run", *head, f"{key}={deep}", cwd=tmp_path)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert f"cannot be used: its path is {len(str(deep))} characters, and with the job's files beneath it" in line
    assert line.endswith(
        "longer than the 4096 a path may have here; choose a shorter one with output_dir=DIR or hydra.sweep.dir=DIR"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_two_runs_started_in_the_same_second_get_different_directories(tmp_path):
    """The run and sweep directories are named by start time plus a random suffix."""
    import subprocess
    import sys

    code = (
        "from resnet_exp.config import compose_config; print(compose_config(return_hydra_config=True).hydra.sweep.dir)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    dirs = [p.communicate()[0].strip() for p in procs]
    assert all(d.startswith("outputs/sweeps/") for d in dirs)
    assert dirs[0] != dirs[1]


def test_fp32_is_the_default_and_auto_picks_bf16_where_the_hardware_has_it():
    """The default precision is the seed's fp32 (bf16 moved final test accuracy by more than 0.5 point,
    experiments/bf16_vs_fp32_full_step). precision=auto: bf16-mixed on a CPU whose flags (read from /proc/cpuinfo
    here, independently of torch) include avx512_bf16 or amx_bf16, fp32 on other CPUs; an explicit
    precision is kept. data.pipeline=auto: the device pipeline, on the CPU too."""
    from resnet_exp.data.pipelines import resolve_pipeline
    from resnet_exp.training.build import trainer_args
    from resnet_exp.training.hardware import cpu_has_native_bf16

    cfg = compose_config([])
    assert (cfg.trainer.precision, cfg.data.pipeline, cfg.compile) == ("32-true", "auto", None)
    assert trainer_args(cfg.trainer)["precision"] == "32-true"
    flags = set(Path("/proc/cpuinfo").read_text().split())
    native = bool(flags & {"avx512_bf16", "amx_bf16"})
    assert cpu_has_native_bf16() == native
    expected = "bf16-mixed" if native else "32-true"
    auto = compose_config(["trainer.accelerator=cpu", "trainer.precision=auto"])
    assert trainer_args(auto.trainer)["precision"] == expected
    assert trainer_args(compose_config(["trainer.precision=16-mixed"]).trainer)["precision"] == "16-mixed"
    assert trainer_args(compose_config(["trainer.precision=32-true"]).trainer)["precision"] == "32-true"
    assert resolve_pipeline("auto", "cpu") == resolve_pipeline("auto", "cuda") == "device"
    assert resolve_pipeline("torchvision", "cpu") == "torchvision"


@pytest.mark.parametrize(
    ("capabilities", "native"),
    [
        ({"avx512_bf16": True, "amx_bf16": False}, True),  # e.g. AMD Zen 4, Intel Cooper Lake
        ({"avx512_bf16": False, "amx_bf16": True}, True),  # Intel Sapphire Rapids and later
        ({"avx512_bf16": False, "amx_bf16": False, "avx512": True}, False),  # AVX-512 without bf16
        ({"avx2": True}, False),  # no AVX-512 at all, e.g. AMD Zen 3
    ],
)
def test_precision_auto_on_each_kind_of_cpu(monkeypatch, capabilities, native):
    """Each branch of precision=auto on the CPU, forced through what torch reports of the CPU, so the
    suite checks all of them on whatever machine runs it."""
    import torch

    from resnet_exp.training.build import trainer_args
    from resnet_exp.training.hardware import cpu_has_native_bf16

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert cpu_has_native_bf16() is native
    auto = compose_config(["trainer.accelerator=cpu", "trainer.precision=auto"])
    assert trainer_args(auto.trainer)["precision"] == ("bf16-mixed" if native else "32-true")
    assert trainer_args(compose_config([]).trainer)["precision"] == "32-true"  # the default, on every CPU


def test_compile_compiles_the_network_in_place(tmp_path, monkeypatch):
    """compile=MODE compiles the network itself (nn.Module.compile): checkpoint keys do not change,
    so compiled and eager runs resume from each other's checkpoints; compiled code is cached under
    output_dir, where the other jobs of a sweep find it."""
    import os

    import torch

    from resnet_exp.training.build import build
    from resnet_exp.training.fit import use_compile_cache

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    eager = build(compose_config([]))[1]
    compiled = build(compose_config(["compile=reduce-overhead", f"output_dir={tmp_path}"]))[1]
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ  # building changes no environment
    use_compile_cache(tmp_path / ".cache" / "torchinductor")  # what a run of it does before building
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / ".cache" / "torchinductor")
    compiled.configure_model()
    assert compiled.net._compiled_call_impl is not None and eager.net._compiled_call_impl is None
    assert list(compiled.state_dict()) == list(eager.state_dict())
    assert isinstance(compiled.net, torch.nn.Module) and compiled.compile_mode == "reduce-overhead"


def test_help_is_the_projects_own(tmp_path):
    r = run_cli("resnet_exp.run", "--help", cwd=tmp_path)
    assert r.returncode == 0
    assert r.stdout.startswith("resnet-exp: how should the layers inside a residual block be ordered?")
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("block: ")]  # the block group: every ordering
    assert set(line.removeprefix("block: ").split(", ")) == {*ORDERINGS, "plain", "default"}
    # every other command: each module of the package that runs as python -m resnet_exp.NAME
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("Other commands ")]
    commands = {p.stem for p in (ROOT / "resnet_exp").glob("*.py") if '__name__ == "__main__"' in p.read_text()}
    assert set(line.split(": ", 1)[1].rstrip(".").split(", ")) == commands - {"run"}
    assert (
        "model: cifar_resnet110, cifar_resnet164, cifar_resnet20, cifar_resnet56, cifar_resnet998, resnet18, resnet34, seed"
        in r.stdout
        and "_target_" not in r.stdout
    )  # no config dump


def test_the_trainer_schema_is_lightnings_trainer():
    """The schema writes the Trainer's arguments out (so that composing needs no Lightning); they
    must be exactly the installed Trainer's, with its defaults."""
    import dataclasses
    import inspect

    import pytorch_lightning as pl

    from resnet_exp.config import MANAGED_TRAINER_ARGS, TrainerConfig

    wanted = {
        name: p.default
        for name, p in inspect.signature(pl.Trainer.__init__).parameters.items()
        if name != "self" and name not in MANAGED_TRAINER_ARGS and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    assert {f.name: f.default for f in dataclasses.fields(TrainerConfig)} == wanted


def test_bad_input_is_refused_before_torch_is_imported(tmp_path):
    """The refusal path loads Hydra, OmegaConf and the project's light modules only: no torch, no
    Lightning, no W&B (what each module imports, as Python reports it)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "resnet_exp.run", "block.order=bogus"],
                       cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "resnet_exp.config" in imported and "hydra" in imported
    assert not imported & {"torch", "pytorch_lightning", "lightning_fabric", "wandb", "torchvision"}
    assert r.stderr.splitlines()[-1].startswith("error: block.order=bogus is not a known ordering")


def test_a_preset_of_ones_own_is_a_choice_by_name_from_a_config_dir(tmp_path):
    """--config-dir adds a folder whose group folders hold presets of one's own: chosen by name."""
    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "short.yaml").write_text("# @package _global_\ntrainer:\n  max_epochs: 3\n")
    r = run_cli(
        "resnet_exp.run", "--config-dir", str(tmp_path / "mine"), "experiment=short", "--cfg", "job", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert OmegaConf.create(r.stdout).trainer.max_epochs == 3
