"""CI smoke run of the bot on one Python: install the lock, check the FAQ, serve, answer one web chat.

    python3 .ci/smoke.py PYTHON [--lock requirements.lock] [--keep]

PYTHON is the interpreter to test (e.g. python3.13). Everything happens in a fresh temp folder: a venv
made by PYTHON with the hash-pinned lock installed (wheels only, but for the one package PyPI has only
as source), `bot.py faq check`, then `bot.py` serving the shipped config.yaml on a free port of
127.0.0.1 with a temp SQLite database (through the config's ${INTAKE_...} variables), `/healthz`, one
web chat question that the shipped FAQ answers, and a clean stop. Exits 1 naming the step that failed.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "여권 발급은 어디서 하나요?"
EXPECT = "여권"  # the answer of the shipped FAQ's passport entry says where to apply for one
# Data packages PyPI has only as an sdist (pure Python, nothing to compile); everything else must come
# as a wheel, so a lock that would compile something on this Python fails here rather than on a desk.
SDIST_ONLY = ("kiwipiepy-model",)
START_SECONDS = 90
REPLY_SECONDS = 60
STOP_SECONDS = 20


class SmokeError(Exception):
    pass


def step(text: str) -> None:
    print(f"smoke: {text}", flush=True)


def run(command: list[str], *, env: dict[str, str] | None = None, what: str) -> str:
    """Run a command to its end; its output is shown, and it must succeed."""
    step("$ " + " ".join(command))
    done = subprocess.run(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        raise SmokeError(f"{what} failed (exit {done.returncode})")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 10) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode())


def install(python: str, folder: Path, lock: Path) -> Path:
    venv = folder / "venv"
    run([python, "-m", "venv", str(venv)], what=f"making a venv with {python}")
    venv_python = venv / "bin" / "python"
    run(
        [str(venv_python), "-c", "import sys; print('venv Python', sys.version)"],
        what="running the venv's Python",
    )
    pip = [str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    wheels = ["--only-binary", ":all:", *[f"--no-binary={name}" for name in SDIST_ONLY]]
    run([*pip, *wheels, "--require-hashes", "-r", str(lock)], what=f"installing {lock.name}")
    return venv_python


def wait_healthy(server: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    problem = "no answer"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SmokeError(f"the server exited (code {server.returncode}) before /healthz answered")
        try:
            health = http("GET", f"{base}/healthz", timeout=5)
        except (OSError, ValueError) as exc:  # URLError and refused connections are OSErrors
            problem = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
            continue
        step(f"/healthz: {json.dumps(health)}")
        if health.get("status") != "ok" or "webchat" not in health.get("channels", []):
            raise SmokeError("/healthz is not ok with the web chat on")
        return
    raise SmokeError(f"/healthz did not answer within {START_SECONDS} s ({problem})")


def ask(base: str) -> str:
    session = http("POST", f"{base}/chat/api/session")["session"]
    message = {"session": session, "id": f"smoke-{secrets.token_hex(8)}", "text": QUESTION}
    accepted = http("POST", f"{base}/chat/api/messages", message)
    if accepted != {"accepted": True}:
        raise SmokeError(f"the web chat did not accept the message: {accepted}")
    step(f"asked {QUESTION!r}; waiting for the answer")
    version = ""
    deadline = time.monotonic() + REPLY_SECONDS
    while time.monotonic() < deadline:
        query = urllib.parse.urlencode({"session": session, "version": version})
        page = http("GET", f"{base}/chat/api/messages?{query}", timeout=REPLY_SECONDS)
        replies = [m["text"] for m in page["messages"] if m.get("from") == "city"]
        if replies:
            return "\n".join(replies)
        version = page["version"]
    raise SmokeError(f"no answer in the web chat within {REPLY_SECONDS} s")


def stop(server: subprocess.Popen[bytes]) -> int:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise SmokeError(f"the server did not stop within {STOP_SECONDS} s of SIGTERM") from None
    return server.returncode


def smoke(python: str, lock: Path, folder: Path) -> None:
    venv_python = install(python, folder, lock)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")},
        "INTAKE_HOST": "127.0.0.1",
        "INTAKE_PORT": str(port),
        "INTAKE_PUBLIC_URL": base,
        "INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'intake.db'}",
    }
    bot = [str(venv_python), str(ROOT / "bot.py"), "--config", str(ROOT / "config.yaml")]
    checked = run([*bot, "faq", "check"], env=env, what="bot.py faq check")
    if not any(line.startswith("OK") for line in checked.splitlines()):
        raise SmokeError("bot.py faq check did not say OK")
    log_path = folder / "server.log"
    step(f"$ {' '.join(bot)}  (port {port}, log {log_path})")
    with log_path.open("wb") as log:
        server = subprocess.Popen(bot, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(server, base)
        answer = ask(base)
        step(f"answer: {answer}")
        if EXPECT not in answer:
            raise SmokeError(f"the answer is not the FAQ's passport entry (no {EXPECT!r} in it)")
        code = stop(server)
        if code != 0:
            raise SmokeError(f"the server exited with {code} on SIGTERM")
        step("server stopped")
    except BaseException:
        if server.poll() is None:
            server.kill()
            server.wait()
        tail = log_path.read_text(errors="replace").splitlines()[-40:]
        print("smoke: the server's log, last lines:", *tail, sep="\n", file=sys.stderr)
        raise


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("python", help="the interpreter to test, e.g. python3.13 or a path")
    parser.add_argument("--lock", default="requirements.lock", help="lock file to install (from the repo)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (it is kept on failure)")
    args = parser.parse_args(argv)
    python = shutil.which(args.python) or args.python
    folder = Path(tempfile.mkdtemp(prefix="intake-smoke-"))
    started = time.monotonic()
    try:
        smoke(python, ROOT / args.lock, folder)
    except (SmokeError, OSError, ValueError, KeyError) as exc:
        print(f"smoke: FAILED with {python}: {exc} (files kept in {folder})", file=sys.stderr)
        return 1
    if args.keep:
        step(f"files kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    step(f"OK with {python} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
