"""The architecture page's claims about imports: the package is in wings that import one way, its
modules import one another without a cycle (counting the imports made inside functions too), and
the page names every module."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT


def imports() -> dict[str, set[str]]:
    """Each module of the package (``resnet_exp.sweeps.checks``) and the package modules it imports,
    anywhere in its text."""
    package = ROOT / "resnet_exp"
    modules = {}
    for path in package.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("resnet_exp"):
                for alias in node.names:  # from resnet_exp import data: the module data
                    target = f"{node.module}.{alias.name}"
                    found.add(target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("resnet_exp")}
        graph[name] = {t for t in found if t in modules and t != name and t != "resnet_exp"}
    return graph


# The wings of the package, lowest first (docs/architecture.md draws them): a module imports from its
# own wing or from a wing below it, never from one beside it or above it. Each top-level module is a
# wing of its own; every module of the package must be in one (a new one is placed here and in the
# architecture page).
WINGS = (
    ("data", "library_internals"),  # the data sets (the face: their specs, torch-free); the private touches
    ("config",),  # the choices, the schema, its checks and resolvers, composing outside a run
    ("command_line",),  # an override's key, composition errors as one line, "did you mean", load_config
    ("models", "runs"),  # the network; a job's files and life
    ("tracking",),  # W&B
    ("training", "analysis"),  # one job trained; finished sweeps read and judged
    ("sweeps",),  # a sweep's checks, the Hydra callback that runs them, the sequential sweeper's rounds
    ("run", "report", "plan", "tune", "bench", "summary", "dashboard", "gpu_check"),  # the commands
)


def wing(module: str) -> str:
    """``resnet_exp.training.fit`` -> ``training``."""
    return module.removeprefix("resnet_exp.").split(".")[0]


def test_the_wings_import_one_way_and_without_a_cycle_even_inside_functions():
    graph = imports()
    rank = {name: i for i, names in enumerate(WINGS) for name in names}
    assert {wing(m) for m in graph if m != "resnet_exp"} == set(rank), "a module in no wing, or a wing with none"
    against = [
        f"{m} -> {t}"
        for m, targets in graph.items()
        for t in targets
        if wing(m) != wing(t) and rank[wing(t)] >= rank[wing(m)]
    ]
    assert not against, "imports beside or up the wings: " + "; ".join(sorted(against))
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            assert state.get(target) != "open", "import cycle: " + " -> ".join([*path, target])
            if target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # the light modules stay light: the config imports nothing of the package but the data face (the
    # data sets' specs); the command line nothing but the config; the records nothing but those
    config = {m for m in graph if wing(m) == "config"}
    assert set().union(*(graph[m] for m in config)) - config == {"resnet_exp.data"}
    assert graph["resnet_exp.command_line"] == {"resnet_exp.config"}
    assert graph["resnet_exp.runs.records"] <= {"resnet_exp.config", "resnet_exp.command_line"}
    # the data wing's face (the specs, the error) imports nothing; each data set's files import the
    # face alone; the one data module reaches a data set through the face, never by name
    assert graph["resnet_exp.data"] == set()
    assert graph["resnet_exp.data.fashion_mnist"] == graph["resnet_exp.data.cifar10"] == {"resnet_exp.data"}
    assert graph["resnet_exp.data.module"] >= {
        "resnet_exp.data",
        "resnet_exp.data.pipelines",
        "resnet_exp.data.sampling",
    }
    assert not graph["resnet_exp.data.module"] & {"resnet_exp.data.fashion_mnist", "resnet_exp.data.cifar10"}


def mapped_modules() -> set[str]:
    """The modules docs/architecture.md's map draws: under ``resnet_exp/``, a top-level entry two
    spaces in, a wing's file four spaces in, beneath its folder (``training/fit.py``)."""
    lines = (ROOT / "docs" / "architecture.md").read_text().splitlines()
    start = lines.index("    resnet_exp/")
    shown, folder = set(), ""
    for line in lines[start + 1 :]:
        indent, word = len(line) - len(line.lstrip()), (line.split() or [""])[0]
        if indent <= 4 and line.strip():
            break  # the map's next top entry (conf/): resnet_exp/ ends
        if indent == 6 and word.endswith("/"):
            folder = word
            shown.add(f"{folder}__init__.py")
        elif indent == 6 and word.endswith(".py"):
            shown.add(word)
        elif indent == 8 and word.endswith(".py"):
            shown.add(folder + word)
    return shown


def test_the_architecture_page_draws_every_module_in_its_wing():
    """The map cannot fall behind a module that is added or moved: it draws exactly the package's
    modules, each under its wing's folder."""
    package = ROOT / "resnet_exp"
    modules = {str(p.relative_to(package)) for p in package.rglob("*.py")} - {"__init__.py"}
    assert mapped_modules() == modules


def test_nothing_outside_the_data_wing_names_a_data_set():
    """A data set is a seam: outside ``data/``, no module imports one data set's files or names it,
    but the schema's default (``data.name``)."""
    graph = imports()
    for module, targets in graph.items():
        if not module.startswith("resnet_exp.data"):
            assert not targets & {"resnet_exp.data.fashion_mnist", "resnet_exp.data.cifar10"}, module
    names = ("fashion", "FashionMNIST", "CIFAR", "cifar")
    for path in (ROOT / "resnet_exp").rglob("*.py"):
        if path.parent.name == "data":
            continue
        # the model presets of He et al.'s network for small images (model=cifar_resnet20) name a
        # network, not a data set: what they train on is data.name's
        text = path.read_text().replace("cifar_resnet", "")
        lines = [line for line in text.splitlines() if any(n.lower() in line.lower() for n in names)]
        expected = [
            '    name: str = "fashion_mnist"  # a data set of resnet_exp.data.DATA_SETS (config group data=NAME)'
        ]
        assert lines == (expected if path.name == "schema.py" else []), path


