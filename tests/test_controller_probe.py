"""`job.ControllerProbe`: a controller that does not answer is told apart from a client that is
behind and from a controller that is busy but alive (recorded client, fake clock)."""

from __future__ import annotations

from concurrent.futures import Future

from ippmon.job import ControllerProbe


class FakeClient:
    """The client's IO loop runs posted callbacks only when `run_io()` says so; questions to the
    controller are futures the test resolves."""

    ids = [0, 1]
    _query_stream = object()

    def __init__(self) -> None:
        self.callbacks: list = []
        self.asked: list[Future] = []
        self._io_loop = self

    def add_callback(self, fn) -> None:  # noqa: ANN001
        self.callbacks.append(fn)

    def run_io(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        for fn in callbacks:
            fn()

    def _send(self, _stream: object, _msg_type: str, content: dict) -> Future:
        future: Future = Future()
        self.asked.append(future)
        return future


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def probe_with(heard_at: list[float]) -> tuple[ControllerProbe, FakeClient, Clock]:
    client, clock = FakeClient(), Clock()
    probe = ControllerProbe(client, every=2, timeout=10, clock=clock, heard=lambda: heard_at[0])
    return probe, client, clock


def advance(probe: ControllerProbe, client: FakeClient, clock: Clock, seconds: int, io: bool):
    for _ in range(seconds * 4):
        clock.t += 0.25
        probe.check()
        if io:
            client.run_io()


def test_a_silent_controller_is_unreachable_after_the_timeout() -> None:
    probe, client, clock = probe_with([float("-inf")])
    advance(probe, client, clock, 3, io=True)  # asked at 2 s
    assert len(client.asked) == 1 and probe.check()
    advance(probe, client, clock, 8, io=True)
    assert probe.check(), "called unreachable before the timeout"
    advance(probe, client, clock, 2, io=True)
    assert not probe.check() and probe.unreachable_since is not None
    client.asked[0].set_result(None)  # it answers after all
    assert probe.check() and probe.unreachable_since is None


def test_a_client_that_is_behind_is_not_taken_for_a_dead_controller() -> None:
    probe, client, clock = probe_with([float("-inf")])
    advance(probe, client, clock, 3, io=True)
    advance(probe, client, clock, 30, io=False)  # the IO thread gets no CPU for 30 s
    assert probe.check() and probe.lag_s >= 29
    client.run_io()
    assert probe.lag_s == 0
    client.asked[0].set_result(None)  # the answer was waiting in its socket
    advance(probe, client, clock, 1, io=True)
    assert probe.check()


def test_a_controller_slow_to_answer_while_results_stream_in_is_not_unreachable() -> None:
    heard_at = [float("-inf")]
    probe, client, clock = probe_with(heard_at)
    advance(probe, client, clock, 3, io=True)
    for _ in range(20):  # its task records lag, but replies and output keep coming
        heard_at[0] = clock.t
        advance(probe, client, clock, 1, io=True)
    assert probe.check()
    advance(probe, client, clock, 12, io=True)  # then silence on every channel
    assert not probe.check()
