"""The app over real HTTP (uvicorn in a thread on 127.0.0.1) with a stand-in pipeline: queue, batching, errors."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.serve.conftest import StubRunner, running_app
from tests.serve.timing_header import assert_phases_sum_to_total

GENERATIONS = "/v1/images/generations"


def _samples(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(url + "/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _count(url: str, status: str) -> float:
    return _samples(url).get(("profkit_serve_requests_total", (("status", status),)), 0.0)


async def _post_many(url: str, bodies: list[dict], timeout: float = 10) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        return await asyncio.gather(*(client.post(GENERATIONS, json=body) for body in bodies))


def _wait(condition, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"condition not met in time: {condition.__code__.co_names}"
        time.sleep(0.01)


def test_healthz_is_503_until_warm_up_is_done() -> None:
    runner = StubRunner()
    runner.warm.clear()
    with running_app(runner, wait_ready=False) as app:
        answer = httpx.get(app.url + "/healthz", timeout=5)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        early = httpx.post(app.url + GENERATIONS, json={"prompt": "x"}, timeout=5)
        assert early.status_code == 503
        runner.warm.set()
        _wait(lambda: app.state.ready)
        assert httpx.get(app.url + "/healthz", timeout=5).json()["status"] == "ready"


def test_generation_answers_pngs_timing_and_metrics_that_count_every_request() -> None:
    with running_app(steps=3) as app:
        good = [httpx.post(app.url + GENERATIONS, json={"prompt": "a cat", "n": 2, "size": "32x32"}, timeout=5)]
        good.append(httpx.post(app.url + GENERATIONS, json={"prompt": "a dog", "seed": 1}, timeout=5))
        bad = httpx.post(app.url + GENERATIONS, content=b"{oops", timeout=5)
        for answer in good:
            assert answer.status_code == 200
            for item in answer.json()["data"]:
                assert base64.b64decode(item["b64_json"]).startswith(b"\x89PNG\r\n\x1a\n")
            entries = assert_phases_sum_to_total(answer.headers["server-timing"])
            assert entries["denoise"] >= 3 * app.runner.step_s * 1000 * 0.9
            assert entries["step"] > 0
        assert [len(a.json()["data"]) for a in good] == [2, 1]
        assert bad.status_code == 400
        samples = _samples(app.url)
        assert samples[("profkit_serve_requests_total", (("status", "200"),))] == 2
        assert samples[("profkit_serve_requests_total", (("status", "400"),))] == 1
        assert samples[("profkit_serve_images_total", ())] == 3
        assert samples[("profkit_serve_phase_seconds_count", (("phase", "total"),))] == 2
        assert samples[("profkit_serve_step_seconds_count", ())] == 6
        assert samples[("profkit_serve_in_flight", ())] == 0
        assert samples[("profkit_serve_ready", ())] == 1
        assert ("profkit_serve_gpu_memory_bytes", (("kind", "allocated"),)) not in samples  # no CUDA here


def test_each_bad_request_gets_its_4xx_json_and_never_reaches_the_pipeline() -> None:
    with running_app(max_n=2, steps=2, max_steps=4, max_side=64, max_body_bytes=512) as app:
        calls_before = len(app.runner.batches)  # warm-up does not go through the stub's run
        cases = [
            (b"{not json", 400),
            (b'{"size": "32x32"}', 422),
            (b'{"prompt": "x", "n": 5}', 422),
            (b'{"prompt": "x", "size": "1024x1024"}', 422),
            (b'{"prompt": "x", "size": "big"}', 422),
            (b'{"prompt": "x", "steps": 99}', 422),
            (orjson.dumps({"prompt": "x" * 2000}), 413),
        ]
        for body, status in cases:
            answer = httpx.post(app.url + GENERATIONS, content=body, timeout=5)
            assert answer.status_code == status, body
            assert answer.json()["error"]["code"] == status
        assert httpx.get(app.url + GENERATIONS, timeout=5).status_code == 405
        assert len(app.runner.batches) == calls_before
        samples = _samples(app.url)
        assert samples[("profkit_serve_requests_total", (("status", "422"),))] == 5


def test_overload_gives_503_with_retry_after_and_every_accepted_request_is_answered() -> None:
    runner = StubRunner()
    with running_app(runner, queue_size=2, deadline_s=30) as app:
        runner.gate.clear()

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=app.url, timeout=10) as client:
                first = asyncio.ensure_future(client.post(GENERATIONS, json={"prompt": "runs"}))
                await asyncio.to_thread(runner.calls_started.wait, 5)  # the worker holds it: the queue is empty
                rest = asyncio.gather(*(client.post(GENERATIONS, json={"prompt": f"p{i}"}) for i in range(9)))
                await asyncio.to_thread(_wait, lambda: _count(app.url, "503") == 7 and app.state.worker.depth == 2)
                runner.gate.set()
                return [await first, *(await rest)]

        answers = asyncio.run(burst())
        codes = sorted(a.status_code for a in answers)
        assert codes == [200] * 3 + [503] * 7  # one running, two queued
        for answer in answers:
            if answer.status_code == 503:
                assert int(answer.headers["retry-after"]) >= 1
                assert answer.json()["error"]["type"] == "overloaded"
        samples = _samples(app.url)
        assert samples[("profkit_serve_requests_total", (("status", "503"),))] == 7
        assert samples[("profkit_serve_requests_total", (("status", "200"),))] == 3
        assert samples[("profkit_serve_queue_depth", ())] == 0


def test_compatible_requests_are_batched_up_to_max_batch() -> None:
    runner = StubRunner()
    with running_app(runner, max_batch=4, max_wait_ms=300, queue_size=16) as app:
        runner.gate.clear()
        bodies = [{"prompt": "a", "n": 2, "size": "32x32"}, {"prompt": "b", "size": "32x32"}]
        bodies += [{"prompt": "c", "size": "64x64"}, {"prompt": "d", "size": "32x32"}, {"prompt": "e", "size": "32x32"}]

        async def send() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=app.url, timeout=10) as client:
                first = asyncio.ensure_future(client.post(GENERATIONS, json={"prompt": "hold", "size": "32x32"}))
                await asyncio.to_thread(runner.calls_started.wait, 5)  # the worker is busy with "hold"
                rest = []
                for index, body in enumerate(bodies):  # queued in this order
                    rest.append(asyncio.ensure_future(client.post(GENERATIONS, json=body)))
                    await asyncio.to_thread(_wait, lambda n=index + 1: app.state.worker.depth == n)
                runner.gate.set()
                return [await first, *[await task for task in rest]]

        answers = asyncio.run(send())
        assert all(a.status_code == 200 for a in answers)
        assert [len(a.json()["data"]) for a in answers] == [1, 2, 1, 1, 1, 1]
        shapes = [[(g.prompt, g.width) for g in batch] for batch in runner.batches]
        assert shapes[0] == [("hold", 32)]
        assert shapes[1] == [("a", 32), ("b", 32), ("d", 32)]  # 4 images: same size and steps only
        assert shapes[2:] == [[("c", 64)], [("e", 32)]]
        samples = _samples(app.url)
        assert samples[("profkit_serve_batch_size_sum", ())] == 7


def test_a_client_that_disconnects_is_skipped_and_does_not_hurt_the_next() -> None:
    runner = StubRunner()
    with running_app(runner) as app:
        runner.gate.clear()

        async def scenario() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=app.url, timeout=10) as client:
                held = asyncio.ensure_future(client.post(GENERATIONS, json={"prompt": "held"}))
                await asyncio.to_thread(runner.calls_started.wait, 5)
                with contextlib.suppress(httpx.TimeoutException):  # leaves while queued
                    await client.post(GENERATIONS, json={"prompt": "leaves"}, timeout=0.3)
                await asyncio.to_thread(_wait, lambda: _count(app.url, "499") == 1)
                after = asyncio.ensure_future(client.post(GENERATIONS, json={"prompt": "next"}))
                await asyncio.to_thread(_wait, lambda: app.state.worker.depth == 2)  # "leaves" is still in the deque
                runner.gate.set()
                return [await held, await after]

        answers = asyncio.run(scenario())
        assert [a.status_code for a in answers] == [200, 200]
        assert_phases_sum_to_total(answers[1].headers["server-timing"])
        assert [g.prompt for batch in runner.batches for g in batch] == ["held", "next"]  # "leaves" never ran
        _wait(lambda: _samples(app.url)[("profkit_serve_in_flight", ())] == 0)


def test_a_request_past_its_deadline_gets_504() -> None:
    runner = StubRunner()
    with running_app(runner, deadline_s=0.3) as app:
        runner.gate.clear()

        async def scenario() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=app.url, timeout=10) as client:
                held = asyncio.ensure_future(client.post(GENERATIONS, json={"prompt": "held"}))
                await asyncio.to_thread(runner.calls_started.wait, 5)
                late = await client.post(GENERATIONS, json={"prompt": "late"})
                runner.gate.set()
                return [await held, late]

        held, late = asyncio.run(scenario())
        assert held.status_code == 504 and late.status_code == 504
        assert late.json()["error"]["type"] == "timeout"
        assert httpx.post(app.url + GENERATIONS, json={"prompt": "then"}, timeout=5).status_code == 200
        assert [g.prompt for batch in runner.batches for g in batch] == ["held", "then"]


def test_shutdown_finishes_accepted_requests() -> None:
    runner = StubRunner()
    with running_app(runner, queue_size=4) as app:
        runner.gate.clear()

        async def stop_while_busy() -> list[httpx.Response]:
            task = asyncio.ensure_future(_post_many(app.url, [{"prompt": f"p{i}"} for i in range(3)]))
            await asyncio.to_thread(_wait, lambda: app.state.worker.depth == 2)
            app.server.should_exit = True  # what SIGTERM does
            await asyncio.to_thread(_wait, lambda: all(not s.is_serving() for s in app.server.servers))
            runner.gate.set()
            return await task

        answers = asyncio.run(stop_while_busy())
        assert [a.status_code for a in answers] == [200, 200, 200]
        _wait(lambda: not app.server.started or app.server.should_exit)


def test_gpu_memory_is_a_gauge_when_the_runner_has_cuda_memory() -> None:
    runner = StubRunner()
    runner.gpu_memory = lambda: (3 * 2**20, 8 * 2**20)  # what PipelineRunner reads from torch.cuda on a GPU
    with running_app(runner) as app:
        samples = _samples(app.url)
        assert samples[("profkit_serve_gpu_memory_bytes", (("kind", "allocated"),))] == 3 * 2**20
        assert samples[("profkit_serve_gpu_memory_bytes", (("kind", "reserved"),))] == 8 * 2**20
