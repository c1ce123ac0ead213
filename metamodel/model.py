"""The YAML language of entities, fields and roles, as pydantic models.

Import time builds the classes; nothing is read from disk here. :mod:`metamodel.loader`
validates each YAML document against :class:`ModuleFile` and then resolves the documents
into one immutable :class:`Model`. Every class is ``frozen`` and ``extra="forbid"`` so a
typo such as ``requird:`` is an error, never silently ignored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .errors import Location

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
NAME_HINT = ("names are snake_case: a lowercase letter, then lowercase letters, digits or '_', "
             "at most 63 characters")
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=63)]
#: An enum value: a short code stored in the database (``producing``, ``ESP``, ``14x14``).
ENUM_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
EnumValue = Annotated[str, StringConstraints(pattern=ENUM_CODE_PATTERN, max_length=64)]
#: A reference to an entity: ``entity`` (same module) or ``module.entity``.
ENTITY_REF_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$"
EntityRef = Annotated[str, StringConstraints(pattern=ENTITY_REF_PATTERN)]

ACTIONS: tuple[str, ...] = ("read", "create", "update", "delete")
Action = Literal["read", "create", "update", "delete"]
BUILTIN_ROLES: tuple[str, ...] = ("admin", "supervisor", "operator", "viewer", "scada")
#: Permissions an entity gets when its YAML has no ``permissions:`` block.
DEFAULT_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "admin": ACTIONS,
    "supervisor": ("read", "create", "update"),
    "operator": ("read",),
    "viewer": ("read",),
}
#: Columns every generated table has (like Frappe's ``default_fields``).
SYSTEM_COLUMNS: tuple[str, ...] = (
    "id", "created_at", "created_by", "updated_at", "updated_by", "version",
)
#: Extra columns of a child-table row.
CHILD_COLUMNS: tuple[str, ...] = ("parent_id", "idx")


class Spec(BaseModel):
    """Base of every YAML node: immutable, strict types, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Labels(Spec):
    """A text in Spanish and English; give at least one (the other falls back to it)."""

    es: str | None = Field(None, description="Spanish text.", examples=["Pozo"])
    en: str | None = Field(None, description="English text.", examples=["Well"])

    @model_validator(mode="after")
    def _one_language(self) -> Labels:
        if not (self.es or self.en):
            raise ValueError("a label needs a text in 'es' or 'en' (or both)")
        return self

    def get(self, lang: str) -> str:
        """The text in ``lang`` (``es`` or ``en``), falling back to the other language."""
        return (self.es or self.en or "") if lang == "es" else (self.en or self.es or "")


LabelText = Labels | Annotated[str, StringConstraints(min_length=1)]
_LABEL = "Text shown to people: {es: ..., en: ...}, or one string for both languages."


def labels_of(value: LabelText | None, fallback: str) -> Labels:
    """Normalise a ``label:`` value; a plain string is used for both languages."""
    if value is None:
        text = fallback.replace("_", " ").capitalize()
        return Labels(es=text, en=text)
    if isinstance(value, str):
        return Labels(es=value, en=value)
    return value


class FieldBase(Spec):
    """Options every field type accepts."""

    label: LabelText | None = Field(None, description=_LABEL + " Default: the field name.",
                                    examples=[{"es": "Nombre", "en": "Name"}])
    help: LabelText | None = Field(None, description="Help text shown under the form input.",
                                   examples=[{"es": "Código ISO", "en": "ISO code"}])
    required: bool = Field(False, description="A value must be given (NOT NULL).")
    unique: bool = Field(False, description="No two records may have the same value.")
    index: bool = Field(False, description="Add a database index to speed up filters.")
    default: Any = Field(None, description="Value used when none is given; must suit the type "
                         "('today' for a date, 'now' for a datetime).")
    unit: str | None = Field(None, description="Unit shown next to the value.",
                             examples=["bbl/d", "psi", "m"])
    renamed_from: Name | None = Field(
        None, description="Previous name of this field: the migration renames the column "
        "and keeps its data instead of dropping it.")


Number = int | float


class StringField(FieldBase):
    """Short text; stored as VARCHAR(max_length)."""

    type: Literal["string"] = Field(description="Field type.")
    max_length: Annotated[int, Field(ge=1, le=10_000)] = Field(
        255, description="Longest value, in characters (1 to 10000).")
    min_length: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Shortest value, in characters.")
    pattern: str | None = Field(
        None, description="Regular expression (Python syntax) the whole value must match.",
        examples=["^[A-Z]{2}$"])


