"""The sandbox's seccomp filter: no nested user namespaces (unless the agent's config asks).

Why: inside bwrap the agent has no capabilities, but the kernel lets any uid create a user
namespace (`unshare -Ur`) and become "root" in it, with the capabilities that grants over new
mount, network and other namespaces. That is the door most kernel privilege escalations use,
and nothing an agent needs (bwrap's own `--disable-userns` needs a user namespace of its own,
which a root bwrap must not make: it would map the agent to host root). So bwrap loads this
classic-BPF program (`--seccomp FD`) for the sandboxed command:

- `unshare` and `clone` with `CLONE_NEWUSER` in their flags fail with EPERM;
- `clone3` fails with ENOSYS (its flags sit in memory a filter cannot read; libc then falls
  back to `clone`, which is checked): the approach of Flatpak and Chromium;
- system calls of a foreign ABI (i386 or x32 on x86-64, whose numbers differ) fail with
  EPERM, so the checks cannot be sidestepped through them;
- everything else is allowed: this is a narrow filter, not a syscall allow-list.

Built by hand (no libseccomp binding needed): a few instructions, one table per architecture.
bwrap loads it for the agent; `hive shell` (which enters a running sandbox with `nsenter`, not
bwrap) loads it with `LOADER`, a stdlib-only python step run as the agent right before the
operator's command.
"""

from __future__ import annotations

import errno
import platform
import struct
from dataclasses import dataclass

# classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h)
_LD_W_ABS = 0x00 | 0x00 | 0x20
_JEQ_K = 0x05 | 0x10 | 0x00
_JGE_K = 0x05 | 0x30 | 0x00
_JSET_K = 0x05 | 0x40 | 0x00
_RET_K = 0x06 | 0x00
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
CLONE_NEWUSER = 0x10000000
X32_SYSCALL_BIT = 0x40000000
# offsets in struct seccomp_data: nr, arch, instruction_pointer, args[6] (little-endian)
_NR, _ARCH, _ARG0_LOW = 0, 4, 16


@dataclass(frozen=True)
class Arch:
    audit: int
    unshare: int
    clone: int
    clone3: int
    x32: bool


ARCHES = {
    "x86_64": Arch(audit=0xC000003E, unshare=272, clone=56, clone3=435, x32=True),
    "aarch64": Arch(audit=0xC00000B7, unshare=97, clone=220, clone3=435, x32=False),
}


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def no_userns_filter(machine: str | None = None) -> bytes | None:
    """The compiled filter for this machine's architecture (None where there is no table:
    the sandbox then runs without it, and the caller says so)."""
    arch = ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    deny = RET_ERRNO | errno.EPERM
    nosys = RET_ERRNO | errno.ENOSYS
    # layout (jumps are relative to the next instruction):
    #  0 ld arch; 1 jeq native ? 3 : 2; 2 ret EPERM
    #  3 ld nr; 4 jge X32 ? DENY; 5 jeq unshare ? CHECK; 6 jeq clone ? CHECK
    #  7 jeq clone3 ? NOSYS; 8 ret ALLOW
    #  9 CHECK: ld args[0]; 10 jset NEWUSER ? DENY; 11 ret ALLOW; 12 DENY; 13 NOSYS
    x32_limit = X32_SYSCALL_BIT if arch.x32 else 0xFFFFFFFF
    prog = [
        _ins(_LD_W_ABS, _ARCH),
        _ins(_JEQ_K, arch.audit, jt=1, jf=0),
        _ins(_RET_K, deny),
        _ins(_LD_W_ABS, _NR),
        _ins(_JGE_K, x32_limit, jt=12 - 5, jf=0),
        _ins(_JEQ_K, arch.unshare, jt=9 - 6, jf=0),
        _ins(_JEQ_K, arch.clone, jt=9 - 7, jf=0),
        _ins(_JEQ_K, arch.clone3, jt=13 - 8, jf=0),
        _ins(_RET_K, RET_ALLOW),
        _ins(_LD_W_ABS, _ARG0_LOW),
        _ins(_JSET_K, CLONE_NEWUSER, jt=12 - 11, jf=0),
        _ins(_RET_K, RET_ALLOW),
        _ins(_RET_K, deny),
        _ins(_RET_K, nosys),
    ]
    return b"".join(prog)


# argv: <filter as hex> <command...>. Stdlib only (it runs inside the sandbox, as the agent,
# after setpriv set no-new-privs, which seccomp needs).
LOADER = """
import ctypes, os, sys
prog = bytes.fromhex(sys.argv[1])
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
buf = ctypes.create_string_buffer(prog, len(prog))
fprog = Fprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
    sys.exit("cannot load the sandbox's seccomp filter: " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[2], sys.argv[2:])
"""
