"""Run the bot or the tests from a fresh clone, with nothing installed but Python 3.11, 3.12 or 3.13.

    python3 dev.py bot [ARGS]     install the runtime dependencies, then `python bot.py ARGS`
    python3 dev.py test [ARGS]    install the dev dependencies, then ruff, mypy and pytest ARGS

Dependencies go into a virtual environment of the Python running dev.py: ./.venv for 3.11,
./.venv-3.12 and ./.venv-3.13 for the others. They come from the hash-pinned lock files
(requirements.lock for the bot, requirements-dev.lock for the tests; both hold every supported
Python) and are installed again only when a lock file changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

SUPPORTED = ((3, 11), (3, 12), (3, 13))
MINOR = sys.version_info[:2]
ROOT = Path(__file__).resolve().parent
# 3.11 keeps the plain name existing tooling knows; each other Python gets its own folder.
VENV = ROOT / (".venv" if MINOR == (3, 11) else f".venv-{MINOR[0]}.{MINOR[1]}")
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure(lock: str) -> None:
    """Make the venv match `lock` (a superset lock already installed counts)."""
    if MINOR not in SUPPORTED:
        sys.exit(
            f"dev.py needs Python 3.11, 3.12 or 3.13 (this is {sys.version.split()[0]}); "
            "run it with python3.11, python3.12 or python3.13"
        )
    made_by = _venv_python_version()
    ours = f"{MINOR[0]}.{MINOR[1]}"
    if made_by is not None and made_by != ours:
        print(f"{VENV.name}/ was made by Python {made_by}, this is Python {ours}: rebuilding it", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    elif not PYTHON.exists():
        print(f"creating {VENV.name}/ ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    wanted = {lock, "requirements-dev.lock"}
    for name in wanted:
        if _marker(name).exists() and _marker(name).read_text() == _digest(name):
            return
    print(f"installing {lock} into {VENV.name}/ ...", flush=True)
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "-r",
            str(ROOT / lock),
        ],
        check=True,
    )
    _marker(lock).write_text(_digest(lock))


def _venv_python_version() -> str | None:
    """The MAJOR.MINOR of the Python that made the venv, from its pyvenv.cfg (None: no venv there)."""
    try:
        lines = (VENV / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() in {"version", "version_info"}:
            return ".".join(value.strip().split(".")[:2])
    return "an unknown version"


def _marker(lock: str) -> Path:
    return VENV / f".installed-{lock}"


def _digest(lock: str) -> str:
    return hashlib.sha256((ROOT / lock).read_bytes()).hexdigest()


def run(*command: str) -> int:
    return subprocess.run(command, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"bot", "test"}:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    task, rest = argv[0], argv[1:]
    if task == "bot":
        ensure("requirements.lock")
        os.chdir(ROOT)
        return run(str(PYTHON), "bot.py", *rest)
    ensure("requirements-dev.lock")
    checks = [
        (str(PYTHON), "-m", "ruff", "check", "."),
        (str(PYTHON), "-m", "ruff", "format", "--check", "."),
        (str(PYTHON), "-m", "mypy"),
    ]
    for check in checks:
        print("$ " + " ".join(Path(c).name if i == 0 else c for i, c in enumerate(check)), flush=True)
        if code := run(*check):
            return code
    return run(str(PYTHON), "-m", "pytest", *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
