"""The one-line progress display of ``produce`` and ``replay`` on a terminal."""

from __future__ import annotations

import time
from typing import IO


class ProgressLine:
    """A line redrawn in place (``\\r``) on ``stream``, at most once per ``interval``
    seconds; does nothing when ``stream`` is None (the caller passes None when its stderr
    is not a terminal, or the user asked for none).

    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressLine(out)
    >>> bar.due(), bar.due(), bar.due(force=True)  # the second comes too soon
    (True, False, True)
    >>> bar.show("12 lines"); bar.close()
    >>> out.getvalue()
    '\\r12 lines\\r\\x1b[K'
    >>> ProgressLine(None).due(force=True)
    False
    """

    def __init__(self, stream: IO[str] | None, interval: float = 0.25) -> None:
        self.stream = stream
        self.interval = interval
        self.started = time.monotonic()
        self._last = -float("inf")

    def due(self, force: bool = False) -> bool:
        """Whether to draw now (and, if so, the interval starts again)."""
        if self.stream is None:
            return False
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return False
        self._last = now
        return True

    def rate(self, count: int) -> float:
        """``count`` per second since the display was made."""
        elapsed = time.monotonic() - self.started
        return count / elapsed if elapsed > 0 else 0.0

    def show(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write("\r" + text)
            self.stream.flush()

    def close(self) -> None:
        """Clear the line."""
        if self.stream is not None:
            self.stream.write("\r\033[K")
            self.stream.flush()
