"""The paper configs (`recipes/configs/<recipe>_paper.json`) against their table in
docs/decisions.md ("Paper settings on real data"), and two steps of each on a fake data root
in the real datasets' layouts at the paper's image size."""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from pathlib import Path

import pytest

from dgblocks.engine import NonFiniteLoss, SharedArgs, parse_config
from tests.recipes._paper_tree import paper_tree

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ("baseline", "dir_reid", "ddan", "cdvm", "episodic", "adin")
SECTION = "## Paper settings on real data (recipes/configs)"
ABSENT = "—"  # "config's value" of a row whose key is not in the file


def config_path(recipe: str) -> Path:
    return ROOT / "recipes" / "configs" / f"{recipe}_paper.json"


def paper_tables() -> tuple[dict[str, dict[str, object]], dict[str, set[str]]]:
    """({recipe: {field: value or ABSENT}}, {recipe: italic fields}) from the section's
    tables: a field in backticks is a flag, one in italics has none. The value is the JSON in
    the first backticks of the "config's value" column."""
    text = (ROOT / "docs" / "decisions.md").read_text(encoding="utf-8")
    start = text.index(SECTION) + len(SECTION)
    end = text.find("\n## ", start)
    tables: dict[str, dict[str, object]] = {}
    italic: dict[str, set[str]] = {}
    recipe = None
    for line in text[start:end if end >= 0 else None].splitlines():
        if line.startswith("### "):
            recipe = line[4:].strip().strip("`")
            tables[recipe], italic[recipe] = {}, set()
        elif line.startswith("| ") and recipe and not line.startswith(("| field", "| ---")):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            assert len(cells) == 5, f"{recipe}: a row needs 5 cells: {line!r}"
            name = re.fullmatch(r"`(\w+)`|\*(\w+)\*", cells[0])
            assert name, f"{recipe}: field cell {cells[0]!r}"
            field = name.group(1) or name.group(2)
            assert field not in tables[recipe], f"{recipe}: {field} twice"
            if cells[3] == ABSENT:
                tables[recipe][field] = ABSENT
            else:
                value = re.match(r"`([^`]+)`", cells[3])
                assert value, f"{recipe}.{field}: config's value {cells[3]!r}"
                tables[recipe][field] = json.loads(value.group(1))
            if name.group(2):  # no such flag: the paper's value cannot be set
                assert cells[3] == ABSENT, f"{recipe}.{field}: no flag, so no value"
                italic[recipe].add(field)
    return tables, italic


TABLES, NO_FLAG = paper_tables()


def test_every_recipe_has_a_table_and_a_config():
    assert set(TABLES) == set(RECIPES)
    assert sorted(p.name for p in (ROOT / "recipes" / "configs").glob("*_paper.json")) == \
        sorted(f"{r}_paper.json" for r in RECIPES)


@pytest.mark.parametrize("recipe", RECIPES)
def test_config_matches_its_table(recipe):
    """(a) Every key of the file is a row and has the row's value; "—" rows are not set."""
    config = json.loads(config_path(recipe).read_text())
    table = TABLES[recipe]
    assert set(config) - set(table) == set(), f"{recipe}: keys without a row"
    for field, value in table.items():
        if value == ABSENT:
            assert field not in config, f"{recipe}.{field}: the table says it is not set"
        else:
            assert field in config, f"{recipe}.{field}: in the table, not in the file"
            assert config[field] == value, f"{recipe}.{field}: {config[field]!r} != {value!r}"
    assert config["data"] == "real" and config["image_size"] == [256, 128]
    assert config.get("steps", -1) != -1 or config.get("epochs", 0) > 0


@pytest.mark.parametrize("recipe", RECIPES)
def test_config_resolves_to_the_table(recipe):
    """(b) `--config` accepts the file and every field resolves to the table's value."""
    module = importlib.import_module(f"recipes.{recipe}")
    cfg, shared = parse_config(module.Config, ["--config", str(config_path(recipe))])
    fields = {f.name for f in dataclasses.fields(module.Config)}
    shared_fields = {f.name for f in dataclasses.fields(SharedArgs)}
    for field, value in TABLES[recipe].items():
        flag = field in fields | shared_fields
        assert flag != (field in NO_FLAG[recipe]), \
            f"{recipe}.{field}: {'a flag' if flag else 'no flag'}, so {'no ' * flag}italics"
        if value == ABSENT:
            continue
        got = getattr(cfg if field in fields else shared, field)
        want = tuple(value) if isinstance(value, list) else value
        assert got == want, f"{recipe}.{field}: resolved {got!r}, table {want!r}"


# Two steps on a small fake root (CPU budget): batch 8 of 2 per identity (DIR-ReID 16: K = 10
# domain factors need a larger batch), one step of each earlier stage, ADIN's validation on 4
# held-out identities; backbone, image size, optimiser and losses stay the paper's.
SMALL = ["--batch-size", "8", "--num-instances", "2"]
FLAGS = {"baseline": SMALL, "dir_reid": ["--batch-size", "16"],
         "ddan": [*SMALL, "--stage1-steps", "1"], "cdvm": SMALL,
         "episodic": [*SMALL, "--stage1-steps", "1"],
         "adin": [*SMALL, "--warmup-steps", "1", "--nuisance-steps", "1", "--val-ids", "4"]}
SLOW = {"ddan", "cdvm", "episodic", "adin"}  # measured 15-55 s each; baseline, DIR-ReID < 10 s
# CDVM's unweighted center loss (eq 12: lambda_cent 1 on 1/2 ||f - c||^2 of the 2,048-d
# feature) diverges: NaN at step 1 (docs/decisions.md, the cdvm table); with Luo et al.'s
# weight 5e-4 the same config runs.
CASES = [pytest.param(r, [], marks=[pytest.mark.slow] * (r in SLOW), id=r)
         for r in RECIPES if r != "cdvm"] + [
    pytest.param("cdvm", [], marks=[pytest.mark.slow, pytest.mark.xfail(
        raises=NonFiniteLoss, strict=True, reason="lambda_cent 1 diverges (decisions.md)")],
        id="cdvm"),
    pytest.param("cdvm", ["--lambda-cent", "0.0005"], marks=pytest.mark.slow, id="cdvm-bot")]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return paper_tree(tmp_path_factory.mktemp("paper_root"), ids=8, msmt_ids=12, small=10)


@pytest.mark.parametrize("recipe, extra", CASES)
def test_two_steps_on_a_fake_root_at_the_paper_size(recipe, extra, data_root, tmp_path):
    """(c) The file runs through the loaders of its protocol at 256 x 128."""
    module = importlib.import_module(f"recipes.{recipe}")
    config = json.loads(config_path(recipe).read_text())
    res = module.main(["--config", str(config_path(recipe)), "--data-root", str(data_root),
                       "--steps", "2", "--no-plots", "--threads", "1", "--eval-batch-size",
                       "256", "--out", str(tmp_path / "r.json"), *FLAGS[recipe], *extra])
    assert res["benchmark"] == config["protocol"] and res["image_size"] == [256, 128]
    assert res["config"]["backbone"] == config["backbone"]
    for metrics in res["metrics"].values():
        assert 0 <= metrics["R1"] <= 100 and 0 <= metrics["mAP"] <= 100
