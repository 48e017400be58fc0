"""The compiled-kernel cache is dropped when any kernel source changes (numba itself only
watches the file of each kernel, not the helpers it compiles in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from otconduit.analysis import kernel_cache


def test_stale_kernels_are_dropped_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernels, store = tmp_path / "kernels", tmp_path / "store"
    kernels.mkdir()
    store.mkdir()
    stale = kernels / "s7.s7_pass-177.py311.nbi"
    renderer = store / "detail_render.render_details-30.py311.nbi"
    other = store / "engine.something.nbi"
    for f in (stale, renderer, other):
        f.write_bytes(b"x")
    caches = ((kernels, "*.nb[ic]"), (store, "detail_render.*.nb[ic]"))
    monkeypatch.setattr(kernel_cache, "_checked", False)
    assert kernel_cache.check(caches)
    assert not stale.exists() and not renderer.exists() and other.exists()
    assert (kernels / "kernels.sources").read_text() == kernel_cache.digest()
    stale.write_bytes(b"x")
    monkeypatch.setattr(kernel_cache, "_checked", False)
    assert not kernel_cache.check(caches)  # sources unchanged: the cache stays
    assert stale.exists()
    (kernels / "kernels.sources").write_text("older sources")
    monkeypatch.setattr(kernel_cache, "_checked", False)
    assert kernel_cache.check(caches) and not stale.exists()


def test_every_kernel_module_is_a_source() -> None:
    """A kernel module added later is covered without anyone listing it."""
    names = {p.name for p in kernel_cache.sources()}
    assert {"slots.py", "shapes.py", "modbus.py", "dnp3.py", "detail_render.py"} <= names


def test_kernels_use_the_engine_idle_limit() -> None:
    from otconduit.analysis import engine
    from otconduit.analysis.fastpath.kernels import slots

    assert slots.IDLE_NS == engine.IDLE_NS
