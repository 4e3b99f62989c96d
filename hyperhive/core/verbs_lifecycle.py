"""Handlers for lifecycle verbs: host v1 start/stop/restart/kill/destroy/rebuild, the
manager's start/restart/kill/update, and host logs/tombstones/purge/shell_argv."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperhive.core.logs import read_logs
from hyperhive.core.rpc import Caller
from hyperhive.core.tombstones import list_tombstones
from hyperhive.errors import NotSupported
from hyperhive.names import validate_name
from hyperhive.wire.base import Ok
from hyperhive.wire.host import Destroy, Kill, Rebuild, Restart, Start, Stop
from hyperhive.wire.lifecycle import (
    Logs,
    LogsOk,
    MgrKill,
    MgrRestart,
    MgrStart,
    MgrUpdate,
    Purge,
    ShellArgv,
    ShellArgvOk,
    Tombstones,
    TombstonesOk,
)

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive
    from hyperhive.core.lifecycle import Lifecycle


def register(hive: Hive, lc: Lifecycle) -> None:
    h = hive.host_rpc
    m = hive.agent_rpc

    @h.handle(Start)
    async def start(caller: Caller, req: Start) -> Ok:
        names = [validate_name(n) for n in req.scope.agent_names]
        for n in names:
            lc.require_managed(n, "start")
        for n in names:
            await lc.start_agent(n)
        return Ok()

    @h.handle(Stop)
    async def stop(caller: Caller, req: Stop) -> Ok:
        names = [validate_name(n) for n in req.scope.agent_names]
        for n in names:
            lc.require_managed(n, "stop")
        for n in names:
            await lc.stop_agent(n, graceful=req.graceful)
        return Ok()

    @h.handle(Restart)
    async def restart(caller: Caller, req: Restart) -> Ok:
        await lc.restart(validate_name(req.name), req.generation)
        return Ok()

    @h.handle(Kill)
    async def kill(caller: Caller, req: Kill) -> Ok:
        await lc.kill_agent(validate_name(req.name), req.generation)
        return Ok()

    @h.handle(Destroy)
    async def destroy(caller: Caller, req: Destroy) -> Ok:
        await lc.destroy(validate_name(req.name), purge=req.purge)
        return Ok()

    @h.handle(Rebuild)
    async def rebuild(caller: Caller, req: Rebuild) -> Ok:
        await lc.rebuild(validate_name(req.name))
        return Ok()

    @h.handle(Logs)
    async def logs(caller: Caller, req: Logs) -> LogsOk:
        name = validate_name(req.name)
        hive.registry.require(name)
        lines = read_logs(hive.paths.logs_dir(name), req.source, req.lines)
        return LogsOk(name=name, source=req.source, lines=lines)

    @h.handle(Tombstones)
    async def tombstones(caller: Caller, req: Tombstones) -> TombstonesOk:
        return TombstonesOk(tombstones=await list_tombstones(hive))

    @h.handle(Purge)
    async def purge(caller: Caller, req: Purge) -> Ok:
        await lc.purge(validate_name(req.name))
        return Ok()

    @h.handle(ShellArgv)
    async def shell_argv(caller: Caller, req: ShellArgv) -> ShellArgvOk:
        name = validate_name(req.name)
        rec = hive.registry.require(name)
        if rec.runtime == "external":
            raise NotSupported(f"{name} runs outside the hive (external runtime): no shell")
        spec = lc.spec(name)
        argv = req.argv or ["/bin/bash", "-l"]
        return ShellArgvOk(argv=await lc.runtime_for(name).exec_argv(spec, argv))

    # -- manager tools --------------------------------------------------------------------

    @m.handle(MgrStart)
    async def mgr_start(caller: Caller, req: MgrStart) -> Ok:
        lc.guard_manager_target(caller, req.name)
        await lc.start_agent(validate_name(req.name))
        return Ok()

    @m.handle(MgrRestart)
    async def mgr_restart(caller: Caller, req: MgrRestart) -> Ok:
        lc.guard_manager_target(caller, req.name)
        await lc.restart(validate_name(req.name), req.generation)
        return Ok()

    @m.handle(MgrKill)
    async def mgr_kill(caller: Caller, req: MgrKill) -> Ok:
        lc.guard_manager_target(caller, req.name)
        await lc.kill_agent(validate_name(req.name), req.generation)
        return Ok()

    @m.handle(MgrUpdate)
    async def mgr_update(caller: Caller, req: MgrUpdate) -> Ok:
        lc.guard_manager_target(caller, req.name)
        await lc.rebuild(validate_name(req.name))
        return Ok()
