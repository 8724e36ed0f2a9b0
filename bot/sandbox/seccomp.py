"""A small seccomp filter for the runs: the system calls a tutorial exercise never needs, and that
would widen the kernel surface a learner's code can reach, fail with EPERM.

Classic BPF built by hand (no libseccomp), x86_64 only; elsewhere the layer is simply absent.
Blocked: new processes (``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``; ``clone3`` answers
ENOSYS so that glibc falls back to ``clone``, whose flags we can read): a run is one process with
threads, so its address-space limit bounds all the memory it can map; new namespaces (``unshare``,
``setns``, ``clone`` with ``CLONE_NEW*``); memory that no rlimit counts and that could outlive the
run in the worker's IPC namespace (``memfd_create``, ``memfd_secret``, System V shared memory,
semaphores and message queues, POSIX message queues); ``ptrace`` and cross-process memory access,
mounts, module and kexec loading, keyrings, ``bpf``, ``perf_event_open``, ``userfaultfd``,
``io_uring``, handle-based opens, ``modify_ldt``; ``personality`` other than the harmless personas
(so no ``ADDR_NO_RANDOMIZE``); sockets other than AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK (no
AF_VSOCK, AF_PACKET, AF_ALG...: EAFNOSUPPORT). Standard library only: used inside the sandbox by the
harness.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

# BPF opcodes
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
JSET_K = 0x45
RET_K = 0x06

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000

# offsets in struct seccomp_data
NR, ARCH, ARG0 = 0, 4, 16

CLONE = 56
CLONE3 = 435
CLONE_NAMESPACES = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
CLONE_THREAD = 0x00010000
PERSONALITY = 135
#: personality() values that change nothing dangerous: PER_LINUX, PER_LINUX32, UNAME26 variants and
#: the query 0xffffffff (as Docker's default profile allows).
PERSONALITY_ALLOWED = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
SOCKET = 41
SOCKETPAIR = 53
SOCKET_FAMILIES = (1, 2, 10, 16)  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK

DENIED_X86_64 = {
    "ptrace": 101,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "unshare": 272,
    "setns": 308,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "chroot": 161,
    "acct": 163,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "perf_event_open": 298,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    # processes: a run is one process (threads only, see clone below)
    "fork": 57,
    "vfork": 58,
    # memory no rlimit counts, and IPC objects that would outlive the run
    "memfd_create": 319,
    "memfd_secret": 447,
    "shmget": 29,
    "shmat": 30,
    "shmctl": 31,
    "semget": 64,
    "semop": 65,
    "semctl": 66,
    "shmdt": 67,
    "msgget": 68,
    "msgsnd": 69,
    "msgrcv": 70,
    "msgctl": 71,
    "semtimedop": 220,
    "mq_open": 240,
    "mq_unlink": 241,
    "mq_timedsend": 242,
    "mq_timedreceive": 243,
    "mq_notify": 244,
    "mq_getsetattr": 245,
    # odd corners of the kernel a tutorial never needs
    "modify_ldt": 154,
    "iopl": 172,
    "ioperm": 173,
    "vhangup": 153,
    "syslog": 103,
    "uselib": 134,
    "lookup_dcookie": 212,
    "kcmp": 312,
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def program() -> bytes | None:
    """The filter as packed ``sock_filter`` instructions, or ``None`` on other architectures."""
    if platform.machine() != "x86_64":
        return None
    deny = _insn(RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM)
    nosys = _insn(RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS)
    allow = _insn(RET_K, 0, 0, SECCOMP_RET_ALLOW)
    code = [
        _insn(LD_W_ABS, 0, 0, ARCH),
        _insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        deny,  # another ABI (i386 via int 0x80): nothing of ours uses it
        _insn(LD_W_ABS, 0, 0, NR),
        _insn(JGE_K, 0, 1, X32_SYSCALL_BIT),
        deny,  # the x32 ABI
        _insn(JEQ_K, 0, 1, CLONE3),
        nosys,
    ]
    for number in sorted(set(DENIED_X86_64.values())):
        code += [_insn(JEQ_K, 0, 1, number), deny]
    afnosupport = _insn(RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EAFNOSUPPORT)
    # clone: threads only, and no new namespaces
    code += [
        _insn(JEQ_K, 0, 6, CLONE),
        _insn(LD_W_ABS, 0, 0, ARG0),
        _insn(JSET_K, 0, 1, CLONE_NAMESPACES),
        deny,
        _insn(JSET_K, 0, 1, CLONE_THREAD),
        allow,
        deny,
    ]
    # personality: only the harmless values
    code += [_insn(JEQ_K, 0, 3 + len(PERSONALITY_ALLOWED), PERSONALITY), _insn(LD_W_ABS, 0, 0, ARG0)]
    for i, value in enumerate(PERSONALITY_ALLOWED):
        code += [_insn(JEQ_K, len(PERSONALITY_ALLOWED) - i, 0, value)]
    code += [deny, allow]
    # socket and socketpair: the usual families only
    families = len(SOCKET_FAMILIES)
    code += [
        _insn(JEQ_K, 1, 0, SOCKET),
        _insn(JEQ_K, 0, 3 + families, SOCKETPAIR),
        _insn(LD_W_ABS, 0, 0, ARG0),
    ]
    for i, family in enumerate(SOCKET_FAMILIES):
        code += [_insn(JEQ_K, families - i, 0, family)]
    code += [afnosupport, allow]
    code += [allow]
    return b"".join(code)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(filter_program: bytes) -> None:
    """Load the filter into this process (and its future children), after NO_NEW_PRIVS."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    buffer = ctypes.create_string_buffer(filter_program, len(filter_program))
    prog = _SockFprog(len(filter_program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP failed")
