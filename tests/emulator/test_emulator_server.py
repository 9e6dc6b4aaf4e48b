"""The emulator's server: a port it cannot take is an ``EmulatorError`` with a hint."""

from __future__ import annotations

import socket

import pytest

from batchmark._errors import EmulatorError
from batchmark.emulator import Emulator


def test_serving_on_a_port_in_use_is_an_emulator_error_saying_how_to_pick_a_free_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(EmulatorError) as info, Emulator().serve(port=port):
            pass

    assert f"port {port} is already in use" in str(info.value)
    assert info.value.exit_code == 2
    assert info.value.hint is not None and "--port 0" in info.value.hint
