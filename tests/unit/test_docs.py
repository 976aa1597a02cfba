"""The reference's field tables are generated from the models; the README's first lines are the two
commands; nothing in the repository points at files outside it."""

from pathlib import Path

from ecsjob_operator.api.docgen import BEGIN, END, render_fields
from ecsjob_operator.api.models import ClusterContext, CommandContext, EcsJobSpec

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
REFERENCE = (ROOT / "docs" / "reference.md").read_text()


def test_field_tables_are_current() -> None:
    block = REFERENCE[REFERENCE.index(BEGIN) : REFERENCE.index(END) + len(END)]
    assert block == render_fields(), "docs/reference.md field tables are stale: run `make docs`"


def test_every_field_is_documented() -> None:
    for model in (EcsJobSpec, CommandContext, ClusterContext):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
            assert f"| `{info.alias or name}` |" in REFERENCE


def test_readme_starts_with_the_two_commands() -> None:
    lines = README.splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block[0].startswith("make run") and block[1].startswith("make test")


def test_nothing_links_outside_the_repository() -> None:
    """Users never have the contract's working copy: the repository's own reference is the one to cite."""
    outside = ("API" + ".md", "../" + "shared")  # spelled apart so that this file does not match itself
    kinds = (".py", ".md", ".yaml", ".json", ".toml", ".lua")
    skip = (".git", ".venv", "ecsjob_operator.egg-info", "__pycache__")
    files = [p for p in ROOT.rglob("*") if p.suffix in kinds and not set(p.parts) & set(skip) and p.is_file()]
    offenders = [str(p.relative_to(ROOT)) for p in files if any(o in p.read_text(errors="replace") for o in outside)]
    assert not offenders, f"these point outside the repository: {offenders}"


def test_test_modules_have_unique_names() -> None:
    """pytest imports test modules by basename (no packages here): two of a name break collection."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
