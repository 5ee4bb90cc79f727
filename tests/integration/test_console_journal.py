"""The console's journal (/admin/journal, issue #17): the filters of GET /journal with keyset paging, one message in
full, Retry and Discard, and the bulk Retry / Discard of a filter (a dry-run count, then a confirmation) — what the
pages show and what the actions change, against a real PostgreSQL."""

from __future__ import annotations

import html
import json
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.console import READONLY_TOKEN, csrf_of
from tests.support.handlers import TEST_TOPICS
from tests.support.signing import OPERATOR_TOKEN, rpc_body, signed_headers

TOPIC, OTHER = TEST_TOPICS[1], TEST_TOPICS[2]
READONLY = {"operator_readonly_token": READONLY_TOKEN}
_ROW_IDS = re.compile(r'<td class="num"><a href="/admin/journal/(\d+)">')
_OLDER = re.compile(r'href="([^"]+)" rel="next">Older')


async def sign_in(client: httpx.AsyncClient, token: str = OPERATOR_TOKEN) -> str:
    """Sign in and return the session's CSRF token (read from the journal page itself)."""
    answer = await client.post("/admin/login", data={"token": token, "next": "/admin/journal"})
    assert answer.status_code == 303, answer.text
    return csrf_of((await client.get("/admin/journal")).text)


async def stored(
    raw: asyncpg.Connection,
    *,
    status: str = "failed",
    topic: str = TOPIC,
    direction: str = "in",
    refs: list[str] | None = None,
    payload: dict[str, Any] | None = None,
    created: datetime | None = None,
    external_id: str | None = None,
    attempts: int = 1,
) -> int:
    """A message as the bus leaves it (a failed one with its last error)."""
    return await raw.fetchval(
        """
        INSERT INTO message (direction, channel, topic, external_id, lane, payload, refs, status, attempts,
                             last_error, next_attempt_at, created_at, finished_at)
        VALUES ($1::message_direction, 'oms', $2, $3, $2, $4::jsonb, $5, $6::message_status, $7, 'it broke',
                coalesce($8, now()), coalesce($8, now()),
                CASE WHEN $6 IN ('succeeded', 'failed', 'dead', 'discarded', 'rejected') THEN now() END)
        RETURNING id
        """,
        direction, topic, external_id or uuid.uuid4().hex, json.dumps(payload or {}), refs or [], status, attempts,
        created,
    )  # fmt: skip


async def statuses(raw: asyncpg.Connection, *ids: int) -> list[str]:
    rows = await raw.fetch("SELECT id, status::text FROM message WHERE id = ANY($1::bigint[])", list(ids))
    found = {row["id"]: row["status"] for row in rows}
    return [found[message_id] for message_id in ids]


async def listed(client: httpx.AsyncClient, **params: Any) -> list[int]:
    """The ids the journal page lists, top to bottom."""
    page = await client.get("/admin/journal", params=params)
    assert page.status_code == 200, page.text
    return [int(found) for found in _ROW_IDS.findall(page.text)]


def row_of(page: str, message_id: int) -> str:
    """The list's row of a message."""
    return page[page.index(f'href="/admin/journal/{message_id}"') :].split("</tr>")[0]


def notice_of(page: str) -> str:
    found = re.search(r'<p class="notice (\w+)" role="status">([^<]*)</p>', page)
    assert found is not None, "no notice on the page"
    return f"{found.group(1)}: {html.unescape(found.group(2))}"


# --- the list ------------------------------------------------------------------------------------------------


async def test_the_journal_lists_each_message_newest_first_with_its_topic_references_status_and_attempts(client, raw):
    older = await stored(raw, status="dead", refs=["000000042", "MUG-STONE-350"], attempts=7)
    newer = await stored(raw, status="succeeded", topic=OTHER, direction="out")
    await sign_in(client)

    page = await client.get("/admin/journal")

    assert page.status_code == 200
    assert [int(found) for found in _ROW_IDS.findall(page.text)] == [newer, older]
    row = row_of(page.text, older)
    assert TOPIC in row
    assert 'href="/admin/journal?reference=000000042"' in row
    assert "MUG-STONE-350" in row
    assert "☠</span> dead" in row
    assert '<td class="num">7</td>' in row
    assert "→ out" in row_of(page.text, newer)