def test_the_front_door_loads_no_torch():
    """What the CLI checks before any work (the config schema, the records, the data error) loads
    without torch or Lightning, so that bad input the config alone shows is refused in a second."""
    code = "import sys, resnet_exp.config, resnet_exp.command_line, resnet_exp.runs.records, resnet_exp.data; print(sorted({'torch', 'pytorch_lightning'} & set(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert (r.returncode, r.stdout.strip()) == (0, "[]"), r.stderr


# The libraries whose private names (``_x``, not ``__x__``) only library_internals.py may reach.
LIBRARIES = ("torch", "torchvision", "torchmetrics", "pytorch_lightning", "lightning", "lightning_fabric", "hydra",
             "hydra_plugins", "omegaconf", "wandb", "wandb_workspaces", "submitit")  # fmt: skip


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def own_names(sources: list[str]) -> set[str]:
    """The names the project itself defines: functions, classes, variables, arguments, and the
    attributes it sets on ``self``/``cls``; an underscore name outside these is a library's."""
    own = set()
    for text in sources:
        for n in ast.walk(ast.parse(text)):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(n.name)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                own.add(n.id)
            elif isinstance(n, ast.arg):
                own.add(n.arg)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
                if isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"):
                    own.add(n.attr)
    return own


def library_touches(text: str, own: set[str]) -> list[str]:
    """Where a module's source reaches into a library: a private module or name imported from one,
    a private attribute the project does not define read or set (also through getattr and friends
    by a literal name), or an attribute of an imported library assigned (a monkey-patch)."""
    found, libraries = [], set()
    tree = ast.parse(text)
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            for a in n.names:
                if a.name.split(".")[0] in LIBRARIES:
                    libraries.add((a.asname or a.name).split(".")[0])
                    if any(map(private, a.name.split("."))):
                        found.append(f"line {n.lineno}: import {a.name}")
        elif isinstance(n, ast.ImportFrom) and n.module and n.module.split(".")[0] in LIBRARIES:
            libraries |= {a.asname or a.name for a in n.names}
            if any(map(private, n.module.split("."))) or any(private(a.name) for a in n.names):
                found.append(f"line {n.lineno}: from {n.module} import {', '.join(a.name for a in n.names)}")
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and private(n.attr) and n.attr not in own:
            found.append(f"line {n.lineno}: {ast.unparse(n)}")
        elif (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id in ("getattr", "setattr", "hasattr", "delattr")
        ):
            name = n.args[1] if len(n.args) > 1 else None
            if (
                isinstance(name, ast.Constant)
                and isinstance(name.value, str)
                and private(name.value)
                and name.value not in own
            ):
                found.append(f"line {n.lineno}: {ast.unparse(n)}")
        elif isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            for target in n.targets if isinstance(n, ast.Assign) else [n.target]:
                root = target
                while isinstance(root, (ast.Attribute, ast.Subscript)):
                    root = root.value
                if target is not root and isinstance(root, ast.Name) and root.id in libraries:
                    found.append(f"line {n.lineno}: {ast.unparse(target)} assigned (a library patched)")
    return found


def test_only_the_library_internals_module_reaches_into_the_libraries():
    """Every private name of torch, Lightning, Hydra, OmegaConf, W&B or submitit that the project
    reaches, and any library attribute it assigns, is in ``library_internals.py``, which says for
    each the version checked and what breaks if it changes. The check is the AST's, not a list of
    strings: shown here to catch each kind of touch in a module of the package."""
    files = [*(ROOT / "resnet_exp").rglob("*.py"), *(ROOT / "hydra_plugins").rglob("*.py")]
    own = own_names([p.read_text() for p in files])
    touches = {
        str(p.relative_to(ROOT)): found
        for p in files
        if p.name != "library_internals.py" and (found := library_touches(p.read_text(), own))
    }
    assert not touches, f"library internals reached outside resnet_exp/library_internals.py: {touches}"
    # it sees what it is for: each kind of touch, planted in a module's text, is found
    planted = {
        "from torch._inductor import config": "from torch._inductor import config",
        "import torch\nx = torch.nn.modules.batchnorm._BatchNorm": "torch.nn.modules.batchnorm._BatchNorm",
        "def f(net):\n    net._compiled_call_impl = None": "net._compiled_call_impl",
        "def f(logger):\n    return getattr(logger, '_wandb_init', None)": "getattr(logger, '_wandb_init', None)",
        "import torch\ntorch.load = print": "torch.load assigned",
        "from omegaconf import OmegaConf\nOmegaConf.register = len": "OmegaConf.register assigned",
    }
    for source, seen in planted.items():
        found = library_touches(source, own - {"_compiled_call_impl", "_wandb_init"})
        assert found and seen in found[0], (source, found)
    # the project's own underscore names are not touches
    mine = "class A:\n    def __init__(self):\n        self._x = 1\n    def f(self):\n        return self._x"
    assert library_touches(mine, own_names([mine])) == []


def test_the_code_passes_its_linter_and_formatter():
    """ruff, as pyproject configures it (pyflakes, pycodestyle, import order; the formatter's
    layout), over everything the project runs: the package, its plugin, the tests, the experiments'
    scripts."""
    paths = ["resnet_exp", "hydra_plugins", "tests", "experiments"]
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", *paths], capture_output=True, text=True, cwd=ROOT)
    assert lint.returncode == 0, lint.stdout[-3000:]
    layout = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *paths], capture_output=True, text=True, cwd=ROOT
    )
    assert layout.returncode == 0, layout.stdout[-3000:]
