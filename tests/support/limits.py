"""A process whose resource limits cannot be raised: the kernel refuses, as it may to a server in a sandbox.

Raising the soft open-files limit up to the hard one is refused only past
``fs.nr_open``, a setting of the whole machine; a seccomp filter makes the
kernel refuse it to one process (and its children) instead.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

import pytest

#: ``AUDIT_ARCH_*`` and the numbers of ``setrlimit`` and ``prlimit64`` of the machines the tests run on.
_SYSCALLS = {"x86_64": (0xC000003E, 160, 302), "aarch64": (0xC00000B7, 164, 261)}

needs_seccomp = pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() not in _SYSCALLS,
    reason="a seccomp filter for this machine's system calls is written for Linux on x86_64 and aarch64",
)

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS: a word of the call's seccomp_data
_JUMP_IF_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RETURN = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000
_REFUSE = 0x00050000 | errno.EPERM  # SECCOMP_RET_ERRNO


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def refuse_raising_limits() -> None:
    """From now on, this process and its children are refused every new resource limit (EPERM); reading them works.

    A ``preexec`` of ``ServerProcess``: glibc's ``getrlimit`` is ``prlimit64`` without a new
    limit (its third argument NULL), which is let through.
    """
    arch, setrlimit, prlimit64 = _SYSCALLS[platform.machine()]
    # seccomp_data: the call's number at 0, its arch at 4, the words of its third argument at 32 and 36.
    instructions = [
        (_LOAD_WORD, 0, 0, 4),
        (_JUMP_IF_EQUAL, 0, 7, arch),  # another arch's numbers mean other calls: let them through
        (_LOAD_WORD, 0, 0, 0),
        (_JUMP_IF_EQUAL, 6, 0, setrlimit),
        (_JUMP_IF_EQUAL, 0, 4, prlimit64),
        (_LOAD_WORD, 0, 0, 32),
        (_JUMP_IF_EQUAL, 0, 3, 0),
        (_LOAD_WORD, 0, 0, 36),
        (_JUMP_IF_EQUAL, 0, 1, 0),
        (_RETURN, 0, 0, _ALLOW),
        (_RETURN, 0, 0, _REFUSE),
    ]
    code = b"".join(struct.pack("HBBI", *instruction) for instruction in instructions)
    libc = ctypes.CDLL(None, use_errno=True)
    program = _Program(len(instructions), code)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(
        _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0
    ):
        raise OSError(ctypes.get_errno(), "seccomp filter refused")
