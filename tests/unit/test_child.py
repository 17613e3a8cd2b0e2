"""Work in a child process: its result comes back, its progress reaches the parent's gauges,
and a child that raises, dies or outlives the service is a failure the caller sees."""

from __future__ import annotations

import os
import threading
import time

import pytest

from sidecar.app.child import ChildFailed, run_in_child


class Gauges:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def training_phase(self, phase: str) -> None:
        self.calls.append(("phase", phase))

    def training_read(self, events: int) -> None:
        self.calls.append(("read", events))

    def training_epoch(self, model: str, epoch: int, seconds: float) -> None:
        self.calls.append(("epoch", model, epoch, seconds))


def trains(models: list[str], gauges) -> dict[str, object]:
    gauges.training_phase("reading")
    gauges.training_read(1_234)
    gauges.training_phase("training")
    for epoch, model in enumerate(models, start=1):
        gauges.training_epoch(model, epoch, 0.5)
    return {"pid": os.getpid(), "niceness": os.nice(0), "models": models}


def raises(gauges) -> None:
    gauges.training_phase("reading")
    raise ValueError("no events to train on")


def dies(gauges) -> None:
    os._exit(3)


def sleeps(gauges) -> None:
    time.sleep(60)


def test_the_result_and_the_progress_come_back_from_a_nicer_process() -> None:
    gauges = Gauges()
    result = run_in_child(trains, (["deeplog", "sessions"],), gauges, threading.Event())
    assert result["models"] == ["deeplog", "sessions"]
    assert result["pid"] != os.getpid()
    assert result["niceness"] == min(19, os.nice(0) + 10)
    assert gauges.calls == [
        ("phase", "reading"),
        ("read", 1_234),
        ("phase", "training"),
        ("epoch", "deeplog", 1, 0.5),
        ("epoch", "sessions", 2, 0.5),
    ]


def test_an_exception_in_the_child_is_a_failure_with_its_kind_and_message() -> None:
    gauges = Gauges()
    with pytest.raises(ChildFailed, match="ValueError: no events to train on") as failed:
        run_in_child(raises, (), gauges, threading.Event())
    assert failed.value.kind == "ValueError"
    assert gauges.calls == [("phase", "reading")]


def test_a_child_that_dies_without_a_result_is_a_failure() -> None:
    with pytest.raises(ChildFailed, match="exited with code 3 and no result") as failed:
        run_in_child(dies, (), None, threading.Event())
    assert failed.value.kind == "Died"


def test_the_stop_event_terminates_the_child() -> None:
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    started = time.monotonic()
    with pytest.raises(ChildFailed, match="stopping") as failed:
        run_in_child(sleeps, (), None, stop)
    assert failed.value.kind == "Stopped"
    assert time.monotonic() - started < 30
