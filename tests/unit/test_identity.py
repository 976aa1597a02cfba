import hashlib

import pytest

from ecsjob_operator.core.ecs_limits import STARTED_BY_MAX
from ecsjob_operator.core.identity import (
    DEFAULT_PREFIX,
    RESERVED_ENV,
    RESERVED_TAG_PREFIX,
    TASK_TAG_KEYS,
    PrefixError,
    check_prefix,
    client_token,
    job_id,
    task_env,
    task_name,
    task_tags,
)

UID = "3b8f2c1e-5d6a-4e7b-9c0d-1a2b3c4d5e6f"


def test_job_id_is_the_first_12_hex_of_the_uid_sha256() -> None:
    assert job_id(UID) == hashlib.sha256(UID.encode()).hexdigest()[:12]
    assert len(job_id(UID)) == 12 and job_id(UID) == job_id(UID)


def test_task_name_format() -> None:
    assert task_name(DEFAULT_PREFIX, "3f2a9c1b7d4e", 0) == "heimdall-job-3f2a9c1b7d4e-0"


def test_longest_default_task_name_fits_started_by() -> None:
    longest = task_name(DEFAULT_PREFIX, job_id(UID), 999)
    assert len(longest) <= STARTED_BY_MAX


@pytest.mark.parametrize("prefix", ["heimdall-job", "a", "x" * 19, "team_a/jobs"])
def test_prefixes_that_fit_are_accepted(prefix: str) -> None:
    assert check_prefix(prefix) == prefix
    assert len(task_name(prefix, "f" * 12, 999)) <= STARTED_BY_MAX


@pytest.mark.parametrize(
    ("prefix", "why"), [("x" * 20, "exceed"), ("my job", "letters"), ("", "letters"), ("a.b", "letters")]
)
def test_prefixes_that_could_overflow_or_are_not_allowed_are_rejected(prefix: str, why: str) -> None:
    with pytest.raises(PrefixError, match=why):
        check_prefix(prefix)


def test_client_token_is_deterministic_unique_and_short() -> None:
    tokens = {client_token(UID, i, a) for i in range(50) for a in range(1, 5)}
    assert len(tokens) == 200
    assert client_token(UID, 3, 2) == client_token(UID, 3, 2)
    assert all(len(t) <= 64 for t in tokens)
    assert client_token(UID, 0, 1) != client_token("other-uid", 0, 1)


def test_reserved_tags() -> None:
    assert task_tags("data", "run", UID, 2, 3) == {
        "ecsjob.io/namespace": "data",
        "ecsjob.io/name": "run",
        "ecsjob.io/uid": UID,
        "ecsjob.io/index": "2",
        "ecsjob.io/attempt": "3",
    }


def test_reserved_tag_keys_are_the_task_tags() -> None:
    tags = task_tags("ns", "name", "uid", 3, 2)
    assert tuple(tags) == TASK_TAG_KEYS
    assert all(key.startswith(RESERVED_TAG_PREFIX) for key in tags)


def test_task_env_sets_the_reserved_variables() -> None:
    assert task_env("heimdall-job-abc-3", 3, 2) == {
        "TASK_NAME": "heimdall-job-abc-3", "TASK_NUM": "3", "TASK_ATTEMPT": "2",
    }  # fmt: skip
    assert tuple(task_env("x", 0, 1)) == RESERVED_ENV


def test_shards_split_jobs_by_uid_and_pods_map_to_shards() -> None:
    from ecsjob_operator.core.identity import Shard

    uids = [f"uid-{i}" for i in range(400)]
    shards = [Shard(2, 0), Shard(2, 1)]
    owners = [[s.serves(u) for s in shards] for u in uids]
    assert all(sum(o) == 1 for o in owners)  # every job has exactly one shard
    assert 150 < sum(o[0] for o in owners) < 250  # and the split is even enough
    assert all(Shard().serves(u) for u in uids)
    assert Shard.from_pod_name("ecsjob-operator-0", 2, 2) == (Shard(2, 0), 100)
    assert Shard.from_pod_name("ecsjob-operator-1", 2, 2) == (Shard(2, 0), 99)  # the standby of shard 0
    assert Shard.from_pod_name("ecsjob-operator-3", 2, 2) == (Shard(2, 1), 99)


def test_the_operator_derives_shard_priority_and_peering(monkeypatch: pytest.MonkeyPatch) -> None:
    from ecsjob_operator.cli.commands import parser, sharding
    from ecsjob_operator.core.identity import Shard

    monkeypatch.setenv("POD_NAME", "ecsjob-operator-2")
    args = parser().parse_args(["operator", "--shards", "2", "--shard-from-pod-name"])
    assert sharding(args) == (Shard(2, 1), 100, "ecsjob-shard-1")
    args = parser().parse_args(["operator", "--standalone", "--shards", "3", "--shard-index", "2"])
    assert sharding(args) == (Shard(3, 2), None, None)
    with pytest.raises(PrefixError):
        sharding(parser().parse_args(["operator", "--shards", "2", "--shard-index", "2"]))