class TextField(FieldBase):
    """Long text without a length limit."""

    type: Literal["text"] = Field(description="Field type.")


class IntField(FieldBase):
    """A 64-bit integer."""

    type: Literal["int"] = Field(description="Field type.")
    min: int | None = Field(None, description="Smallest allowed value.")
    max: int | None = Field(None, description="Largest allowed value.")


class DecimalField(FieldBase):
    """An exact decimal number (money, volumes); stored as NUMERIC(precision, scale)."""

    type: Literal["decimal"] = Field(description="Field type.")
    precision: Annotated[int, Field(ge=1, le=38)] = Field(
        18, description="Total number of digits (1 to 38).")
    scale: Annotated[int, Field(ge=0, le=38)] = Field(
        4, description="Digits after the decimal point (at most precision).")
    min: Number | None = Field(None, description="Smallest allowed value.")
    max: Number | None = Field(None, description="Largest allowed value.")


class FloatField(FieldBase):
    """A double-precision measurement."""

    type: Literal["float"] = Field(description="Field type.")
    min: Number | None = Field(None, description="Smallest allowed value.")
    max: Number | None = Field(None, description="Largest allowed value.")


class BoolField(FieldBase):
    """True or false."""

    type: Literal["bool"] = Field(description="Field type.")


class DateField(FieldBase):
    """A calendar date (YYYY-MM-DD)."""

    type: Literal["date"] = Field(description="Field type.")
    min: dt.date | None = Field(None, description="Earliest allowed date (YYYY-MM-DD).")
    max: dt.date | None = Field(None, description="Latest allowed date (YYYY-MM-DD).")


class DateTimeField(FieldBase):
    """An instant; stored in UTC, served with its offset."""

    type: Literal["datetime"] = Field(description="Field type.")


class EnumField(FieldBase):
    """One of a fixed list of codes, each with labels."""

    type: Literal["enum"] = Field(description="Field type.")
    values: dict[EnumValue, LabelText | None] | list[EnumValue] = Field(
        description="The allowed codes: a list, or a mapping of code to label.",
        examples=[["planned", "producing", "shut_in"],
                  {"ESP": {"es": "Bomba electrosumergible", "en": "Electric submersible pump"},
                   "PCP": "PCP"}])

    def codes(self) -> list[str]:
        """The allowed codes in declaration order."""
        return list(self.values)

    def max_code_length(self) -> int:
        return max((len(c) for c in self.values), default=1)


class JsonField(FieldBase):
    """Free-form JSON (objects, lists, numbers, strings)."""

    type: Literal["json"] = Field(description="Field type.")


class LinkField(FieldBase):
    """A reference to a record of another entity (entity or module.entity)."""

    type: Literal["link"] = Field(description="Field type.")
    to: EntityRef = Field(description="The entity linked to: 'entity' in the same module or "
                          "'module.entity'.", examples=["pad", "wells.well"])
    on_delete: Literal["restrict", "cascade", "set_null"] = Field(
        "restrict", description="When the linked record is deleted: restrict (refuse), "
        "cascade (delete this record too) or set_null (clear the link; optional links only).")


class TableField(FieldBase):
    """Rows of a child entity owned by this record, read and written inline."""

    type: Literal["table"] = Field(description="Field type.")
    of: EntityRef = Field(description="The child entity (with child: true) whose rows this "
                          "field holds.", examples=["well_test_row"])


FieldSpec = Annotated[
    StringField | TextField | IntField | DecimalField | FloatField | BoolField | DateField
    | DateTimeField | EnumField | JsonField | LinkField | TableField,
    Field(discriminator="type"),
]
FIELD_TYPES: tuple[str, ...] = (
    "string", "text", "int", "decimal", "float", "bool", "date", "datetime", "enum", "json",
    "link", "table",
)


class Naming(Spec):
    """How a record is named: the field whose value identifies it to people."""

    field: Name = Field(description="A field of this entity, e.g. its code.",
                        examples=["code"])


