"""The shipped data files, checked against a sha256 manifest.

``assets/MANIFEST.sha256`` lists, in ``sha256sum`` format, every shipped file the model
chapters trust: the default model (``config.json``, ``model.safetensors``, its training
history) and the held-out evaluation text. (The tokenizer rank files carry tiktoken's own
hashes in ``tokenizers.py``.) A flipped bit in the weights otherwise runs without a word
and shows nonsense as if it were the model's answer.

Checking reads each file once (~10 ms for anatomy-mini); the app does it in its
background loading worker, never before the first paint. Every problem is one line that
names the file and the fix::

    python -m llm_anatomy_tui.core.integrity          # check the installed files
    python -m llm_anatomy_tui.core.integrity --write  # after retraining: record new hashes
"""

from __future__ import annotations

import hashlib
import sys
from importlib import resources
from pathlib import Path

MANIFEST_FILE = "MANIFEST.sha256"

REINSTALL = "reinstall llm-anatomy (pip install --force-reinstall llm-anatomy)"
FIX_MODEL = f"{REINSTALL}, or point LLM_ANATOMY_MODEL at a model directory"

SHIPPED = (
    "models/anatomy-mini/config.json",
    "models/anatomy-mini/model.safetensors",
    "models/anatomy-mini/training_history.json",
    "eval/tinystories_valid_first50.txt",
)
"""Files (relative to ``assets/``) the manifest covers."""


def assets_dir() -> Path:
    return Path(str(resources.files("llm_anatomy_tui") / "assets"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(root: Path | None = None) -> dict[str, str]:
    """``{relative path: sha256}`` from the manifest (empty if it is missing)."""
    root = root or assets_dir()
    try:
        text = (root / MANIFEST_FILE).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return {}
    out = {}
    for line in text.splitlines():
        digest, _, name = line.strip().partition("  ")
        if len(digest) == 64 and name:
            out[name] = digest.lower()
    return out


def fix_for(relative: str) -> str:
    return FIX_MODEL if relative.startswith("models/") else REINSTALL


def file_problem(relative: str, root: Path | None = None) -> str | None:
    """One line if the shipped file ``relative`` is missing, unreadable or changed."""
    root = root or assets_dir()
    path = root / relative
    expected = read_manifest(root).get(relative)
    if expected is None:
        return f"{root / MANIFEST_FILE} has no entry for {relative}: {REINSTALL}"
    try:
        digest = sha256_file(path)
    except FileNotFoundError:
        return f"{path} is missing from the installed llm-anatomy: {fix_for(relative)}"
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc}): {fix_for(relative)}"
    if digest != expected:
        return (
            f"{path} is not the file llm-anatomy shipped (sha256 {digest[:12]}…, expected "
            f"{expected[:12]}…): it was changed or damaged; {fix_for(relative)}"
        )
    return None


def problems(prefix: str = "", root: Path | None = None) -> list[str]:
    """One line per shipped file under ``prefix`` that fails its check."""
    found = (file_problem(name, root) for name in SHIPPED if name.startswith(prefix))
    return [p for p in found if p]


def is_shipped_model_dir(path: Path) -> bool:
    """Whether ``path`` is the default model directory inside the installed package."""
    try:
        return path.resolve() == (assets_dir() / "models" / "anatomy-mini").resolve()
    except OSError:
        return False


def write_manifest(root: Path | None = None) -> Path:
    root = root or assets_dir()
    lines = [f"{sha256_file(root / name)}  {name}" for name in SHIPPED]
    out = root / MANIFEST_FILE
    out.write_text("\n".join(lines) + "\n", encoding="ascii")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--write"]:
        print(f"wrote {write_manifest()}")
        return 0
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print(f"{len(SHIPPED)} shipped files match {assets_dir() / MANIFEST_FILE}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