@pytest.mark.parametrize(
    ("field", "wanted", "value"),
    [
        pytest.param("status", "dead_one", "dead", id="status"),
        pytest.param("topic", "other_topic", OTHER, id="topic"),
        pytest.param("direction", "outbound", "out", id="direction"),
        pytest.param("reference", "with_ref", "000000042", id="reference"),
        pytest.param("external_id", "by_rpc_id", "oms-msg-0001", id="external-id"),
    ],
)
async def test_each_filter_narrows_the_list_and_comes_back_in_the_form(client, raw, field, wanted, value):
    messages = {
        "plain": await stored(raw),
        "dead_one": await stored(raw, status="dead"),
        "other_topic": await stored(raw, topic=OTHER),
        "outbound": await stored(raw, direction="out"),
        "with_ref": await stored(raw, refs=["000000042"]),
        "by_rpc_id": await stored(raw, external_id="oms-msg-0001"),
    }
    await sign_in(client)

    assert await listed(client, **{field: value}) == [messages[wanted]]
    page = (await client.get("/admin/journal", params={field: value})).text
    form = page.split('aria-label="Filters"')[1].split("</form>")[0]
    assert f'value="{value}" selected' in form or f'name="{field}" value="{value}"' in form
    assert f'name="{field}" value="{value}"' in page.split('aria-label="Bulk actions"')[1]  # the bulk forms carry it


async def test_since_is_inclusive_until_exclusive_and_a_time_without_offset_is_utc(client, raw):
    t0 = datetime.fromisoformat("2026-03-01T10:00:00+00:00")
    m0 = await stored(raw, created=t0)
    m1 = await stored(raw, created=t0 + timedelta(minutes=1))
    m2 = await stored(raw, created=t0 + timedelta(minutes=2))
    await sign_in(client)

    assert await listed(client, since="2026-03-01T10:01:00Z") == [m2, m1]
    assert await listed(client, until="2026-03-01T10:02:00") == [m1, m0]
    assert await listed(client, since="2026-03-01T11:01:00+01:00", until="2026-03-01T10:02:00Z") == [m1]
    page = (await client.get("/admin/journal", params={"since": "2026-03-01T10:01"})).text
    assert 'name="since" value="2026-03-01T10:01:00+00:00"' in page


async def test_blank_filter_fields_from_the_form_filter_nothing(client, raw):
    ids = [await stored(raw), await stored(raw, status="dead")]
    await sign_in(client)
    blank = dict.fromkeys(("direction", "topic", "status", "external_id", "reference", "since", "until", "limit"), "")
    assert await listed(client, **blank) == ids[::-1]


async def test_older_pages_follow_the_cursor_without_repeats_and_keep_the_filter(client, raw):
    wanted = []
    for _ in range(7):
        wanted.append(await stored(raw, status="dead"))
        await stored(raw, status="succeeded")
    await sign_in(client)

    seen: list[int] = []
    url: str | None = "/admin/journal?status=dead&limit=3"
    pages = 0
    while url is not None:
        page = await client.get(html.unescape(url))
        assert page.status_code == 200
        seen += [int(found) for found in _ROW_IDS.findall(page.text)]
        older = _OLDER.search(page.text)
        url = older.group(1) if older else None
        if pages:
            assert 'href="/admin/journal?status=dead&amp;limit=3">« Newest' in page.text
        pages += 1
        assert pages < 10

    assert pages == 3
    assert seen == wanted[::-1]  # every dead message once, newest first; none of the others


async def test_the_first_page_has_no_newest_link_and_an_empty_result_says_so(client, raw):
    await stored(raw)
    await sign_in(client)
    page = (await client.get("/admin/journal", params={"topic": "magento.nothing.here"})).text
    assert "No message matches these filters." in page
    assert "Newest" not in page
    assert "Older" not in page


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"status": "sleeping"}, id="unknown-status"),
        pytest.param({"direction": "sideways"}, id="unknown-direction"),
        pytest.param({"since": "yesterday"}, id="bad-since"),
        pytest.param({"until": "9999-12-31T23:59:59-14:00"}, id="until-after-year-9999-in-utc"),
        pytest.param({"cursor": "abc"}, id="cursor-not-a-number"),
        pytest.param({"cursor": "1" * 20}, id="cursor-too-long"),
        pytest.param({"limit": "0"}, id="limit-0"),
        pytest.param({"limit": "501"}, id="limit-too-big"),
        pytest.param({"topic": "t" * 201}, id="topic-too-long"),
        pytest.param({"reference": "r" * 201}, id="reference-too-long"),
    ],
)
async def test_a_bad_query_gets_a_422_html_page_naming_it_not_a_500(client, params):
    await sign_in(client)
    page = await client.get("/admin/journal", params=params)
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert "Invalid input" in page.text
    assert next(iter(params)) in page.text


