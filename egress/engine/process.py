"""Running the ``sumo`` binary on a run folder, with a progress bar of simulated time."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .. import sumo
from ..errors import SumoError
from ..progress import bar as progress_bar
from .config import OUTPUTS


def run_sumo(config: Path, begin: float, end: float, *, progress: bool = True) -> None:
    """Run ``sumo -c config``, showing simulated time as a progress bar.

    SUMO's messages go to ``sumo.log`` beside the configuration. Without a
    progress bar on screen SUMO writes them to the file itself; with one
    they pass through this process, which reads the simulated time from
    SUMO's step log.

    Raises
    ------
    SumoError
        If SUMO exits with an error (the message quotes SUMO's last errors).
    """
    config = Path(config)
    log_path = config.parent / OUTPUTS["log"]
    cmd = [sumo.binary("sumo"), "-c", config.name]
    env = {**os.environ, "SUMO_HOME": str(sumo.sumo_home())}
    bar = progress_bar(progress, total=round(end - begin), unit="sim s", desc="simulating",
                       leave=False)
    with open(log_path, "wb") as log_file:
        if bar.disable:
            code = subprocess.run(cmd, cwd=config.parent, stdout=log_file,
                                  stderr=subprocess.STDOUT, env=env, check=False).returncode
        else:
            code = _follow(cmd, config.parent, env, log_file, bar, begin)
    bar.close()
    if code != 0:
        text = log_path.read_bytes().decode(errors="replace").replace("\r", "\n")
        raise SumoError(f"sumo failed on {config} (exit {code}): {sumo.error_tail(text)}")


def _follow(cmd: list[str], cwd: Path, env: dict[str, str] | None, log_file, bar,
            begin: float) -> int:
    """Run `cmd`, copying its output to `log_file` and its step log to `bar`."""
    step = re.compile(rb"Step #(\d+(?:\.\d+)?)")
    done = 0
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env)
    assert proc.stdout is not None
    while chunk := proc.stdout.read1(65536):
        log_file.write(chunk)
        found = step.findall(chunk)
        if found:
            now = round(float(found[-1]) - begin)
            if now > done:
                bar.update(now - done)
                done = now
    return proc.wait()
