"""Job semantics beyond Heimdall, as tables on the pure core: failure rules, attemptTimeout,
onIndexFailure / maxFailedIndexes, successPolicy (docs/reference.md, "Job semantics")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from test_decide import JOB, T0, condition, context, launched, relaunch, running, stopped

from ecsjob_operator.api.models import EcsJobStatus, FailureRule, SuccessPolicy
from ecsjob_operator.core.decide import ContainerResult, Observation, decide, failure_action
from ecsjob_operator.core.indexes import format_indexes, parse_indexes


def rule(action: str, **match: Any) -> FailureRule:
    return FailureRule.model_validate({"action": action, **match})


def exited(arn: str, code: int, reason: str | None = None, stop_code: str = "EssentialContainerExited") -> Observation:
    return Observation(
        arn=arn,
        last_status="STOPPED",
        containers=(ContainerResult("main", code, reason), ContainerResult("sidecar", 0)),
        stop_code=stop_code,
        stopped_reason="Essential container in task exited",
    )


ESSENTIAL = {"main"}


@pytest.mark.parametrize(
    ("rules", "obs", "action"),
    [
        ([], exited("a", 1), "Count"),
        ([], stopped("a", code=None, stop_code="SpotInterruption"), "Ignore"),  # the built-in rule
        ([rule("Count", onStopCodes=["SpotInterruption"])], stopped("a", None, "SpotInterruption"), "Count"),
        ([rule("FailJob", onExitCodes={"operator": "In", "values": [42]})], exited("a", 42), "FailJob"),
        ([rule("FailJob", onExitCodes={"operator": "In", "values": [42]})], exited("a", 1), "Count"),
        ([rule("Ignore", onExitCodes={"operator": "NotIn", "values": [1, 2]})], exited("a", 3), "Ignore"),
        ([rule("Ignore", onExitCodes={"operator": "NotIn", "values": [1, 2]})], exited("a", 2), "Count"),
        ([rule("Ignore", onExitCodes={"containerName": "sidecar", "operator": "In", "values": [0]})],
         exited("a", 1), "Ignore"),  # the named container, not the essential one
        ([rule("Ignore", onReasons=["CannotPullContainerError*"])],
         exited("a", 1, reason="CannotPullContainerError: pull access denied"), "Ignore"),
        ([rule("Ignore", onReasons=["ResourceInitializationError*"])], exited("a", 1, reason="OutOfMemory"), "Count"),
        # every matcher of a rule must match; the first matching rule wins
        ([rule("FailJob", onStopCodes=["TaskFailedToStart"], onExitCodes={"operator": "In", "values": [1]})],
         exited("a", 1), "Count"),
        ([rule("Count", onExitCodes={"operator": "In", "values": [1]}), rule("FailJob", onExitCodes={"operator": "In", "values": [1]})],
         exited("a", 1), "Count"),
    ],
)  # fmt: skip
def test_failure_action(rules: list[FailureRule], obs: Observation, action: str) -> None:
    assert failure_action(rules, obs, ESSENTIAL)[0] == action


def test_fail_job_rule_stops_everything_at_once() -> None:
    ctx = context(count=2, max_fail=5).model_copy(
        update={"failure_rules": [rule("FailJob", onExitCodes={"operator": "In", "values": [42]})]}
    )
    st = launched(ctx)
    d = decide(JOB, st, {"arn-0-1": exited("arn-0-1", 42), "arn-1-1": running("arn-1-1")}, T0)
    assert d.status.phase == "Failed" and condition(d.status, "Failed") == ("True", "FailedByRule")
    assert [s.arn for s in d.stops] == ["arn-1-1"] and d.launches == []


def test_an_ignore_rule_relaunches_uncounted_up_to_max_ignored_relaunches() -> None:
    ctx = context(count=1, max_fail=0).model_copy(
        update={"failure_rules": [rule("Ignore", onExitCodes={"operator": "In", "values": [75]})],
                "max_ignored_relaunches": 2}
    )  # fmt: skip
    st = launched(ctx)
    for attempt in (1, 2):
        d = decide(JOB, st, {f"arn-0-{attempt}": exited(f"arn-0-{attempt}", 75)}, T0)
        assert d.status.phase != "Failed" and [e.reason for e in d.events] == ["IgnoredFailure"]
        assert condition(d.status, "Progressing") == ("True", "IgnoredFailure")
        relaunch(d.status, d.launches)
        st = d.status
    d = decide(JOB, st, {"arn-0-3": exited("arn-0-3", 75)}, T0)
    assert d.status.phase == "Failed" and condition(d.status, "Failed") == ("True", "MaxFailCountExceeded")


def test_attempt_timeout_stops_the_attempt_and_counts_it() -> None:
    ctx = context(count=1, max_fail=1).model_copy(update={"attempt_timeout": "10m"})
    st = launched(ctx)
    d = decide(JOB, st, {"arn-0-1": running("arn-0-1")}, T0 + timedelta(minutes=9))
    assert d.stops == [] and d.status.phase == "Running"
    d = decide(JOB, st, {"arn-0-1": running("arn-0-1")}, T0 + timedelta(minutes=10))
    assert [s.arn for s in d.stops] == ["arn-0-1"] and "AttemptTimeout" in d.stops[0].reason
    assert [e.reason for e in d.events][:2] == ["AttemptTimeout", "TaskFailed"]
    assert condition(d.status, "Progressing") == ("True", "AttemptTimeout")  # the decision, on the condition
    assert [launch.attempt for launch in d.launches] == [2]  # a retry remains
    relaunch(d.status, d.launches, T0 + timedelta(minutes=10))
    d = decide(JOB, d.status, {"arn-0-2": running("arn-0-2")}, T0 + timedelta(minutes=20))
    assert d.status.phase == "Failed" and condition(d.status, "Failed") == ("True", "MaxFailCountExceeded")


def test_continue_lets_other_indexes_run_and_fails_with_the_failed_indexes() -> None:
    ctx = context(count=3, max_fail=0).model_copy(update={"on_index_failure": "Continue"})
    st = launched(ctx)
    d = decide(
        JOB, st, {"arn-0-1": exited("arn-0-1", 1), "arn-1-1": running("arn-1-1"), "arn-2-1": running("arn-2-1")}, T0
    )
    assert d.status.phase == "Running" and d.stops == [] and d.status.failed_indexes == "0"
    d = decide(JOB, d.status, {"arn-1-1": stopped("arn-1-1"), "arn-2-1": exited("arn-2-1", 2)}, T0)
    assert d.status.phase == "Failed" and condition(d.status, "Failed") == ("True", "FailedIndexes")
    assert d.status.failed_indexes == "0,2"


def test_max_failed_indexes_stops_the_rest() -> None:
    ctx = context(count=4, max_fail=0).model_copy(update={"on_index_failure": "Continue", "max_failed_indexes": 1})
    st = launched(ctx)
    d = decide(
        JOB, st, {"arn-0-1": exited("arn-0-1", 1), **{f"arn-{i}-1": running(f"arn-{i}-1") for i in (1, 2, 3)}}, T0
    )
    assert d.status.phase == "Running"
    d = decide(
        JOB,
        d.status,
        {"arn-1-1": exited("arn-1-1", 1), "arn-2-1": running("arn-2-1"), "arn-3-1": running("arn-3-1")},
        T0,
    )
    assert condition(d.status, "Failed") == ("True", "MaxFailedIndexesExceeded")
    assert sorted(s.arn for s in d.stops) == ["arn-2-1", "arn-3-1"]
    assert d.status.failed_indexes == "0-1"  # the stopped ones never count as failed


@pytest.mark.parametrize(
    ("policy", "done", "met"),
    [
        ({"succeededIndexes": "0"}, {0}, True),
        ({"succeededIndexes": "0,2"}, {0}, False),
        ({"succeededCount": 2}, {1, 2}, True),
        ({"succeededCount": 2, "succeededIndexes": "0"}, {1, 2}, False),
    ],
)
def test_success_policy(policy: dict[str, Any], done: set[int], met: bool) -> None:
    ctx = context(count=3, max_fail=1).model_copy(update={"success_policy": SuccessPolicy.model_validate(policy)})
    st = launched(ctx)
    observed = {f"arn-{i}-1": stopped(f"arn-{i}-1") if i in done else running(f"arn-{i}-1") for i in range(3)}
    d = decide(JOB, st, observed, T0)
    if met:
        assert d.status.phase == "Succeeded" and condition(d.status, "Complete") == ("True", "SuccessPolicyMet")
        assert sorted(s.index for s in d.stops) == sorted(set(range(3)) - done)  # the rest stopped, not failed
        assert all(t.phase in ("Succeeded", "Stopped") for t in d.status.tasks or [])
    else:
        assert d.status.phase == "Running" and d.stops == []


def test_index_lists_round_trip() -> None:
    assert parse_indexes("0,2-4") == {0, 2, 3, 4}
    assert format_indexes([4, 1, 3, 0]) == "0-1,3-4"
    assert format_indexes({7}) == "7" and format_indexes([]) == ""
    for text in ("0", "1,3-4", "0-999"):
        assert format_indexes(parse_indexes(text)) == text


def test_defaults_keep_heimdall_behaviour() -> None:
    st = launched(context(count=2, max_fail=0))
    d = decide(JOB, st, {"arn-0-1": exited("arn-0-1", 1), "arn-1-1": running("arn-1-1")}, T0)
    assert condition(d.status, "Failed") == ("True", "MaxFailCountExceeded") and [s.arn for s in d.stops] == ["arn-1-1"]
    assert isinstance(d.status, EcsJobStatus) and d.status.failed_indexes == "0"


def test_noted_decisions_name_progressing_only_while_the_job_runs() -> None:
    from ecsjob_operator.core.status import note_decisions

    st = launched(context(count=1, max_fail=1))
    note_decisions(st, [("TaskLaunched", "x"), ("SpotFallback", "task 0 attempt 2 runs on FARGATE")], T0)
    progressing = next(c for c in st.conditions or [] if c.type == "Progressing")
    assert progressing.reason == "SpotFallback" and progressing.message.startswith("task 0 attempt 2 runs on FARGATE; ")
    done = decide(JOB, st, {"arn-0-1": stopped("arn-0-1")}, T0).status
    note_decisions(done, [("IgnoredFailure", "late")], T0)
    assert condition(done, "Progressing") == ("False", "AllTasksSucceeded")  # a finished job keeps its end
