# SPDX-License-Identifier: Apache-2.0
"""Python encoder for the wire format in libshaudit/include/shaudit/wire.h (tests only)."""
import struct
import time

MAGIC = 0x5341
VERSION = 1
MAX_MESSAGE = 128 * 1024
HELLO, LINE, EXEC = 1, 2, 3
F_TEXT, F_SHELL, F_ARGV, F_PATH, F_CWD, F_SESSION, F_TTY, F_EXE = 1, 2, 3, 4, 5, 6, 7, 8
HEADER = struct.Struct("<HHHHIIQQ")
FIELD = struct.Struct("<HHI")


def field(tag, data, flags=0):
    if isinstance(data, str):
        data = data.encode()
    return FIELD.pack(tag, flags, len(data)) + data


def message(mtype, report_seq, fields=(), version=VERSION, magic=MAGIC, flags=0, length=None,
            sent_ns=None):
    """A message; sent_ns (the sender's clock, untrusted) defaults to now."""
    body = b"".join(fields)
    total = HEADER.size + len(body)
    return HEADER.pack(magic, version, mtype, flags, total if length is None else length, 0,
                       report_seq, (time.time_ns() if sent_ns is None else sent_ns) & 0xFFFFFFFFFFFFFFFF) + body


def line(report_seq, text, shell="bash", cmd_no=None, sent_ns=None):
    """LINE: a typed line (with its command number when given)."""
    fields = [field(F_SHELL, shell), field(F_TEXT, text)]
    if cmd_no is not None:
        fields.append(u64_field(F_CMD_NO, cmd_no))
    return message(LINE, report_seq, fields, sent_ns=sent_ns)


def exec_(report_seq, argv, path=None, sent_ns=None):
    """EXEC: PATH, then one ARGV per element."""
    fields = [field(F_PATH, path or argv[0])] + [field(F_ARGV, a) for a in argv]
    return message(EXEC, report_seq, fields, sent_ns=sent_ns)


# ---------------------------------------------------------------------------------------
# The remaining message types and fields.

STATUS, NONCMD = 4, 5
F_CMD_NO, F_CMD_PID, F_LINE_FLAGS, F_STATUS, F_DURATION_NS = 9, 10, 11, 12, 13
F_HELLO_FLAGS, F_LINE_INDEX, F_PPID = 18, 24, 25
HELLO_SHELL, HELLO_INTERACTIVE, HELLO_HOST_WIDE, HELLO_SECURE, HELLO_REPL = 0x1, 0x2, 0x4, 0x8, 0x10
U64 = struct.Struct("<Q")


def u64_field(tag, value):
    """A number field: 8-byte unsigned integer, host (little-endian) order."""
    return field(tag, U64.pack(value & 0xFFFFFFFFFFFFFFFF))


def hello(report_seq, flags=0, exe=None, tty=None, session=None, argv=(), sent_ns=None):
    """HELLO as the interposer builds it: EXE, SESSION, HELLO_FLAGS, TTY, then ARGV."""
    fields = []
    if exe is not None:
        fields.append(field(F_EXE, exe))
    if session is not None:
        fields.append(field(F_SESSION, session))
    fields.append(u64_field(F_HELLO_FLAGS, flags))
    if tty is not None:
        fields.append(field(F_TTY, tty))
    fields += [field(F_ARGV, a) for a in argv]
    return message(HELLO, report_seq, fields, sent_ns=sent_ns)
