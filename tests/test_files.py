"""Writing files: the background writer keeps the order asked and reports failures."""

from __future__ import annotations

import threading

import pytest

from egress.files import BackgroundWriter, atomic_text


def test_background_writes_in_the_order_asked(tmp_path):
    path = tmp_path / "state.json"
    writer = BackgroundWriter()
    threads = set()

    def write(text: str) -> None:
        threads.add(threading.current_thread().name)
        atomic_text(path, text)

    for k in range(50):
        writer.submit(write, f"{k}\n")
    writer.wait()
    assert path.read_text() == "49\n"
    assert not (tmp_path / "state.json.tmp").exists()
    assert threading.current_thread().name not in threads
    writer.close()


def test_a_failed_background_write_is_raised(tmp_path):
    writer = BackgroundWriter()
    writer.submit(atomic_text, tmp_path / "missing" / "state.json", "x")
    with pytest.raises(FileNotFoundError):
        writer.wait()
    # the error is reported once; later writes go on
    writer.submit(atomic_text, tmp_path / "state.json", "y")
    writer.close()
    assert (tmp_path / "state.json").read_text() == "y"
