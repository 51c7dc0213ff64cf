"""Publishing into one export directory from concurrent exports: versions are claimed, never
silently replaced, a publish killed halfway is finished, and stale stages are found by locks."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from export.publish import Publisher, remove_stale_stages
from export.source import ExportError

from conftest import REPO

MODEL = "m"


def built(publisher: Publisher, tag: str):
    """What an export builds: a manifest and a SavedModel file, both saying `tag`."""
    (publisher.path("artifacts") / "manifest.json").write_text(tag)
    (publisher.path("serving") / "saved_model.pb").write_text(tag)


def export(out, tag: str, version=None, overwrite=False) -> int:
    with Publisher(out, MODEL, version, overwrite) as publisher:
        built(publisher, tag)
        publisher.publish()
    return publisher.version


def published(out) -> dict[str, dict[str, str]]:
    """{part: {version: tag}} of what is published."""
    return {part: {p.name: next(p.iterdir()).read_text()
                   for p in sorted((out / part / MODEL).glob("[0-9]*"))}
            for part in ("artifacts", "serving")}


def python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, **kwargs)


def test_concurrent_exports_claim_distinct_versions(tmp_path):
    """Two exports that both started before either published (both saw no version)."""
    first, second = (Publisher(tmp_path, MODEL, None, False) for _ in range(2))
    with first:
        with second:
            built(first, "first")
            built(second, "second")
            first.publish()
            second.publish()
    assert {first.version, second.version} == {1, 2}
    assert published(tmp_path) == {
        part: {str(first.version): "first", str(second.version): "second"}
        for part in ("artifacts", "serving")}


def test_an_export_that_listed_before_another_published_takes_the_next_version(tmp_path):
    late = Publisher(tmp_path, MODEL, None, False)  # lists the versions: none yet
    assert export(tmp_path, "early") == 1
    with late:
        built(late, "late")
        late.publish()
    assert late.version == 2
    assert published(tmp_path)["serving"] == {"1": "early", "2": "late"}


def test_a_requested_version_is_replaced_only_with_overwrite(tmp_path):
    racing = Publisher(tmp_path, MODEL, 1, False)  # checked before version 1 existed
    assert export(tmp_path, "v1") == 1
    with pytest.raises(ExportError, match="version 1 of m already exists.*--overwrite"):
        with racing:
            pass
    with pytest.raises(ExportError, match="version 1 of m already exists"):
        Publisher(tmp_path, MODEL, 1, False)
    assert export(tmp_path, "again", version=1, overwrite=True) == 1
    assert published(tmp_path) == {"artifacts": {"1": "again"}, "serving": {"1": "again"}}
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_version_being_exported_is_not_claimed_twice(tmp_path):
    with Publisher(tmp_path, MODEL, 3, False):
        with pytest.raises(ExportError, match="version 3 of m is being exported"):
            with Publisher(tmp_path, MODEL, 3, True):
                pass


def test_an_export_killed_between_the_renames_is_finished_by_the_next(tmp_path):
    killed = python(f"""
        import os
        from export import publish
        rename = os.rename
        def dies_before_serving(src, dst):
            if str(dst).endswith("serving/{MODEL}/1"):
                os._exit(9)  # killed between the two renames
            rename(src, dst)
        publish.os.rename = dies_before_serving
        with publish.Publisher({str(tmp_path)!r}, "{MODEL}", None, False) as p:
            (p.path("artifacts") / "manifest.json").write_text("killed")
            (p.path("serving") / "saved_model.pb").write_text("killed")
            p.publish()
    """)
    assert killed.wait(60) == 9
    assert published(tmp_path) == {"artifacts": {"1": "killed"}, "serving": {}}  # half

    assert export(tmp_path, "next") == 2
    assert published(tmp_path) == {part: {"1": "killed", "2": "next"}
                                   for part in ("artifacts", "serving")}
    assert not list(tmp_path.glob(".tmp-*"))


def test_stale_stages_are_found_by_their_lock_not_a_pid(tmp_path):
    # a running export on another machine, of version 999999: its stage is locked (no
    # process of this machine has that number)
    elsewhere = tmp_path / ".tmp-m-999999"
    elsewhere.mkdir()
    (elsewhere / ".lock").write_text("locked\n")
    holder = python(f"""
        import fcntl, sys, time
        f = open({str(elsewhere / '.lock')!r})
        fcntl.flock(f, fcntl.LOCK_EX)
        print("held", flush=True)
        time.sleep(120)
    """, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        # an export killed on this machine: its lock went with it
        killed = python(f"""
            import os
            from export.publish import Publisher
            with Publisher({str(tmp_path)!r}, "{MODEL}", None, False):
                os._exit(9)
        """)
        assert killed.wait(60) == 9
        assert len(list(tmp_path.glob(".tmp-*"))) == 2
        assert export(tmp_path, "after") == 1000000  # above the running export's
        assert [p.name for p in tmp_path.glob(".tmp-*")] == [elsewhere.name]
    finally:
        holder.kill()
        holder.wait()
    remove_stale_stages(tmp_path)  # its export ended: the lock is free
    assert not list(tmp_path.glob(".tmp-*"))


def test_without_a_lock_file_a_stage_goes_by_its_age(tmp_path):
    fresh, old = tmp_path / ".tmp-m-1", tmp_path / ".tmp-m-2"
    fresh.mkdir()
    old.mkdir()
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    remove_stale_stages(tmp_path)
    assert [p.name for p in tmp_path.glob(".tmp-*")] == [fresh.name]
