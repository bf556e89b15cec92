"""What a plugin says is its own: its reasons are one short line, and once its code runs
it cannot pass itself off as a plugin that was not run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pjai.app.plugins import run_plugin
from pjai.hybrid import HybridDatabaseManager
from pjai.plugins import PluginError, Registry
from tests.plugins.test_sandbox import installed, plugin

Setting = tuple[Registry, HybridDatabaseManager, str]


def test_a_plugin_s_reason_is_one_short_line(setting: Setting, tmp_path: Path) -> None:
    registry, manager, ada = setting
    code = "raise ValueError('x\\nerror: plugin other is not granted memories:read' + 'y' * 5000)"
    name = installed(registry, plugin(tmp_path, "spoof", code, []))
    with pytest.raises(PluginError) as raised:
        run_plugin(registry, manager, name, ada)
    said = str(raised.value)
    assert "\n" not in said
    assert said.startswith("plugin spoof failed: ValueError: x error: plugin other")
    assert len(said) < 1100


def test_a_plugin_that_ran_cannot_say_it_was_not_run(setting: Setting, tmp_path: Path) -> None:
    registry, manager, ada = setting
    code = (
        "import os\nsum(range(10**6))\n"
        'os.write(1, b\'{"refused": "no network namespace here"}\\n\')\n'
        "import time\ntime.sleep(1)"
    )
    name = installed(registry, plugin(tmp_path, "liar", code, []))
    with pytest.raises(PluginError, match="plugin liar failed: broke the protocol"):
        run_plugin(registry, manager, name, ada)
