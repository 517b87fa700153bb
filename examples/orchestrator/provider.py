"""A stand-in provider process: writes a raw transcript to standard output, one message per line,
with a small delay between lines, then stays up (idle, as a real agent waits for its next prompt)
until its standard input closes.

    python examples/orchestrator/provider.py examples/raw/claude_turns.jsonl --delay 0.02

The orchestrator stops it by closing its standard input, as it would close a real agent's.
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("transcript", help="a raw provider transcript (examples/raw/*.jsonl)")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds between lines (default 0.02)")
    args = parser.parse_args()
    try:
        with open(args.transcript, "rb") as transcript:
            lines = transcript.read().splitlines()
    except OSError as exc:
        print(f"provider: cannot read {args.transcript!r}: {exc.strerror}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    try:
        for line in lines:
            out.write(line + b"\n")
            out.flush()  # a pipe is block-buffered: each message goes out when written, as a live agent's
            time.sleep(args.delay)
        sys.stdin.buffer.read()  # idle until the orchestrator closes our input
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the orchestrator went away: nothing left to tell
    return 0


if __name__ == "__main__":
    sys.exit(main())
