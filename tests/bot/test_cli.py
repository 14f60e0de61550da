"""The operator's command line, run as a city's staff would run it: `python bot.py ...`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import FAQ_MIN, ROOT

if TYPE_CHECKING:
    from bot import Bot
    from channels.base import Receipt
    from channels.memory import MemoryChannel


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


def test_staff_keep_internal_and_public_notes_from_the_command_line(tmp_path: Path) -> None:
    chat = run(tmp_path, "chat", "--as", "alice", stdin="가로등이 고장났어요\n")
    assert chat.returncode == 0, chat.stderr
    internal = run(tmp_path, "tickets", "--staff", "Kim", "note", "2026-000001", "업체", "연락함")
    assert internal.returncode == 0, internal.stderr
    assert internal.stdout.strip() == "Note kept on 2026-000001 (internal; the citizen does not see it)."
    public = run(tmp_path, "tickets", "--staff", "Kim", "note", "2026-000001", "수요일", "보수", "--public")
    assert public.stdout.strip() == "Note kept on 2026-000001 (on its public status page)."
    shown = run(tmp_path, "tickets", "show", "2026-000001").stdout
    assert " note by Kim" in shown and " public_note by Kim" in shown
    back = run(tmp_path, "chat", "--as", "alice", stdin="")
    assert "업체" not in back.stdout and "수요일" not in back.stdout  # notes never reach the citizen
    empty = run(tmp_path, "tickets", "note", "2026-000001", " ", "--public")
    assert empty.returncode == 1 and empty.stderr.strip() == "error: a public note needs some text"


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
    assert lines[0].startswith("language en; answer at 0.")
    assert lines[0].endswith(": answer with bulky-waste")
    score, entry = lines[1].split()[:2]
    assert entry == "bulky-waste" and float(score) > 0.95


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
    measures = {
        "queries": 3,
        "in_scope": 2,
        "auto_answered": 2,
        "auto_correct": 2,
        "precision": 1.0,
        "coverage": 1.0,
        "out_of_scope_answered": 0.0,
        "review": 0,
        "top1": 1.0,
        "top3": 1.0,
    }
    found = json.loads(result.stdout)
    assert found == {
        **measures,
        # The same measures for the texts of each language (as detected) on their own.
        "by_language": {
            "ko": {**measures, "queries": 1, "in_scope": 1, "auto_answered": 1, "auto_correct": 1},
            "en": {**measures, "queries": 2, "in_scope": 1, "auto_answered": 1, "auto_correct": 1},
        },
    }


@pytest.mark.parametrize("bad", ['{"text": "x"}', "not json", '{"text": "x", "expect": "no-such-entry"}'])
def test_faq_eval_names_the_bad_line(tmp_path: Path, bad: str) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"text": "ok", "expect": null}\n' + bad + "\n", encoding="utf-8")
    result = run(tmp_path, "faq", "eval", "--faq", str(FAQ_MIN), "--queries", str(queries))
    assert result.returncode == 1 and f"{queries}:2:" in result.stderr


def test_faq_calibrate_writes_thresholds_that_check_reports_and_eval_uses(tmp_path: Path) -> None:
    faq = tmp_path / "faq"
    shutil.copytree(FAQ_MIN, faq)
    check = run(tmp_path, "faq", "check", str(faq))
    assert "not calibrated: the default confidence model" in check.stdout
    queries = faq / "calibration-queries.jsonl"
    lines = [
        ("소파 버리려면 어떻게 해요", "bulky-waste"),
        ("대형폐기물 신고", "bulky-waste"),
        ("how to get rid of a sofa", "bulky-waste"),
        ("여권 어디서 만들어요", "passport"),
        ("passport application", "passport"),
        ("여권 신청", "passport"),
        ("오늘 날씨 어때요", None),
        ("what a lovely day", None),
        ("도서관 몇 시에 열어요", None),
    ]
    queries.write_text(
        "".join(json.dumps({"text": t, "expect": e}, ensure_ascii=False) + "\n" for t, e in lines * 3),
        encoding="utf-8",
    )
    dry = run(tmp_path, "faq", "calibrate", "--faq", str(faq), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert not (faq / "calibration.json").exists()
    result = run(tmp_path, "faq", "calibrate", "--faq", str(faq), "--out-of-scope-rate", "0.25")
    assert result.returncode == 0, result.stderr
    saved = json.loads((faq / "calibration.json").read_text(encoding="utf-8"))
    assert saved["report"]["queries"] == 27 and saved["report"]["out_of_scope_rate"] == 0.25
    check = run(tmp_path, "faq", "check", str(faq))
    assert check.returncode == 0
    assert "on calibration-queries.jsonl (27 texts, 18 in scope): answer at" in check.stdout
    assert "the FAQ changed since" not in check.stdout
    (faq / "city.yaml").write_text(
        (faq / "city.yaml")
        .read_text(encoding="utf-8")
        .replace('"여권 만들려면"', '"여권 만들려면", "여권 재발급"'),
        encoding="utf-8",
    )
    assert "the FAQ changed since" in run(tmp_path, "faq", "check", str(faq)).stdout
    evaluated = run(tmp_path, "faq", "eval", "--faq", str(faq), "--queries", str(queries))
    assert (
        f"answer at {saved['answer_threshold']:.3f}" in evaluated.stdout
        and "(calibrated)" in evaluated.stdout
    )


def test_faq_calibrate_refuses_a_file_without_in_scope_texts(tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"text": "hello", "expect": null}\n', encoding="utf-8")
    result = run(tmp_path, "faq", "calibrate", "--faq", str(FAQ_MIN), "--queries", str(queries))
    assert result.returncode == 1 and "no in-scope texts" in result.stderr
    bad = run(tmp_path, "faq", "calibrate", "--faq", str(FAQ_MIN), "--target-precision", "1.5")
    assert bad.returncode == 2 and "must be between 0 and 1" in bad.stderr


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


async def _bot_with_a_photo(tmp_path: Path) -> tuple[Bot, MemoryChannel, Receipt]:
    """The shipped config on the command line's database, and a citizen's message with a photo that
    the provider still holds: (bot, memory channel, receipt)."""
    from bot import build
    from channels.base import Attachment
    from channels.memory import MemoryChannel
    from server.config import load_config
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
    return bot, memory, receipt


async def test_staff_see_a_citizens_photo_and_save_it(tmp_path: Path) -> None:
    bot, _, receipt = await _bot_with_a_photo(tmp_path)
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


async def test_db_purge_empties_what_is_past_the_retention_period(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from store import TicketStatus, data

    bot, memory, old = await _bot_with_a_photo(tmp_path)
    recent = await memory.push("가로등이 고장났어요", sender="citizen-2")
    await bot.media.run_once()
    async with bot.db.transaction() as s:  # closed four years ago
        ticket = await data.get_ticket(s, reference=old.reference or "")
        assert ticket is not None
        ticket.status, ticket.closed_at = TicketStatus.CLOSED, datetime(2022, 11, 30, tzinfo=UTC)
    await bot.db.close()

    purged = run(tmp_path, "db", "purge")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.strip() == (
        "purged what is older than 1095 days: tickets 1, messages 2, contacts 1, channel memories 0"
    )
    shown = run(tmp_path, "tickets", "show", old.reference or "").stdout
    assert "from memory:purged:1" in shown and "texts and address purged 20" in shown
    assert "도로에 큰 구멍" not in shown
    assert "가로등이 고장났어요" in run(tmp_path, "tickets", "show", recent.reference or "").stdout
    photo = run(tmp_path, "tickets", "media", "1")
    assert photo.returncode == 1
    assert photo.stderr.strip() == "error: attachment 1 is purged: the retention period has passed"
    assert (
        run(tmp_path, "db", "purge")
        .stdout.strip()
        .endswith("tickets 0, messages 0, contacts 0, channel memories 0")
    )


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


# --- faq import, learn, add-variant and gaps --------------------------------------------------


def city_with_own_faq(tmp_path: Path, *, learning: bool = True) -> tuple[Path, Path]:
    """The shipped config with a copy of the shipped FAQ (commands here write FAQ files); `learning`
    False turns knowledge.learning off."""
    faq = tmp_path / "faq"
    shutil.copytree(ROOT / "knowledge" / "faq", faq)
    # Without the shipped calibration the thresholds of config.yaml decide, and tests may set them.
    (faq / "calibration.json").unlink()
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("path: knowledge/faq", f"path: {faq}")
    text = text.replace("notices: router/notices.yaml", f"notices: {ROOT / 'router' / 'notices.yaml'}")
    if not learning:
        text = text.replace("    enabled: true\n    refit_at:", "    enabled: false\n    refit_at:")
    config = tmp_path / "city.yaml"
    config.write_text(text, encoding="utf-8")
    return config, faq


def changed_lines(before: str, after: str) -> list[str]:
    import difflib

    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_faq_import_turns_a_korean_excel_sheet_into_files_that_faq_check_accepts(tmp_path: Path) -> None:
    sheet = tmp_path / "faq.csv"
    sheet.write_bytes(
        (
            "번호,분류,제목,내용\r\n"
            '12,복지,기초연금 신청 방법,"  주민센터에서     신청합니다.  "\r\n'
            "13,교통,버스 분실물,버스 회사에 문의하세요.\r\n"
            "14,행정,여권 발급,구청 여권과에서 합니다.\r\n"
            "15,행정,여권 발급,시청에서도 됩니다.\r\n"
        ).encode("cp949")
    )
    (tmp_path / "map.yaml").write_text("교통: transport\n", encoding="utf-8")
    out = tmp_path / "imported"
    args = [
        "faq", "import", str(sheet), "--out", str(out), "--encoding", "cp949",
        "--question-column", "제목", "--answer-column", "내용", "--id-column", "번호", "--id-prefix", "city",
        "--category-column", "분류", "--department-map", "복지=welfare", "--department-map-file",
        str(tmp_path / "map.yaml"),
    ]  # fmt: skip
    result = run(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Read 4 rows of {sheet}. Wrote 4 entries in 3 files to {out} (")
    assert lines[1].split() == [
        "city-교통.yaml",
        "1",
        "entries",
        "department",
        "transport",
        "(category",
        "교통)",
    ]
    assert (
        "No department mapping for 행정 (2): their entries go to triage (router.triage_department in the "
        "config). Map a category with --department-map CATEGORY=DEPARTMENT."
    ) in lines
    assert (
        f"  {sheet}:5: entry city-15 has the same question as entry city-14 (line 4): both kept, '여권 발급'"
        in lines
    )
    assert '      ko: "주민센터에서 신청합니다."' in (out / "city-복지.yaml").read_text(encoding="utf-8")

    check = run(tmp_path, "faq", "check", str(out))
    assert check.returncode == 0 and check.stdout.startswith("OK: 4 entries in 3 files"), check.stderr

    before = {file.name: file.read_bytes() for file in out.iterdir()}
    again = run(tmp_path, *args)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"error: {out} already has city-교통.yaml, city-복지.yaml, city-행정.yaml; nothing was written "
        "(--force overwrites them)"
    )
    assert {file.name: file.read_bytes() for file in out.iterdir()} == before
    assert run(tmp_path, *args, "--force").returncode == 0


def test_faq_import_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    sheet = tmp_path / "faq.csv"
    sheet.write_text("question,answer\nfine,yes\n,no question here\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run(tmp_path, "faq", "import", str(sheet), "--out", str(out))
    assert result.returncode == 1 and not out.exists()
    assert result.stderr.splitlines() == [
        f"{sheet}: cannot be imported; nothing was written:",
        f"  {sheet}:3: empty question in column 'question'",
    ]
    sheet.write_text("question,answer\nfine,yes\n", encoding="utf-8")
    wrong = run(tmp_path, "faq", "import", str(sheet), "--out", str(out), "--department", "parks")
    assert wrong.returncode == 1 and "unknown department 'parks' (known: environment, housing" in wrong.stderr
    # The new file's ids clash with an entry already in the folder: the loader says so, nothing is written.
    shutil.copytree(FAQ_MIN, out)
    sheet.write_text("id,question,answer\nbulky-waste,a question,an answer\n", encoding="utf-8")
    clash = run(
        tmp_path, "faq", "import", str(sheet), "--out", str(out), "--id-column", "id", "--id-prefix", ""
    )
    assert clash.returncode == 1 and "duplicate id: already used at city.yaml:" in clash.stderr
    assert sorted(file.name for file in out.iterdir()) == ["city.yaml"]


async def seed_reviews(tmp_path: Path, config_file: Path) -> list[str]:
    """Citizens' questions, every one sent to review (thresholds set so), answered by staff."""
    from bot import build
    from channels.memory import MemoryChannel
    from router import Staff
    from server.config import load_config
    from store import StoreConfig

    config = load_config(config_file)
    knowledge = config.knowledge.model_copy(update={"answer_threshold": 1.0, "suggest_threshold": 0.0})
    config = config.model_copy(
        update={
            "store": StoreConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"),
            "knowledge": knowledge,
        }
    )
    memory = MemoryChannel()
    bot = await build(config, base_dir=tmp_path, channels=[memory], webchat=False, providers=False)
    await memory.start(bot.host)
    lee = Staff(id="cli:lee", name="Lee")
    sent = [
        ("how do i throw out a broken chair", "bulky-waste", None),
        ("폐가구는 어떻게 내다 버려요", "bulky-waste", None),
        ("How do I throw out a broken chair??", "bulky-waste", None),  # the first again
        ("my old desk, how to get rid of it", None, "Call 120 and ask for the bulky waste desk."),
        ("call me on 010-1234-5678 about my sofa", "bulky-waste", None),
    ]
    references = []
    for number, (text, entry, edited) in enumerate(sent):
        receipt = await memory.push(text, sender=f"citizen-{number}")
        assert receipt.reference
        await bot.desk.send_review(receipt.reference, staff=lee, entry_id=entry, text=edited)
        references.append(receipt.reference)
    await bot.db.close()
    return references