async def test_a_nul_in_the_query_is_refused_with_a_4xx(client):
    await sign_in(client)
    page = await client.get("/admin/journal?topic=a%00b")
    assert 400 <= page.status_code < 500


async def test_the_journal_asks_for_sign_in_and_keeps_the_filters_in_the_way_back(client):
    page = await client.get("/admin/journal", params={"status": "failed"})
    assert page.status_code == 303
    assert page.headers["location"] == "/admin/login?next=%2Fadmin%2Fjournal%3Fstatus%3Dfailed"


# --- one message ---------------------------------------------------------------------------------------------


async def test_the_detail_shows_payload_last_error_timings_and_headers_without_secrets(client, runtime, raw):
    params = {"order": {"id": "000000042"}, "fail": "permanent"}
    body = rpc_body(method=TOPIC, params=params)
    posted = await client.post(
        "/oms/rpc",
        content=body,
        headers={**signed_headers(body), "Authorization": "Bearer oms-side-token", "X-Request-Source": "oms-test"},
    )
    assert posted.status_code == 200, posted.text
    message_id = await raw.fetchval("SELECT id FROM message WHERE external_id = $1", json.loads(body)["id"])
    assert await runtime.bus.process_next_inbound() is True
    await sign_in(client)

    page = await client.get(f"/admin/journal/{message_id}")

    assert page.status_code == 200
    text = html.unescape(page.text)
    payload = text.split('<pre class="payload" id="payload">')[1].split("</pre>")[0]
    assert json.loads(payload) == params
    assert '"order": {\n    "id": "000000042"' in payload  # pretty-printed
    assert "asked to fail permanently" in text.split('id="last-error">')[1].split("</pre>")[0]
    headers = text.split('<table id="headers">')[1].split("</table>")[0]
    assert "x-request-source" in headers and "oms-test" in headers
    assert "x-signature" in headers
    assert "authorization" not in headers.lower()
    assert "oms-side-token" not in page.text
    assert "✕</span> failed" in text
    assert 'href="/admin/journal?reference=000000042"' in page.text
    for label in ("Attempts", "Next attempt", "Created", "Started", "Finished", "Duration"):
        assert f"<dt>{label}</dt>" in page.text


async def test_an_unknown_message_gets_a_404_html_page(client):
    await sign_in(client)
    for path in ("/admin/journal/987654321", "/admin/journal/99999999999999999999"):
        page = await client.get(path)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")


async def test_a_message_id_that_is_not_a_number_gets_a_422_html_page(client):
    await sign_in(client)
    page = await client.get("/admin/journal/abc")
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")


# --- retry and discard ---------------------------------------------------------------------------------------


async def test_retry_of_a_failed_message_queues_it_and_says_so(client, raw):
    message_id = await stored(raw, status="failed")
    csrf = await sign_in(client)

    answer = await client.post(f"/admin/journal/{message_id}/retry", data={"csrf_token": csrf})

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/journal/{message_id}"
    assert await statuses(raw, message_id) == ["queued"]
    assert notice_of((await client.get(answer.headers["location"])).text) == f"ok: Message {message_id} retried: queued"


async def test_discard_drops_the_message_and_keeps_the_reason(client, raw):
    message_id = await stored(raw, status="dead")
    csrf = await sign_in(client)

    answer = await client.post(
        f"/admin/journal/{message_id}/discard", data={"csrf_token": csrf, "reason": "customer cancelled by phone"}
    )

    assert answer.status_code == 303
    assert await statuses(raw, message_id) == ["discarded"]
    last_error = await raw.fetchval("SELECT last_error FROM message WHERE id = $1", message_id)
    assert last_error == "discarded by an operator: customer cancelled by phone"
    page = (await client.get(answer.headers["location"])).text
    assert notice_of(page).startswith("ok: Message")
    assert "discarded" in notice_of(page)


