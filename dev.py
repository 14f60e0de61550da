"""Run the bot or the tests from a fresh clone, with nothing installed but Python 3.11.

    python3 dev.py bot [ARGS]     install the runtime dependencies, then `python bot.py ARGS`
    python3 dev.py test [ARGS]    install the dev dependencies, then ruff, mypy and pytest ARGS

Dependencies go into ./.venv from the hash-pinned lock files (requirements.lock for the bot,
requirements-dev.lock for the tests) and are installed again only when a lock file changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure(lock: str) -> None:
    """Make .venv match `lock` (a superset lock already installed counts)."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"dev.py needs Python 3.11 (this is {sys.version.split()[0]}); run it with python3.11")
    if not PYTHON.exists():
        print(f"creating {VENV.name}/ ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
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