async def test_questions_staff_answered_from_the_review_queue_become_variants_of_the_entry(
    tmp_path: Path,
) -> None:
    config, faq = city_with_own_faq(tmp_path, learning=False)  # from the review events, as before
    references = await seed_reviews(tmp_path, config)
    before = (faq / "environment.yaml").read_text(encoding="utf-8")

    dry = run(tmp_path, "--config", str(config), "faq", "learn", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "5 questions answered from the review queue.",
        f'  + bulky-waste [en] "how do i throw out a broken chair" ({references[0]}, {references[2]})',
        f'  + bulky-waste [ko] "폐가구는 어떻게 내다 버려요" ({references[1]})',
        f"  1 not learned, an edited answer (--include-edited learns these too): {references[3]}",
        f"  1 not learned, looks like personal data (a phone number, e-mail or ID number): {references[4]}",
        "Dry run: nothing was written.",
    ]
    assert (faq / "environment.yaml").read_text(encoding="utf-8") == before

    learned = run(tmp_path, "--config", str(config), "faq", "learn", "--staff", "Kim")
    assert learned.returncode == 0, learned.stderr
    assert learned.stdout.splitlines()[-1] == (
        "Added 2 questions to 1 entries in environment.yaml; the running bot reloads the FAQ by itself."
    )
    after = (faq / "environment.yaml").read_text(encoding="utf-8")
    changed = changed_lines(before, after)
    assert len(changed) == 4 and changed[2].endswith('"대형폐기물 배출 신고", "폐가구는 어떻게 내다 버려요"]')
    assert changed[3].endswith(
        '"where do i get a sticker for a mattress", "how do i throw out a broken chair"]'
    )
    from knowledge import load_knowledge
    from store import StoreConfig, data, open_database

    entry = load_knowledge(faq).get("bulky-waste")  # the folder still loads
    assert entry is not None and entry.questions["en"][-1] == "how do i throw out a broken chair"
    db = open_database(StoreConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"))
    async with db.session() as session:
        found = await data.get_ticket(session, reference=references[2])
        assert found is not None
        events = await data.ticket_events(session, ticket_id=found.id or 0)
    await db.close()
    assert (events[-1].kind, events[-1].actor_name, events[-1].detail) == (
        "faq_learned",
        "Kim",
        {
            "entry": "bulky-waste",
            "language": "en",
            "question": "how do i throw out a broken chair",
            "file": "environment.yaml",
        },
    )
    again = run(tmp_path, "--config", str(config), "faq", "learn")
    assert "  3 learned before" in again.stdout and again.stdout.splitlines()[-1] == "Nothing new to add."
    assert (faq / "environment.yaml").read_text(encoding="utf-8") == after


async def test_what_was_learned_from_staff_is_listed_forgotten_and_written_into_the_faq(
    tmp_path: Path,
) -> None:
    config, faq = city_with_own_faq(tmp_path)
    await seed_reviews(tmp_path, config)
    before = (faq / "environment.yaml").read_text(encoding="utf-8")

    listed = run(tmp_path, "--config", str(config), "faq", "learned")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    questions = [line.split('"')[1] for line in lines if " question " in line]
    # Both asks of the chair question are labels, learned before either was merged: `learn` writes one.
    assert questions == [
        "how do i throw out a broken chair",
        "폐가구는 어떻게 내다 버려요",
        "How do I throw out a broken chair??",
    ]
    assert "labels in use: 4 positive, 0 accepted, 0 negative, 1 out_of_scope" in lines
    every = run(tmp_path, "--config", str(config), "faq", "learned", "--all").stdout
    assert "out_of_scope" in every and "positive     bulky-waste" in every  # the phone one: no question

    korean = next(line for line in lines if "폐가구" in line).split()[0]
    forgot = run(tmp_path, "--config", str(config), "faq", "forget", korean)
    assert forgot.returncode == 0 and forgot.stdout.startswith("Forgot 1 label(s)")
    again = run(tmp_path, "--config", str(config), "faq", "forget", korean, "99999")
    assert again.returncode == 1 and f"no label {korean}, 99999 to forget" in again.stderr

    dry = run(tmp_path, "--config", str(config), "faq", "learn", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert [line.split('"')[1] for line in dry.stdout.splitlines() if line.startswith("  + ")] == [
        "how do i throw out a broken chair"
    ]
    assert (faq / "environment.yaml").read_text(encoding="utf-8") == before
    written = run(tmp_path, "--config", str(config), "faq", "learn")
    assert written.returncode == 0, written.stderr
    after = (faq / "environment.yaml").read_text(encoding="utf-8")
    assert changed_lines(before, after)[-1].endswith('"how do i throw out a broken chair"]')
    assert run(tmp_path, "--config", str(config), "faq", "learn").stdout.strip() == "Nothing new to write."
    assert "(nothing learned)" in run(tmp_path, "--config", str(config), "faq", "learned").stdout

    checked = run(tmp_path, "--config", str(config), "faq", "check")
    assert checked.returncode == 0, checked.stderr
    assert "learning from staff: labels 3 positive, 0 accepted, 0 negative, 1 out_of_scope" in checked.stdout
    assert "thresholds not refitted from them yet" in checked.stdout
    refit = run(tmp_path, "--config", str(config), "faq", "calibrate", "--from-store")
    assert refit.returncode == 1 and "too few labels to refit from: 4 (1 not to be answered)" in refit.stderr


def test_faq_add_variant_adds_one_question_where_the_entry_lives(tmp_path: Path) -> None:
    config, faq = city_with_own_faq(tmp_path)
    before = (faq / "environment.yaml").read_text(encoding="utf-8")
    added = run(tmp_path, "--config", str(config), "faq", "add-variant", "bulky-waste", "헌 책상 버리는 방법")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == (
        'Added "헌 책상 버리는 방법" to bulky-waste [ko] in environment.yaml; '
        "the running bot reloads the FAQ by itself."
    )
    assert len(changed_lines(before, (faq / "environment.yaml").read_text(encoding="utf-8"))) == 2
    same = run(
        tmp_path, "--config", str(config), "faq", "add-variant", "bulky-waste", "헌 책상, 버리는 방법!"
    )
    assert (
        same.returncode == 0 and "is already a question of bulky-waste [ko]; nothing to add." in same.stdout
    )
    other = run(tmp_path, "--config", str(config), "faq", "add-variant", "food-waste", "헌 책상 버리는 방법")
    assert other.returncode == 1
    assert other.stderr.strip() == (
        'error: "헌 책상 버리는 방법" is already a question of bulky-waste: a question belongs to one entry'
    )
    unknown = run(tmp_path, "--config", str(config), "faq", "add-variant", "sofa", "text", "--language", "en")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "error: no FAQ entry 'sofa'"


async def test_faq_gaps_groups_what_the_faq_did_not_answer_and_never_shows_sensitive_reports(
    tmp_path: Path,
) -> None:
    from bot import build
    from channels.memory import MemoryChannel
    from server.config import load_config
    from store import StoreConfig

    config_file, _ = city_with_own_faq(tmp_path)
    config = load_config(config_file)
    # Nothing is answered automatically, whatever the matcher makes of these texts.
    knowledge = config.knowledge.model_copy(update={"answer_threshold": 1.0})
    store = StoreConfig(url=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    config = config.model_copy(update={"store": store, "knowledge": knowledge})
    memory = MemoryChannel()
    bot = await build(config, base_dir=tmp_path, channels=[memory], webchat=False, providers=False)
    await memory.start(bot.host)
    texts = [
        "가로등이 고장났어요",
        "공무원이 뇌물을 요구했어요",
        "우리 집 앞 가로등이 고장났어요",
        "음식물 쓰레기 수거를 안 해가요",
        "가로등 고장 신고합니다",
        "뇌물을 요구하는 공무원이 있어요",
        "음식물쓰레기 수거 안 해 가요",
        "공원 벤치가 부서졌어요",
    ]
    references = [(await memory.push(text, sender=f"citizen-{n}")).reference for n, text in enumerate(texts)]
    await bot.db.close()

    result = run(tmp_path, "faq", "gaps", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["questions"] == 6  # the two reports of bribery are never listed
    lights, food = report["groups"]
    assert lights["size"] == 3 and lights["representative"] == "가로등이 고장났어요"
    assert sorted(lights["examples"]) == sorted(["우리 집 앞 가로등이 고장났어요", "가로등 고장 신고합니다"])
    assert lights["departments"] == {"transport": 3} and lights["forwarded"] + lights["review"] == 3
    assert sorted(lights["references"]) == [references[0], references[2], references[4]]
    assert food["size"] == 2 and food["departments"] == {"environment": 2}
    assert "뇌물" not in result.stdout and "벤치" not in result.stdout  # a single question is no group

    text = run(tmp_path, "faq", "gaps", "--min-size", "1", "--limit", "3")
    lines = text.stdout.splitlines()
    assert lines[0].startswith("6 questions since ") and "3 groups at similarity 0.40" in lines[0]
    assert lines[2].startswith(" 1. 3 questions (forwarded ") and " to transport 3; " in lines[2]
    assert lines[3] == '    "가로등이 고장났어요"' and "벤치" in text.stdout and "뇌물" not in text.stdout


def test_routing_import_then_eval_and_ask_the_department_model(tmp_path: Path) -> None:
    import csv

    from tests.routing_examples import examples

    # A city's old spreadsheet: its own department names, some renamed since, one not configured.
    names = {"transport": "교통과", "environment": "환경과", "welfare": "복지과", "housing": "주택과"}
    sheet = tmp_path / "complaints.csv"
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["title", "date", "content", "depart"])
        for n, (text, department) in enumerate(examples(30)):
            writer.writerow([f"민원 {n}", f"2020.{1 + n % 12:02d}.01", text, names[department]])
        for n in range(3):
            writer.writerow([f"공원 {n}", "2020.05.05", "공원 나무가 쓰러졌어요", "공원녹지과"])
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text("주택과: housing\n", encoding="utf-8")
    args = ["--text-column", "content", "--title-column", "title", "--department-column", "depart"]
    maps = ["--department-map", "교통과=transport", "--department-map", "환경과=environment"]
    maps += ["--department-map", "복지과=welfare", "--department-map-file", str(renamed)]

    imported = run(tmp_path, "routing", "import", str(sheet), *args, "--date-column", "date", *maps)
    assert imported.returncode == 0, imported.stderr
    lines = imported.stdout.splitlines()
    assert lines[0] == f"{sheet}: 139 rows with a text; 136 examples added, 0 already there"
    assert "     30  교통과 -> transport" in lines and "     38  주택과 -> housing" in lines
    assert "skipped 3 rows of 1 departments that are not configured" in imported.stdout
    assert "      3  공원녹지과" in lines
    again = run(tmp_path, "routing", "import", str(sheet), *args, *maps)
    assert again.stdout.startswith(f"{sheet}: 139 rows with a text; 0 examples added, 136 already there")

    evaluated = run(tmp_path, "routing", "eval", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    # Judged forward in time: the newer half of the examples, each by a model of older ones.
    assert report["validated_by"] == "forward"
    assert report["examples"] == 68 and report["learned_from"] == 136
    assert report["source"]["store"] == {"import": 136}
    assert sorted(report["departments"]) == ["environment", "housing", "transport", "welfare"]
    assert report["precision"] >= 0.9 and report["coverage"] > 0.5 and report["top3"] > 0.9

    asked = run(tmp_path, "routing", "ask", "택시 운전기사가 불친절해요")
    assert asked.returncode == 0, asked.stderr
    assert "route to transport (" in asked.stdout.splitlines()[0]
    assert asked.stdout.splitlines()[1].endswith("  transport")
    unsure = run(tmp_path, "routing", "ask", "오늘 날씨가 좋네요").stdout
    assert "not sure enough: to triage" in unsure


def test_routing_import_refuses_a_malformed_sheet_naming_the_line(tmp_path: Path) -> None:
    sheet = tmp_path / "bad.csv"
    sheet.write_text(
        'content,depart\n"a complaint\nover two lines",transport\nfine,housing\nbroken, row,welfare\n'
    )
    args = ["--text-column", "content", "--department-column", "depart"]
    result = run(tmp_path, "routing", "import", str(sheet), *args)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {sheet}:5: 3 fields where the header has 2 (a stray comma or quote?)"
    )
    wrong = ["--text-column", "text", "--department-column", "depart"]
    missing = run(tmp_path, "routing", "import", str(sheet), *wrong)
    assert missing.returncode == 1 and f"{sheet}:1: no column 'text'" in missing.stderr
    mapped = run(tmp_path, "routing", "import", str(sheet), *args, "--department-map", "교통=parks")
    assert mapped.returncode == 1 and "'parks' is not a configured department" in mapped.stderr
    assert "examples added" not in result.stdout + missing.stdout + mapped.stdout