async def test_a_refused_retry_goes_back_to_the_message_with_a_bad_notice_and_changes_nothing(client, raw):
    message_id = await stored(raw, status="succeeded")
    csrf = await sign_in(client)

    answer = await client.post(f"/admin/journal/{message_id}/retry", data={"csrf_token": csrf})

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/admin/journal/{message_id}"
    assert await statuses(raw, message_id) == ["succeeded"]
    page = await client.get(answer.headers["location"])
    assert page.status_code == 200
    assert notice_of(page.text) == (
        f"bad: Not retried: message {message_id} is succeeded; only failed, dead or retrying messages can be retried"
    )


async def test_a_refused_discard_goes_back_with_a_bad_notice(client, raw):
    message_id = await stored(raw, status="succeeded")
    csrf = await sign_in(client)
    answer = await client.post(f"/admin/journal/{message_id}/discard", data={"csrf_token": csrf})
    assert answer.status_code == 303
    assert await statuses(raw, message_id) == ["succeeded"]
    assert notice_of((await client.get(answer.headers["location"])).text).startswith("bad: Not discarded:")


async def test_the_detail_disables_retry_where_the_service_would_refuse_it(client, raw):
    succeeded = await stored(raw, status="succeeded")
    failed = await stored(raw, status="failed")
    await sign_in(client)
    refused = (await client.get(f"/admin/journal/{succeeded}")).text
    allowed = (await client.get(f"/admin/journal/{failed}")).text
    assert re.search(r'disabled title="succeeded: only failed, dead or retrying messages">Retry now', refused)
    assert re.search(r'<button type="submit" class="button primary">Retry now', allowed)


# --- bulk ----------------------------------------------------------------------------------------------------


async def test_a_bulk_retry_first_shows_the_dry_run_count_and_changes_nothing(client, raw):
    matched = [await stored(raw, status=status) for status in ("failed", "dead", "retrying")]
    other_topic = await stored(raw, topic=OTHER)
    csrf = await sign_in(client)

    page = await client.post("/admin/journal/retry", data={"csrf_token": csrf, "topic": TOPIC})

    assert page.status_code == 200
    assert re.search(r'id="matched">3<', page.text)
    assert "dry run: nothing changed" in page.text
    confirm = page.text.split('aria-label="Confirm"')[1].split("</form>")[0]
    assert f'name="topic" value="{TOPIC}"' in confirm
    assert 'name="dry_run" value="0"' in confirm
    assert await statuses(raw, *matched, other_topic) == ["failed", "dead", "retrying", "failed"]


async def test_confirming_a_bulk_retry_changes_exactly_the_messages_the_filter_matches(client, raw):
    matched = [await stored(raw, status=status, refs=["000000042"]) for status in ("failed", "dead")]
    untouched = [
        await stored(raw, status="failed", refs=["000000043"]),
        await stored(raw, status="succeeded", refs=["000000042"]),
    ]
    csrf = await sign_in(client)
    dry = await client.post("/admin/journal/retry", data={"csrf_token": csrf, "reference": "000000042"})
    assert re.search(r'id="matched">2<', dry.text)

    done = await client.post(
        "/admin/journal/retry", data={"csrf_token": csrf, "reference": "000000042", "dry_run": "0"}
    )

    assert done.status_code == 200
    assert await statuses(raw, *matched) == ["queued", "queued"]
    assert await statuses(raw, *untouched) == ["failed", "succeeded"]
    outcomes = done.text.split('<table id="outcomes">')[1].split("</table>")[0]
    assert "✓</span> queued" in outcomes
    assert f'<a href="/admin/journal/{matched[0]}">{matched[0]}</a>, <a href="/admin/journal/{matched[1]}">' in outcomes
    assert re.search(r'id="changed">2<', done.text)


