"""The README's field tables are generated from the models; its first lines are the two commands."""

from pathlib import Path

from ecsjob_operator.api.docgen import BEGIN, END, render_fields
from ecsjob_operator.api.models import ClusterContext, CommandContext, EcsJobSpec

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_field_tables_are_current() -> None:
    block = README[README.index(BEGIN) : README.index(END) + len(END)]
    assert block == render_fields(), "README field tables are stale: run `make docs`"


def test_every_field_is_documented() -> None:
    for model in (EcsJobSpec, CommandContext, ClusterContext):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
            assert f"| `{info.alias or name}` |" in README


def test_readme_starts_with_the_two_commands() -> None:
    lines = README.splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block[0].startswith("make run") and block[1].startswith("make test")
