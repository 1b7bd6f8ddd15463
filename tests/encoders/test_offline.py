"""The default encoders load and encode with the network closed (sockets refuse to connect)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

_CLOSED_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise OSError("network is closed in this test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
"""


@pytest.mark.real_weights
@pytest.mark.slow
def test_models_check_works_with_the_network_closed() -> None:
    code = _CLOSED_NETWORK + (
        "import sys\n"
        "sys.argv = ['polymodal', 'models', '--check']\n"
        "from polymodal.cli.app import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["PYTHONPATH"] = str(REPO / "src")
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("minilm-l6", "efficientnet-lite0", "whisper-tiny-en", "video-frames"):
        assert f"check {name}: loaded offline" in res.stdout
