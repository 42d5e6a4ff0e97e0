#!/usr/bin/env python3
"""The protocol and limits tests again with `io_uring = no`: chatd's writev
path, which is what runs where the kernel or a seccomp filter refuses
io_uring. (The other test files run with the default, io_uring.) Slow
readers, full sockets and partial writes are in test_limits."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chatdtest  # noqa: E402

chatdtest.DEFAULT_CONFIG["server"]["io_uring"] = "no"

from test_limits import *  # noqa: E402,F401,F403
from test_protocol import *  # noqa: E402,F401,F403

if __name__ == "__main__":
    chatdtest.main()
