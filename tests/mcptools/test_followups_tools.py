"""The thread tools as the model sees them: the real MCP server over stdio (official `mcp`
client SDK), run for a sub-agent against a real hive."""

from __future__ import annotations

import json

from hyperhive.client.host import HostClient
from hyperhive.core.hive import Hive
from tests.support.mcp import call, mcp_session


async def test_thread_tools_end_to_end(hive: Hive) -> None:
    await hive.spawn("alice")
    async with mcp_session(hive, "alice") as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {
            "ask_operator",
            "remind",
            "get_open_threads",
            "cancel_thread",
            "set_status",
        } <= names

        err, text = await call(
            s, "ask_operator", question="Ship it?", options=["yes", "no", "later"], multi=True
        )
        assert not err and text.startswith("question #")
        qid = int(text.split("#", 1)[1].split(" ", 1)[0])
        [pending] = await hive.questions.pending()
        assert pending.id == qid and pending.asker == "alice" and pending.multi

        err, text = await call(s, "get_open_threads")
        assert not err and text.startswith(f"q:{qid} ") and "Ship it?" in text

        await HostClient(hive.paths.host_sock).call(
            "answer", id=qid, options=["yes", "later"], text="after lunch"
        )
        err, text = await call(s, "recv", wait_seconds=10)
        assert not err and "[event operator_answered]" in text
        payload = json.loads(text.split("[event operator_answered] ", 1)[1])
        assert payload["answer"] == "yes, later, after lunch" and payload["id"] == qid

        err, text = await call(s, "ask_operator", question="Still?", ttl_seconds=600)
        q2 = int(text.split("#", 1)[1].split(" ", 1)[0])
        assert not err and "expires at" in text
        err, text = await call(s, "cancel_thread", id=f"q:{q2}")
        assert not err and text == f"question #{q2} cancelled"
        err, text = await call(s, "cancel_thread", id=f"q:{q2}")
        assert not err and "already resolved" in text
        err, text = await call(s, "cancel_thread", id="nonsense")
        assert err and "prefix:number" in text
        err, text = await call(s, "get_open_threads")
        assert text == "no open threads"

        err, text = await call(s, "remind", message="x" * 5000, delay_seconds=60)
        assert err and "file under /state" in text and "file_path" in text
        err, text = await call(s, "remind", message="look at CI", delay_seconds=600)
        assert not err and text.startswith("reminder #") and "(in 10 min)" in text
        err, text = await call(s, "remind", message="x", delay_seconds=1, at_unix_timestamp=1.0)
        assert err and "exactly one" in text

        err, text = await call(s, "set_status", text="waiting on the operator")
        assert not err and text == "status set: waiting on the operator"
        rows = (await HostClient(hive.paths.host_sock).call("agent_status"))["agent_statuses"]
        row = next(r for r in rows if r["name"] == "alice")
        assert row["status_text"] == "waiting on the operator"  # the MCP server is connected
        assert row["pending_reminders"] == 1
        err, text = await call(s, "set_status", text="")
        assert not err and text == "status cleared"
