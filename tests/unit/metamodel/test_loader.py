"""Loading and resolving valid projects: modules, links, children, permissions, roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from metamodel import DefinitionError, Location, Model, load
from metamodel.errors import Problems
from metamodel.loader import build_model, read_documents, resolve_permissions
from metamodel.spec import BUILTIN_ROLES, DEFAULT_PERMISSIONS, Labels

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "defs"
REPO = Path(__file__).resolve().parents[3]
ALL = frozenset({"read", "create", "update", "delete", "export"})


@pytest.fixture(scope="module")
def full() -> Model:
    return load(FIXTURES / "valid" / "full")


def test_repository_modules_are_valid() -> None:
    model = load(REPO)
    assert "showcase.asset" in model.entities
    assert model.entity("showcase.asset").parent is None
    assert model.entity("showcase.asset_reading").parent == ("showcase.asset", "readings")


def test_minimal_project() -> None:
    model = load(FIXTURES / "valid" / "minimal")
    thing = model.entity("minimal.thing")
    assert (thing.table, thing.qualname) == ("minimal_thing", "minimal.thing")
    assert thing.labels == Labels(es="Thing", en="Thing")
    assert set(model.roles) == set(BUILTIN_ROLES)


def test_modules_merge_across_files(full: Model) -> None:
    assets = full.modules["assets"]
    assert sorted(assets.entities) == ["field_area", "pad", "well", "well_test"]
    assert assets.labels == Labels(es="Activos", en="Assets")
    assert assets.location == Location("modules/assets/assets.yaml", 1, 9)
    assert full.modules["ops"].labels == Labels(es="Operaciones", en="Operaciones")
    assert sorted(full.modules) == ["assets", "core", "ops"]
    assert full.modules["core"].entities == {}


def test_links_resolve_within_and_across_modules(full: Model) -> None:
    well = full.entity("assets.well")
    assert well.targets == {"pad": "assets.pad", "tests": "assets.well_test"}
    report = full.entity("ops.daily_report")
    assert report.targets == {"well": "assets.well", "supervisor_pad": "assets.pad"}
    assert full.entity("assets.pad").targets == {"field_area": "assets.field_area"}


def test_child_entities_know_their_parent(full: Model) -> None:
    child = full.entity("assets.well_test")
    assert child.parent == ("assets.well", "tests")
    assert child.spec.child
    assert "tests" not in full.entity("assets.well").stored_fields()
    assert "tests" in full.entity("assets.well").fields


def test_locations_point_at_keys(full: Model) -> None:
    well = full.entity("assets.well")
    assert well.location == Location("modules/assets/assets.yaml", 20, 3)
    assert well.field_locations["pad"] == Location("modules/assets/assets.yaml", 28, 7)
    assert well.field_locations["tests"].line == 35
    child = full.entity("assets.well_test")
    assert child.location.file == "modules/assets/well_test.yaml"


def test_anchors_merge_keys_and_extension_keys(full: Model) -> None:
    fields = full.entity("ops.daily_report").fields
    assert (fields["oil_bbl"].type, fields["oil_bbl"].min, fields["oil_bbl"].unit) == (
        "float", 0, None)
    assert (fields["gas_mscf"].type, fields["gas_mscf"].unit) == ("float", "Mscf")
    assert fields["hours_on"].renamed_from == "hours"
    assert full.entity("ops.daily_report").spec.renamed_from == "daily_production"


def test_default_permissions(full: Model) -> None:
    pad = full.entity("assets.pad")  # no permissions block
    assert pad.permissions["admin"] == ALL
    assert pad.permissions["supervisor"] == frozenset(DEFAULT_PERMISSIONS["supervisor"])
    assert pad.permissions["operator"] == frozenset({"read"})
    assert pad.permissions["viewer"] == frozenset({"read"})
    assert pad.permissions["scada"] == frozenset()
    # custom roles inherit the defaults of the roles they extend
    assert pad.permissions["engineer"] == frozenset({"read"})
    assert pad.permissions["lead"] == frozenset({"read"})
    assert pad.permissions["auditor"] == frozenset()


def test_declared_permissions_with_inheritance(full: Model) -> None:
    well = full.entity("assets.well")
    assert well.permissions["admin"] == ALL  # kept although the block does not list admin
    assert well.permissions["supervisor"] == frozenset()  # not listed: no access
    assert well.permissions["operator"] == frozenset({"read", "create"})
    # engineer: its own read/update plus operator's read/create
    assert well.permissions["engineer"] == frozenset({"read", "create", "update"})
    assert well.permissions["lead"] == well.permissions["engineer"]
    assert well.allows({"viewer", "engineer"}, "update")
    assert not well.allows({"viewer"}, "create")
    assert not well.allows(set(), "read")


def test_admin_can_be_restricted_explicitly(project) -> None:  # type: ignore[no-untyped-def]
    root = project({"modules/a.yaml": """