async def test_confirming_a_bulk_discard_discards_exactly_the_matched_messages_with_the_reason(client, raw):
    t0 = datetime.fromisoformat("2026-03-01T10:00:00+00:00")
    matched = [await stored(raw, status=status, created=t0) for status in ("queued", "failed", "waiting")]
    too_late = await stored(raw, status="failed", created=t0 + timedelta(hours=1))
    succeeded = await stored(raw, status="succeeded", created=t0)
    csrf = await sign_in(client)
    form = {"csrf_token": csrf, "until": "2026-03-01T10:30:00Z"}
    dry = await client.post("/admin/journal/discard", data=form)
    assert re.search(r'id="matched">3<', dry.text)
    assert 'name="until" value="2026-03-01T10:30:00+00:00"' in dry.text

    done = await client.post("/admin/journal/discard", data={**form, "dry_run": "0", "reason": "replayed by hand"})

    assert done.status_code == 200
    assert await statuses(raw, *matched) == ["discarded"] * 3
    assert await statuses(raw, too_late, succeeded) == ["failed", "succeeded"]
    reasons = await raw.fetch("SELECT DISTINCT last_error FROM message WHERE id = ANY($1::bigint[])", matched)
    assert [row["last_error"] for row in reasons] == ["discarded by an operator: replayed by hand"]
    assert re.search(r'id="changed">3<', done.text)


async def test_a_bulk_action_without_a_filter_is_refused_with_the_services_reason_and_changes_nothing(client, raw):
    message_id = await stored(raw, status="failed")
    csrf = await sign_in(client)

    for action in ("retry", "discard"):
        answer = await client.post(f"/admin/journal/{action}", data={"csrf_token": csrf, "dry_run": "0", "topic": " "})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/admin/journal"
        notice = notice_of((await client.get("/admin/journal")).text)
        assert (
            notice == f"bad: Bulk {action} refused: give at least one filter: {action} acts on every message it matches"
        )
    assert await statuses(raw, message_id) == ["failed"]


async def test_a_bulk_retry_of_a_status_it_does_not_apply_to_is_refused_back_on_the_filtered_list(client, raw):
    message_id = await stored(raw, status="succeeded")
    csrf = await sign_in(client)
    answer = await client.post("/admin/journal/retry", data={"csrf_token": csrf, "status": "succeeded"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/journal?status=succeeded"
    assert "status: retry applies to" in notice_of((await client.get(answer.headers["location"])).text)
    assert await statuses(raw, message_id) == ["succeeded"]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"topik": TOPIC}, id="misspelt-filter"),
        pytest.param({"status": "sleeping"}, id="unknown-status"),
        pytest.param({"since": "yesterday"}, id="bad-since"),
        pytest.param({"topic": TOPIC, "reason": "r" * 1001}, id="reason-too-long"),
    ],
)
async def test_a_bad_bulk_form_gets_a_422_html_page_and_changes_nothing(client, raw, fields):
    message_id = await stored(raw, status="failed")
    csrf = await sign_in(client)
    answer = await client.post("/admin/journal/discard", data={"csrf_token": csrf, "dry_run": "0", **fields})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert await statuses(raw, message_id) == ["failed"]


# --- who may change things -----------------------------------------------------------------------------------


async def test_a_post_without_the_csrf_token_gets_403_and_changes_nothing(client, raw):
    message_id = await stored(raw, status="failed")
    csrf = await sign_in(client)
    posts = [
        (f"/admin/journal/{message_id}/retry", {}),
        (f"/admin/journal/{message_id}/discard", {}),
        ("/admin/journal/discard", {"topic": TOPIC, "dry_run": "0"}),
        ("/admin/journal/retry", {"topic": TOPIC, "dry_run": "0", "csrf_token": csrf[:-1]}),
    ]
    for url, data in posts:
        answer = await client.post(url, data=data)
        assert answer.status_code == 403, url
        assert "CSRF" in answer.text
    assert await statuses(raw, message_id) == ["failed"]


@pytest.mark.parametrize("settings_overrides", [READONLY])
async def test_a_read_only_session_sees_the_journal_but_its_posts_get_403_and_change_nothing(
    client, raw, settings_overrides
):
    message_id = await stored(raw, status="failed")
    csrf = await sign_in(client, READONLY_TOKEN)

    assert await listed(client) == [message_id]
    detail = await client.get(f"/admin/journal/{message_id}")
    assert detail.status_code == 200
    assert 'disabled title="read-only sign-in">Retry now' in detail.text
    for url, data in [
        (f"/admin/journal/{message_id}/retry", {}),
        (f"/admin/journal/{message_id}/discard", {}),
        ("/admin/journal/retry", {"topic": TOPIC, "dry_run": "0"}),
        ("/admin/journal/discard", {"topic": TOPIC}),
    ]:
        answer = await client.post(url, data={"csrf_token": csrf, **data})
        assert answer.status_code == 403, url
        assert "Read-only" in answer.text
    assert await statuses(raw, message_id) == ["failed"]
