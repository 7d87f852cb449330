"""On-device profiling: a profiling agent (HTTP), its client, SSH/adb transports and the LiteRT
``benchmark_model`` output parser.

Nothing here imports a server library, asyncssh or a runtime at import time; each is loaded by the function
that needs it. The agent needs the ``agent`` extra (``pip install 'hwdiffnas[agent]'``).
"""
