# SPDX-License-Identifier: Apache-2.0
"""Drives a real shell on a real pseudo-terminal, typing one character at a time."""
import os
import pty
import select
import signal
import time

PS1 = "PROMPT> "
PS2 = "CONT> "


class PtyShell:
    def __init__(self, argv, env=None, cwd=None, preexec=None):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            try:
                if cwd:
                    os.chdir(cwd)
                if preexec:
                    preexec()
                os.execve(argv[0], argv, env if env is not None else os.environ)
            finally:
                os._exit(127)
        self.out = b""
        self.status = None

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return b""
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            return None
        self.out += data
        return data

    def expect(self, marker, timeout=10.0):
        """Waits until marker appears in output received after the current mark."""
        if isinstance(marker, str):
            marker = marker.encode()
        deadline = time.monotonic() + timeout
        while marker not in self.out[self.mark:]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited for {marker!r}; output tail: {self.out[-400:]!r}")
            if self._read(0.05) is None:
                raise EOFError(f"shell exited; output tail: {self.out[-400:]!r}")
        self.mark = self.out.index(marker, self.mark) + len(marker)

    mark = 0

    def wait_prompt(self, prompt=PS1, timeout=10.0):
        self.expect(prompt, timeout)

    def type(self, text, delay=0.003):
        data = text.encode() if isinstance(text, str) else text
        for i in range(len(data)):
            os.write(self.fd, data[i:i + 1])
            if delay:
                time.sleep(delay)

    def paste(self, data):
        data = data.encode() if isinstance(data, str) else data
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view[:4096])
            view = view[n:]
            self._read(0)

    def line(self, text, prompt=PS1, timeout=10.0, delay=0.003):
        """Types text and Enter, then waits for the next prompt (PS1 unless told)."""
        self.type(text, delay)
        self.type("\r", 0)
        if prompt:
            self.wait_prompt(prompt, timeout)

    def exit(self, command="exit", timeout=10.0):
        try:
            self.type(command + "\r", 0)
        except OSError:
            pass
        return self.wait(timeout)

    def wait(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            self._read(0.05)
        self.kill()
        raise TimeoutError("shell did not exit")

    def session(self, lines, first_prompt=PS1, timeout=20.0):
        """Waits for first_prompt, types each line (waiting for PS1 after it), then `exit`;
        returns the shell's exit status. The shell is killed if any step fails."""
        try:
            self.expect(first_prompt, timeout)
            for text in lines:
                self.line(text, timeout=timeout)
            return self.exit()
        finally:
            self.kill()

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass
