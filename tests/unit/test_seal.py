"""core.seal: what the seal covers, and which launch fields a forged status changed."""

from __future__ import annotations

from ecsjob_operator.api.models import EcsJobStatus, MergedCluster, MergedContainer, MergedContext
from ecsjob_operator.core.seal import is_sealed, launch_fields_differ, seal_of

KEY = b"x" * 32


def status() -> EcsJobStatus:
    context = MergedContext(
        task_definition_source="inline", family="f", task_count=1, cpu=256, memory=512, polling_interval="1s",
        timeout="1h", max_fail_count=1, tags={"team": "a"}, containers=[MergedContainer(name="main")],
        cluster=MergedCluster(cluster_name="c", region="us-east-1", execution_role_arn="arn:role/exec"),
    )  # fmt: skip
    st = EcsJobStatus(context=context, task_definition_arn="arn:td/f:1")
    st.seal = seal_of(KEY, "uid", st)
    return st


def test_no_seal_without_a_context() -> None:
    assert seal_of(KEY, "uid", EcsJobStatus()) is None
    assert not is_sealed(KEY, "uid", EcsJobStatus())


def test_the_seal_covers_uid_context_and_task_definition() -> None:
    st = status()
    assert is_sealed(KEY, "uid", st)
    assert not is_sealed(KEY, "other", st)
    assert not is_sealed(b"y" * 32, "uid", st)
    for change in (
        {"task_definition_arn": "arn:td/f:2"},
        {"context": st.context.model_copy(update={"polling_interval": "2s"})},  # type: ignore[union-attr]
        {"seal": st.seal[:-1] + "0" if st.seal and not st.seal.endswith("0") else "v1:00"},
    ):
        assert not is_sealed(KEY, "uid", st.model_copy(update=change)), change


def test_launch_fields_differ_names_each_forged_field() -> None:
    st = status()
    trusted = st.context
    assert trusted is not None
    assert launch_fields_differ(trusted, "arn:td/f:1", st) == []
    forged = st.model_copy(deep=True)
    assert forged.context is not None
    forged.context.cluster.task_role_arn = "arn:role/admin"
    forged.context.tags["team"] = "b"
    forged.task_definition_arn = "arn:td/victim:1"
    assert launch_fields_differ(trusted, "arn:td/f:1", forged) == [
        "status.context.cluster", "status.context.tags", "status.taskDefinitionArn",
    ]  # fmt: skip
    assert launch_fields_differ(trusted, "arn:td/f:1", EcsJobStatus()) == ["status.context"]
    # fields a launch does not read may differ (a restart after an ignored edit): not a forgery
    edited = st.model_copy(update={"context": trusted.model_copy(update={"timeout": "2h"})})
    assert launch_fields_differ(trusted, "arn:td/f:1", edited) == []
