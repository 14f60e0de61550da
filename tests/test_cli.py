"""The operator's command line, run as a city's staff would run it: `python bot.py ...`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAQ_MIN, ROOT


def run(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    return subprocess.run(
        [sys.executable, str(ROOT / "bot.py"), "--log-level", "WARNING", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )


def test_a_citizen_in_the_terminal_and_staff_on_the_command_line(tmp_path: Path) -> None:
    chat = run(tmp_path, "chat", "--as", "alice", stdin="가로등이 고장났어요\n")
    assert chat.returncode == 0, chat.stderr
    assert "city> 접수번호 2026-000001: 교통도로과에 전달했습니다. 처리 예정:" in chat.stdout

    listing = run(tmp_path, "tickets", "list", "--status", "forwarded")
    assert listing.stdout.splitlines()[1].split()[:3] == ["2026-000001", "forwarded", "transport"]

    reply = run(tmp_path, "tickets", "--staff", "Kim", "reply", "2026-000001", "내일", "수리합니다")
    assert (
        reply.returncode == 0
        and "Reply queued for 2026-000001 (terminal); status in_progress." in reply.stdout
    )

    # The citizen was away; the reply waits in the outbox and shows on their next visit.
    back = run(tmp_path, "chat", "--as", "alice", stdin="")
    assert "city> [2026-000001] 교통도로과: 내일 수리합니다" in back.stdout
    other = run(tmp_path, "chat", "--as", "bob", stdin="")
    assert "2026-000001" not in other.stdout

    resolved = run(tmp_path, "tickets", "--staff", "Kim", "resolve", "2026-000001", "교체", "완료")
    assert resolved.returncode == 0
    shown = run(tmp_path, "tickets", "show", "2026-000001").stdout
    assert "status resolved" in shown and "Kim: [2026-000001] 교통도로과: 내일 수리합니다" in shown
    assert "status in_progress->resolved by Kim" in shown


def test_staff_errors_are_plain_and_exit_1(tmp_path: Path) -> None:
    result = run(tmp_path, "tickets", "reply", "2026-424242", "hello")
    assert result.returncode == 1 and result.stderr.strip() == "error: no ticket 2026-424242"


def test_faq_check_passes_on_the_shipped_knowledge_base(tmp_path: Path) -> None:
    result = run(tmp_path, "faq", "check")
    assert result.returncode == 0
    assert result.stdout.startswith("OK: ") and "entries in 6 files" in result.stdout


def test_faq_check_names_file_line_and_entry_of_a_bad_edit(tmp_path: Path) -> None:
    faq = tmp_path / "faq"
    shutil.copytree(FAQ_MIN, faq)
    text = (faq / "city.yaml").read_text(encoding="utf-8")
    (faq / "city.yaml").write_text(text.replace("department: triage", "department: parks"), encoding="utf-8")
    result = run(tmp_path, "faq", "check", str(faq))
    assert result.returncode == 1
    line = text.splitlines().index("    department: triage") + 1
    assert f"city.yaml:{line}: entry 'passport': unknown department 'parks'" in result.stderr


def test_faq_ask_shows_the_decision_and_the_scores(tmp_path: Path) -> None:
    result = run(tmp_path, "faq", "ask", "How do I throw away a sofa?")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("language en; answer threshold 0.40: answer with bulky-waste")
    assert lines[1].split()[:2] == ["1.000", "bulky-waste"]


def test_faq_eval_prints_the_measures_of_design_md(tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        '{"text": "소파 버리는 방법", "expect": "bulky-waste"}\n'
        '{"text": "Where do I apply for a passport?", "expect": "passport"}\n'
        '{"text": "what a lovely day", "expect": null}\n',
        encoding="utf-8",
    )
    result = run(tmp_path, "faq", "eval", "--faq", str(FAQ_MIN), "--queries", str(queries), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "queries": 3,
        "in_scope": 2,
        "auto_answered": 2,
        "auto_correct": 2,
        "precision": 1.0,
        "coverage": 1.0,
        "out_of_scope_answered": 0.0,
        "review": 0,
    }


@pytest.mark.parametrize("bad", ['{"text": "x"}', "not json", '{"text": "x", "expect": "no-such-entry"}'])
def test_faq_eval_names_the_bad_line(tmp_path: Path, bad: str) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"text": "ok", "expect": null}\n' + bad + "\n", encoding="utf-8")
    result = run(tmp_path, "faq", "eval", "--faq", str(FAQ_MIN), "--queries", str(queries))
    assert result.returncode == 1 and f"{queries}:2:" in result.stderr


def test_a_broken_config_stops_start_up_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("departments: {triage: {name: {en: Desk}}}\nserver: {port: lots}\n", encoding="utf-8")
    result = run(tmp_path, "--config", str(config), "faq", "check")
    assert result.returncode == 2
    assert f"{config}: server.port: Input should be a valid integer" in result.stderr


def test_staff_work_the_review_queue_claim_reassign_and_reopen(tmp_path: Path) -> None:
    run(tmp_path, "chat", "--as", "carol", stdin="how do i throw out a broken chair\n")
    queue = run(tmp_path, "tickets", "review", "list").stdout
    assert queue.startswith("2026-000001  due ") and "how do i throw out a broken chair" in queue
    assert queue.splitlines()[1].strip().startswith("1. bulky-waste (0.")
    sent = run(tmp_path, "tickets", "--staff", "Lee", "review", "send", "2026-000001")
    assert sent.stdout.strip() == "Ticket 2026-000001 answered (bulky-waste); the citizen is told."
    back = run(tmp_path, "chat", "--as", "carol", stdin="").stdout
    assert "city> Register the item on your district office website" in back

    run(tmp_path, "chat", "--as", "dan", stdin="The streetlight on my corner is out\n")
    claimed = run(tmp_path, "tickets", "--staff", "Lee", "claim", "2026-000002")
    assert claimed.stdout.strip() == "Ticket 2026-000002 is yours (Lee); status in_progress."
    moved = run(
        tmp_path, "tickets", "--staff", "Lee", "reassign", "2026-000002", "safety", "exposed", "wires"
    )
    assert moved.stdout.startswith("Ticket 2026-000002 now with safety, due ")
    refused = run(tmp_path, "tickets", "reassign", "2026-000002", "parks", "why")
    assert refused.returncode == 1 and "unknown department 'parks'" in refused.stderr
    run(tmp_path, "tickets", "resolve", "2026-000002", "Done")
    reopened = run(tmp_path, "tickets", "--staff", "Lee", "reopen", "2026-000002", "the", "citizen", "phoned")
    assert reopened.stdout.strip() == "Ticket 2026-000002 reopened with safety; the citizen is told."
    shown = run(tmp_path, "tickets", "show", "2026-000002").stdout
    assert "status in_progress->forwarded by Lee" in shown and "status resolved->reopened by Lee" in shown


async def test_staff_see_a_citizens_photo_and_save_it(tmp_path: Path) -> None:
    from bot import build, load_config
    from channels.base import Attachment
    from channels.memory import MemoryChannel
    from store import StoreConfig

    config = load_config(ROOT / "config.yaml")
    config = config.model_copy(
        update={"store": StoreConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")}
    )
    memory = MemoryChannel()
    memory.files["https://provider.example/p1"] = (b"\xff\xd8 a jpeg", "image/jpeg")
    bot = await build(config, base_dir=ROOT, channels=[memory], webchat=False, providers=False)
    await memory.start(bot.host)
    receipt = await memory.push(
        "도로에 큰 구멍이 있어요", attachments=(Attachment("https://provider.example/p1", "image/jpeg"),)
    )
    await bot.media.run_once()
    await bot.db.close()

    assert receipt.reference
    shown = run(tmp_path, "tickets", "show", receipt.reference).stdout
    assert "attachment: image/jpeg, `tickets media 1` saves it" in shown
    saved = run(tmp_path, "tickets", "media", "1", "--out", str(tmp_path / "photo.jpg"))
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "photo.jpg").read_bytes() == b"\xff\xd8 a jpeg"
    missing = run(tmp_path, "tickets", "media", "7")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no attachment 7"


async def test_a_text_message_to_the_served_bot_and_a_staff_reply_from_the_command_line(
    tmp_path: Path,
) -> None:
    """The whole path as a city runs it: `bot.py serve` with SMS on (Twilio played by a local
    stand-in), a citizen's signed text, then `bot.py tickets reply` in another process."""
    import asyncio
    import socket

    import aiohttp

    from tests.fakes.twilio import FakeTwilio, inbound_params, new_sid

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    public_url = "https://intake.city.example"
    citizen, city_number = "+821055501234", "+15005550006"
    async with FakeTwilio() as twilio:
        env = {
            **os.environ,
            "INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
            "INTAKE_HOST": "127.0.0.1",
            "INTAKE_PORT": str(port),
            "INTAKE_PUBLIC_URL": public_url,
            "TWILIO_ENABLED": "true",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_FROM_NUMBER": city_number,
            "TWILIO_API_BASE_URL": twilio.base_url,
        }
        server = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bot.py"), "--log-level", "WARNING", env=env, cwd=tmp_path
        )
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(200):  # until the server answers
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as health:
                            if (await health.json())["channels"] == ["sms", "webchat"]:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            params = inbound_params(
                twilio.account_sid,
                sid=new_sid("SM"),
                from_=citizen,
                to=city_number,
                body="가로등이 고장났어요",
            )
            status = await twilio.webhook(
                f"{public_url}/webhooks/sms", params, connect_to=f"http://127.0.0.1:{port}"
            )
            assert status == 200
            await twilio.wait_for(lambda fake: len(fake.sent) == 1, timeout=10)
            notice = twilio.sent[0]
            assert notice.to == citizen and notice.body.startswith(
                "접수번호 2026-000001: 교통도로과에 전달했습니다."
            )

            reply = await asyncio.to_thread(
                lambda: subprocess.run(
                    [
                        sys.executable,
                        str(ROOT / "bot.py"),
                        "tickets",
                        "--staff",
                        "Kim",
                        "reply",
                        "2026-000001",
                        "내일 수리합니다",
                    ],
                    env=env,
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
            )
            assert "Reply queued for 2026-000001 (sms)" in reply.stdout, reply.stderr
            # The server's dispatcher finds the queued reply and texts it to the citizen.
            await twilio.wait_for(lambda fake: len(fake.sent) == 2, timeout=10)
            assert (
                twilio.sent[1].to == citizen
                and twilio.sent[1].body == "[2026-000001] 교통도로과: 내일 수리합니다"
            )
            assert twilio.spec_violations == []
        finally:
            server.terminate()
            assert await asyncio.wait_for(server.wait(), 30) == 0
