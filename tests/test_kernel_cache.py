"""The compiled-kernel cache is dropped when any kernel source changes (numba itself only
watches the file of each kernel, not the helpers it compiles in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from otconduit.analysis import kernel_cache


def test_stale_kernels_are_dropped_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "kernels_s7.s7_pass-177.py311.nbi"
    other = tmp_path / "engine.something.nbi"
    for f in (stale, other):
        f.write_bytes(b"x")
    monkeypatch.setattr(kernel_cache, "_checked", False)
    assert kernel_cache.check(tmp_path)
    assert not stale.exists() and other.exists()
    assert (tmp_path / "kernels.sources").read_text() == kernel_cache.digest()
    stale.write_bytes(b"x")
    monkeypatch.setattr(kernel_cache, "_checked", False)
    assert not kernel_cache.check(tmp_path)  # sources unchanged: the cache stays
    assert stale.exists()
    (tmp_path / "kernels.sources").write_text("older sources")
    monkeypatch.setattr(kernel_cache, "_checked", False)
    assert kernel_cache.check(tmp_path) and not stale.exists()


def test_kernels_use_the_engine_idle_limit() -> None:
    from otconduit.analysis import engine, kernels, kernels_tx

    assert kernels.IDLE_NS == kernels_tx.IDLE_NS == engine.IDLE_NS
