"""Large Kineto traces decoded by worker processes: same tables, order kept, bounded backlog, workers always ended."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson
import pytest

from profkit.app import DETAIL_EVENTS, parallel
from profkit.app.inputs import TraceInput, load_tables
from profkit.app.parallel import BACKLOG_PER_WORKER, block_mapper, decode_workers, ordered_map
from profkit.errors import EXIT_RUN_FAILED, ProfkitError
from profkit.naming import PIPELINE
from profkit.parsers import kineto
from profkit.parsers.kineto_chunked import ChunkFallback, parse_kineto_chunked
from profkit.parsers.tables import DetailLimit
from tests.conftest import REPO, corpus_dir
from tests.parsers.test_chunked import _whole, assert_same


def _slow_square(value: int) -> int:
    sum(range((value % 3) * 300_000))  # uneven work: later items often finish first
    return value * value


def _die_at_five(value: int) -> int:
    if value == 5:
        os._exit(9)  # what the out-of-memory killer leaves: no exception, no result
    return value


def _fail_at_seven(value: int) -> int:
    if value == 7:
        raise ValueError("seven")
    return value


@pytest.mark.parametrize("workers", [2, 3])
def test_blocks_decoded_by_workers_give_the_same_tables(workers: int) -> None:
    # the largest corpus trace cut into ~800 blocks spread over forked workers: same rows in the same order
    path = corpus_dir() / "a100_80gb_training_rank0.json.gz"
    assert_same(parse_kineto_chunked(path, chunk_size=1 << 15, mapper=block_mapper(workers)), _whole(path))
    assert multiprocessing.active_children() == []


def test_results_in_order_and_items_taken_as_the_backlog_allows() -> None:
    taken: list[int] = []

    def items():
        for value in range(40):
            taken.append(value)
            yield value

    results = ordered_map(_slow_square, items(), workers=2)
    assert next(results) == 0
    assert len(taken) <= BACKLOG_PER_WORKER * 2  # not the whole input read ahead
    assert [0, *results] == [value * value for value in range(40)]
    assert multiprocessing.active_children() == []


def test_a_worker_error_is_raised_here_and_every_worker_ends() -> None:
    with pytest.raises(ValueError, match="seven"):
        list(ordered_map(_fail_at_seven, range(50), workers=2))
    assert multiprocessing.active_children() == []
    results = ordered_map(_slow_square, range(50), workers=2)
    assert next(results) == 0
    results.close()  # a reader that stops early (the parser on failure) ends the workers too
    assert multiprocessing.active_children() == []


def test_a_worker_that_dies_is_one_error_not_a_wait() -> None:
    with pytest.raises(ProfkitError, match="ended abruptly") as raised:
        list(ordered_map(_die_at_five, range(50), workers=2))
    assert raised.value.exit_code == EXIT_RUN_FAILED
    assert multiprocessing.active_children() == []


def test_a_block_the_typed_decode_rejects_falls_back_to_the_whole_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [{"ph": "X", "cat": "kernel", "name": f"k{i}", "ts": i, "dur": 1} for i in range(3000)]
    events[2500]["ts"] = "7"  # far into the file: a worker's block, not the tail
    path = tmp_path / "t.json"
    path.write_bytes(orjson.dumps({"traceEvents": events}))
    with pytest.raises(ChunkFallback):
        parse_kineto_chunked(path, chunk_size=1 << 12, mapper=block_mapper(2))
    assert multiprocessing.active_children() == []
    monkeypatch.setattr(kineto, "CHUNKED_MIN_BYTES", 1)
    tables = kineto.load_kineto(path, mapper=block_mapper(2))
    assert tables.info.decoder == "tolerant"
    assert len(tables.kernels) == 2999 and tables.info.skipped_events == {"missing or bad ts": 1}


def test_workers_only_in_a_top_level_process_without_threads() -> None:
    cores = len(os.sched_getaffinity(0))
    assert decode_workers() == (cores if threading.active_count() == 1 else 1)
    assert block_mapper(1) is None
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(decode_workers).result() == 1  # analyze DIR: already one trace per core
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert decode_workers() == 1  # forking while another thread runs is unsafe
    finally:
        stop.set()
        other.join()


def test_analysis_inputs_are_loaded_with_the_mapper(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr("profkit.parsers.load_trace", lambda path, mapper, detail: seen.append((mapper, detail)))
    monkeypatch.setattr(parallel, "decode_workers", lambda: 2)
    load_tables(TraceInput(corpus_dir() / "cpu_only.json.gz", None, "cpu"))
    mapper, detail = seen[0]
    assert mapper is not None and mapper.keywords == {"workers": 2}
    assert detail == DetailLimit(DETAIL_EVENTS, PIPELINE)  # large nsys exports: the default detail limit
    load_tables(TraceInput(corpus_dir() / "cpu_only.json.gz", None, "cpu"), detail_events=None)
    assert seen[1][1] is None


_INTERRUPTED_CHILD = """
import multiprocessing
from profkit.app.parallel import ordered_map
from tests.app.test_parallel import _slow_square
try:
    for result in ordered_map(_slow_square, range(10**6), workers=2):
        if result == 0:
            print("running", flush=True)
except KeyboardInterrupt:
    print("interrupted, workers left:", len(multiprocessing.active_children()), flush=True)
"""


def test_ctrl_c_to_the_process_group_interrupts_the_parent_alone() -> None:
    # a terminal's Ctrl-C signals every process of the group: workers must not print tracebacks of their own
    child = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED_CHILD],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "running\n"
        os.killpg(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert out == "interrupted, workers left: 0\n"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