class EntitySpec(Spec):
    """An entity: one table, one REST resource, one form."""

    label: LabelText | None = Field(None, description=_LABEL + " Default: the entity name.",
                                    examples=[{"es": "Pozo", "en": "Well"}])
    title: str | None = Field(None, description="How a record is shown in lists and links; "
                              "{field} inserts a field's value.", examples=["{code} {name}"])
    child: bool = Field(False, description="Rows of this entity belong to a parent record "
                        "through a 'type: table' field of the parent.")
    naming: Naming | None = Field(None, description="The field that identifies a record.")
    fields: dict[Name, FieldSpec] = Field(
        description="The fields, by name (snake_case).",
        examples=[{"name": {"type": "string", "required": True}}])
    unique_together: list[list[Name]] = Field(
        [], description="Groups of fields whose values together must be unique.",
        examples=[[["pad", "name"]]])
    indexes: list[list[Name]] = Field(
        [], description="Database indexes over several fields.", examples=[[["status", "pad"]]])
    permissions: dict[Name, list[Action]] | None = Field(
        None, description="Role -> allowed actions (read, create, update, delete). Without "
        "this block: admin all, supervisor read/create/update, operator and viewer read. With "
        "it, only the roles listed (admin keeps everything unless listed).",
        examples=[{"operator": ["read", "create"], "viewer": ["read"]}])
    renamed_from: Name | None = Field(
        None, description="Previous name of this entity: the migration renames its table "
        "and keeps the data.")


class RoleSpec(Spec):
    """A custom role; inherits grants everything the named roles may do."""

    label: LabelText | None = Field(None, description=_LABEL,
                                    examples=[{"es": "Ingeniero", "en": "Engineer"}])
    inherits: list[Name] = Field([], description="Roles whose permissions this role also has.",
                                 examples=[["operator"]])


class ModuleFile(Spec):
    """One YAML file under modules/: part or all of one module."""

    module: Name = Field(description="The module this file belongs to (snake_case); several "
                         "files may share a module.", examples=["production"])
    label: LabelText | None = Field(None, description=_LABEL + " Default: the module name.",
                                    examples=[{"es": "Producción", "en": "Production"}])
    entities: dict[Name, EntitySpec] = Field({}, description="Entities, by name (singular, "
                                             "snake_case).")
    roles: dict[Name, RoleSpec] = Field({}, description="Custom roles, by name. Built in: "
                                        "admin, supervisor, operator, viewer, scada.")


# --------------------------------------------------------------------------- resolved model


@dataclass(frozen=True)
class Entity:
    """A validated entity with its module, table name and resolved links."""

    module: str
    name: str
    spec: EntitySpec
    location: Location
    #: link and table fields -> qualified name (``module.entity``) of the target entity
    targets: dict[str, str]
    #: for a child entity: (qualified parent entity, table field name)
    parent: tuple[str, str] | None
    #: role -> allowed actions, with defaults applied and role inheritance expanded
    permissions: dict[str, frozenset[str]]
    field_locations: dict[str, Location] = field(default_factory=dict)

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def table(self) -> str:
        return f"{self.module}_{self.name}"

    @property
    def fields(self) -> dict[str, Any]:
        return self.spec.fields

    @property
    def labels(self) -> Labels:
        return labels_of(self.spec.label, self.name)

    def stored_fields(self) -> dict[str, Any]:
        """Fields that are columns of this entity's own table (``table`` fields are not)."""
        return {k: f for k, f in self.spec.fields.items() if f.type != "table"}

    def allows(self, roles: frozenset[str] | set[str], action: str) -> bool:
        """Whether any of ``roles`` may perform ``action`` on this entity."""
        return any(action in self.permissions.get(r, ()) for r in roles)


@dataclass(frozen=True)
class Module:
    """A module: a name, labels and its entities (by short name)."""

    name: str
    labels: Labels
    entities: dict[str, Entity]
    location: Location


@dataclass(frozen=True)
class Role:
    """A built-in or custom role."""

    name: str
    labels: Labels
    inherits: tuple[str, ...]
    builtin: bool
    location: Location | None


@dataclass(frozen=True)
class Model:
    """Everything the engine compiles: modules, entities (by qualified name) and roles."""

    modules: dict[str, Module]
    entities: dict[str, Entity]
    roles: dict[str, Role]
    root: str = "."
    extras: dict[str, Any] = field(default_factory=dict)

    def entity(self, qualname: str) -> Entity:
        """The entity named ``module.entity`` (KeyError if unknown)."""
        return self.entities[qualname]

    def role_closure(self, role: str) -> frozenset[str]:
        """``role`` plus every role it inherits from, transitively."""
        seen: set[str] = set()
        stack = [role]
        while stack:
            r = stack.pop()
            if r in seen or r not in self.roles:
                continue
            seen.add(r)
            stack.extend(self.roles[r].inherits)
        return frozenset(seen)