module: a
entities:
  ledger:
    fields: {amount: {type: decimal}}
    permissions:
      admin: [read, create]
      viewer: [read]
"""})
    ledger = load(root).entity("a.ledger")
    assert ledger.permissions["admin"] == frozenset({"read", "create"})
    assert ledger.permissions["operator"] == frozenset()
    assert resolve_permissions(ledger.spec, load(root).roles) == ledger.permissions


def test_roles(full: Model) -> None:
    assert set(full.roles) == set(BUILTIN_ROLES) | {"engineer", "lead", "auditor"}
    assert full.roles["admin"].builtin and full.roles["admin"].location is None
    lead = full.roles["lead"]
    assert (lead.builtin, lead.inherits, lead.labels) == (
        False, ("engineer",), Labels(es="Líder", en="Líder"))
    assert lead.location == Location("modules/core/roles.yaml", 8, 3)
    assert full.role_closure("lead") == frozenset({"lead", "engineer", "operator"})
    assert full.role_closure("nobody") == frozenset()


def test_unknown_entity_is_a_key_error(full: Model) -> None:
    with pytest.raises(KeyError):
        full.entity("assets.nope")


def test_project_without_modules_is_empty(tmp_path: Path) -> None:
    model = load(tmp_path)
    assert (model.modules, model.entities) == ({}, {})
    assert set(model.roles) == set(BUILTIN_ROLES)


def test_build_model_collects_without_raising(project) -> None:  # type: ignore[no-untyped-def]
    root = project({"modules/a.yaml": "module: a\nentities: {x: {fields: {l: {type: link, "
                                      "to: y}, n: {type: string}}}}\n"})
    problems = Problems()
    model = build_model(read_documents(root, "modules", problems), problems, root=str(root))
    assert [p.message for p in problems.items] == ["names unknown entity 'y'"]
    assert model.entity("a.x").targets == {}
    with pytest.raises(DefinitionError) as info:
        problems.raise_if_any()
    assert str(info.value) == info.value.format()


def test_definition_error_sorts_problems_across_files(project) -> None:  # type: ignore[no-untyped-def]
    root = project({
        "modules/b.yaml": "module: b\nentities: {x: {fields: {n: {type: strng}}}}\n",
        "modules/a.yaml": "module: a\nentities:\n  x: {fields: {n: {type: int, default: z}}}\n"
                          "  y: {fields: {n: {type: nope}}}\n",
    })
    with pytest.raises(DefinitionError) as info:
        load(root)
    locations = [str(p.location) for p in info.value.problems]
    assert locations == ["modules/a.yaml:3:40", "modules/a.yaml:4:26", "modules/b.yaml:2:35"]
    assert info.value.summary() == "3 problems in 2 files"


def test_yml_and_yaml_files_are_read_in_sorted_order(project) -> None:  # type: ignore[no-untyped-def]
    root = project({
        "modules/z/b.yml": "module: z\nentities: {b: {fields: {n: {type: int}}}}\n",
        "modules/z/a.yaml": "module: z\nlabel: Zeta\nentities: {a: {fields: {n: {type: int}}}}\n",
        "modules/z/notes.txt": "not yaml: [",
    })
    model = load(root)
    assert list(model.modules["z"].entities) == ["a", "b"]
    assert model.modules["z"].labels.es == "Zeta"


def test_full_fixture_compiles_to_tables(full: Model, tmp_path: Path) -> None:
    """The resolved model is what engine.db needs: every table builds and creates."""
    from engine.db.tables import build_metadata, create_engine_for

    md = build_metadata(full)
    assert sorted(md.tables) == ["assets_field_area", "assets_pad", "assets_well",
                                 "assets_well_test", "ops_daily_report"]
    engine = create_engine_for(f"sqlite:///{tmp_path / 'x.db'}")
    md.create_all(engine)
    engine.dispose()
