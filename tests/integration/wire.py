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


def message(mtype, report_seq, fields=(), version=VERSION, magic=MAGIC, flags=0, length=None):
    body = b"".join(fields)
    total = HEADER.size + len(body)
    return HEADER.pack(magic, version, mtype, flags, total if length is None else length, 0,
                       report_seq, time.time_ns()) + body


def line(report_seq, text, shell="bash"):
    return message(LINE, report_seq, [field(F_SHELL, shell), field(F_TEXT, text)])


def exec_(report_seq, argv, path=None):
    fields = [field(F_PATH, path or argv[0])] + [field(F_ARGV, a) for a in argv]
    return message(EXEC, report_seq, fields)
