"""The module language as written: entities, fields and roles, as pydantic models.

Import time builds the classes; nothing is read from disk here. :mod:`metamodel.loader`
validates each YAML document against :class:`ModuleFile` and then resolves the documents
into the immutable resolved model of :mod:`metamodel.model` (like ``metamodel/tags``:
``spec.py`` is what the YAML says, ``model.py`` what the engine reads). Every class is
``frozen`` and ``extra="forbid"`` so a typo such as ``requird:`` is an error, never silently
ignored.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, model_validator

from .capabilities import AllocationSpec, ExportSpec

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
#: ``fetch_from:`` -- a link field of this entity, a dot, a field of the linked entity.
FETCH_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
FetchRef = Annotated[str, StringConstraints(pattern=FETCH_PATTERN)]
#: An expression of the engine's safe language (checked when the model is compiled).
Expr = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
#: A numbering series: literal text and {tokens}; checked by the loader.
SeriesTemplate = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: Named badge colors of workflow states (or ``#rrggbb``).
STATE_COLORS: tuple[str, ...] = ("grey", "blue", "green", "yellow", "orange", "red", "purple",
                                 "teal")
STATE_COLOR_PATTERN = r"^(" + "|".join(STATE_COLORS) + r"|#[0-9a-fA-F]{6})$"
StateColor = Annotated[str, StringConstraints(pattern=STATE_COLOR_PATTERN)]
#: Field options that hold an expression (``default: '=...'`` is one too).
FIELD_EXPRESSION_KEYS: tuple[str, ...] = ("computed", "visible_if", "required_if", "readonly_if")

ACTIONS: tuple[str, ...] = ("read", "create", "update", "delete", "export")
Action = Literal["read", "create", "update", "delete", "export"]
BUILTIN_ROLES: tuple[str, ...] = ("admin", "supervisor", "operator", "viewer", "scada")
#: Spanish and English names of the built-in roles (shown by the desk)
BUILTIN_ROLE_LABELS: dict[str, tuple[str, str]] = {
    "admin": ("Administrador", "Administrator"), "supervisor": ("Supervisor", "Supervisor"),
    "operator": ("Operador", "Operator"), "viewer": ("Consulta", "Viewer"),
    "scada": ("SCADA (cuenta de servicio)", "SCADA (service account)")}
#: Permissions an entity gets when its YAML has no ``permissions:`` block.
DEFAULT_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "admin": ACTIONS,
    "supervisor": ("read", "create", "update", "export"),
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
    computed: Expr | None = Field(
        None, description="Expression that computes this field's value from the record "
        "(docs/expressions.md); the server keeps it up to date on every write and clients "
        "cannot set it.", examples=["sum(self.lines.amount)", "self.qty * self.unit_price"])
    stored: bool = Field(
        True, description="For a computed field: true (default) stores the value in a column "
        "(it can be filtered and sorted); false computes it when the record is read (no column).")
    fetch_from: FetchRef | None = Field(
        None, description="Copy a field of a linked record: '<link field>.<field of the linked "
        "entity>'. Filled when the link is set or changed.", examples=["well.name"])
    visible_if: Expr | None = Field(
        None, description="Show the field only while this expression is true.",
        examples=["self.kind == 'corrective'"])
    required_if: Expr | None = Field(
        None, description="The field must have a value while this expression is true.",
        examples=["self.status == 'done'"])
    readonly_if: Expr | None = Field(
        None, description="The field cannot be changed while this expression is true.",
        examples=["self.status in ['done', 'cancelled']"])
    hidden: bool = Field(
        False, description="Not shown in forms, lists or /api/meta, but still stored (site "
        "overlays use it to hide a field they do not need).")
    hidden_for: list[Name] = Field(
        [], description="Roles that may not see this field: it is left out of their records, "
        "/api/meta and exports, and they cannot filter, sort or write it (a user holding or "
        "inheriting any listed role).", examples=[["operator", "viewer"]])
    readonly_for: list[Name] = Field(
        [], description="Roles that may see but not change this field: a write that changes "
        "it is refused with 403 (a user holding or inheriting any listed role).",
        examples=[["operator"]])

    @property
    def default_expression(self) -> str | None:
        """The expression of a default written as ``'=<expression>'``, else ``None``."""
        d = self.default
        return d[1:] if isinstance(d, str) and d.startswith("=") else None

    @property
    def literal_default(self) -> Any:
        """The default when it is a plain value (``None`` for an expression default)."""
        return None if self.default_expression is not None else self.default

    def default_problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be this field's literal default (None: it can). The
        built-in kinds are judged in ``fieldchecks.py``; a registered kind overrides this
        (by default it takes no literal default)."""
        return f"a {self.type} field takes no literal default"

    @property
    def is_virtual(self) -> bool:
        """A computed field with ``stored: false``: no column, computed on read."""
        return self.computed is not None and not self.stored

    def expressions(self) -> dict[str, str]:
        """Option name -> expression source, for every expression this field declares."""
        out = {k: v for k in FIELD_EXPRESSION_KEYS if (v := getattr(self, k)) is not None}
        if self.default_expression is not None:
            out["default"] = self.default_expression
        return out


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
    index: bool = Field(True, description="Add a database index (links have one unless "
                        "'index: false'): the checks of on_delete and the lists of records "
                        "linking to one record read it.")
    on_delete: Literal["restrict", "cascade", "set_null"] = Field(
        "restrict", description="When the linked record is deleted: restrict (refuse), "
        "cascade (delete this record too) or set_null (clear the link; optional links only).")


class TableField(FieldBase):
    """Rows of a child entity owned by this record, read and written inline."""

    type: Literal["table"] = Field(description="Field type.")
    of: EntityRef = Field(description="The child entity (with child: true) whose rows this "
                          "field holds.", examples=["well_test_row"])


#: ``max_size`` of an attachment: bytes, or a number with KB/MB/GB (1 KB = 1024 bytes)
SIZE_PATTERN = r"^\s*(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$"
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1024, "KiB": 1024, "MB": 1024**2, "MiB": 1024**2,
               "GB": 1024**3, "GiB": 1024**3}
#: the largest ``max_size`` an attachment field may declare
ATTACHMENT_SIZE_CAP = 1024**3
#: an ``accept`` entry: a MIME type (``image/png``, ``image/*``) or an extension (``.pdf``)
ACCEPT_PATTERN = r"^([a-z0-9][a-z0-9.+-]*/([a-z0-9][a-z0-9.+-]*|\*)|\.[a-z0-9]{1,16})$"


def parse_size(value: int | str) -> int | None:
    """Bytes of a ``max_size`` value (``10MB``, ``512KB``, ``2048``); None when malformed."""
    if isinstance(value, int):
        return value
    m = re.match(SIZE_PATTERN, value)
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)] if m else None


class AttachmentField(FieldBase):
    """A file uploaded to the record: stored on disk in the data folder, the record holds
    its name, size, content type and SHA-256 (docs/modeling.md)."""

    type: Literal["attachment"] = Field(description="Field type.")
    max_size: int | str | None = Field(
        None, description="Largest file: bytes, or a number with KB, MB or GB (1 KB = 1024 "
        "bytes), at most 1GB. Default: the setting CAMPO_MAX_UPLOAD_BYTES (10MB).",
        examples=["10MB", "512KB"])
    accept: list[str] | None = Field(
        None, description="The kinds of file accepted: MIME types ('application/pdf', "
        "'image/*') or extensions ('.pdf'); the content is checked, not only the name. "
        "Default: any file.", examples=[["application/pdf", "image/*"], [".csv", ".txt"]])

    @property
    def max_bytes(self) -> int | None:
        """``max_size`` in bytes (None: the setting's default applies)."""
        return None if self.max_size is None else parse_size(self.max_size)


FieldSpec = Annotated[
    StringField | TextField | IntField | DecimalField | FloatField | BoolField | DateField
    | DateTimeField | EnumField | JsonField | LinkField | TableField | AttachmentField,
    Field(discriminator="type"),
]
#: The built-in field kinds (:func:`register_field_spec` adds more).
FIELD_TYPES: tuple[str, ...] = (
    "string", "text", "int", "decimal", "float", "bool", "date", "datetime", "enum", "json",
    "link", "table", "attachment",
)
#: field kind -> its spec class: the built-in kinds, then registered ones
FIELD_SPECS: dict[str, type[FieldBase]] = {
    typing.get_args(c.model_fields["type"].annotation)[0]: c
    for c in typing.get_args(typing.get_args(FieldSpec)[0])}


class Naming(Spec):
    """How a record is named: the field whose value identifies it to people."""

    field: Name = Field(description="A field of this entity, e.g. its code.",
                        examples=["code"])
    series: SeriesTemplate | None = Field(
        None, description="Fill 'field' on create from a numbering series. Tokens: {YYYY} "
        "{YY} {MM} {DD} (creation date, site time zone), {#####} (a gap-free counter, "
        "zero-padded to the number of '#'; one counter per distinct rendered prefix, so "
        "{YYYY} restarts it every year), {field_name} (the value of a field of the record).",
        examples=["WO-{YYYY}-{#####}", "{site}-JE-{YY}{MM}-{####}"])


class ValidationSpec(Spec):
    """An entity-level rule: the record is refused (422) while ``rule`` is false."""

    id: Name | None = Field(None, description="Name of the rule; an overlay rule with the same "
                            "id replaces this one.", examples=["total_not_negative"])
    rule: Expr = Field(description="Expression that must be true for a record to be saved.",
                       examples=["self.total >= 0", "sum(self.lines.debit) == "
                                 "sum(self.lines.credit)"])
    message: LabelText | None = Field(
        None, description="What is shown when the rule fails. Default: 'Rule not met: <rule>'.",
        examples=[{"es": "El total no puede ser negativo", "en": "Total cannot be negative"}])
    field: Name | None = Field(None, description="The field the message is shown on (default: "
                               "the whole record).", examples=["total"])

    def messages(self) -> Labels:
        """The message in both languages, defaulting to one that quotes the rule."""
        if self.message is not None:
            return labels_of(self.message, "")
        return Labels(es=f"No se cumple la regla: {self.rule}", en=f"Rule not met: {self.rule}")


class StateSpec(Spec):
    """How one workflow state is shown, and which fields can be edited in it."""

    label: LabelText | None = Field(None, description=_LABEL + " Default: the enum value's "
                                    "label.", examples=[{"es": "Borrador", "en": "Draft"}])
    color: StateColor | None = Field(None, description="Badge color: " + ", ".join(
        STATE_COLORS) + ", or '#rrggbb'.", examples=["blue"])
    editable: list[Name] | None = Field(
        None, description="Fields that can be changed while the record is in this state. "
        "Without this key every field is editable; [] makes the record read-only.",
        examples=[["description", "priority", "lines"]])


class TransitionSpec(Spec):
    """An action that moves a record from some states to another one."""

    action: Name = Field(description="Name of the action (POST .../actions/<action>).",
                         examples=["approve"])
    from_: list[EnumValue] | EnumValue = Field(
        alias="from", description="The state(s) the action can start from.",
        examples=[["draft"], "approved"])
    to: EnumValue = Field(description="The state the record moves to.", examples=["approved"])
    roles: list[Name] = Field(
        [], description="Roles that may run the action (admin always may). Without this key: "
        "every role allowed to update the entity.", examples=[["supervisor"]])
    guard: Expr | None = Field(None, description="Expression that must be true for the action "
                               "to run.", examples=["self.total > 0"])
    requires: list[Name] = Field([], description="Fields that must have a value (a table field: "
                                 "at least one row) for the action to run.",
                                 examples=[["assigned_to"]])
    label: LabelText | None = Field(None, description=_LABEL + " Default: the action name.",
                                    examples=[{"es": "Aprobar", "en": "Approve"}])

    def sources(self) -> tuple[str, ...]:
        """The states this transition starts from."""
        return (self.from_,) if isinstance(self.from_, str) else tuple(self.from_)


class WorkflowSpec(Spec):
    """A state machine over an enum field: only the transitions change it."""

    field: Name = Field(description="The enum field holding the state; clients cannot write "
                        "it directly.", examples=["status"])
    initial: EnumValue | None = Field(None, description="State of a new record. Default: the "
                                      "field's default, else the first state.",
                                      examples=["draft"])
    states: dict[EnumValue, StateSpec] = Field(
        {}, description="Per-state options, by enum value; values not listed are states too.",
        examples=[{"draft": {"label": {"es": "Borrador", "en": "Draft"}, "color": "grey",
                             "editable": ["description"]}}])
    transitions: list[TransitionSpec] = Field(
        [], description="The actions that move a record between states.",
        examples=[[{"action": "approve", "from": ["draft"], "to": "approved",
                    "roles": ["supervisor"]}]])
    deletable_in: list[EnumValue] | None = Field(
        None, description="States in which a record may be deleted (a delete in another "
        "state answers 409). Default: every state.", examples=[["draft"]])


class EntitySpec(Spec):
    """An entity: one table, one REST resource, one form."""

    label: LabelText | None = Field(None, description=_LABEL + " Default: the entity name.",
                                    examples=[{"es": "Pozo", "en": "Well"}])
    title: str | None = Field(None, description="How a record is shown in lists and links; "
                              "{field} inserts a field's value.", examples=["{code} {name}"])
    child: bool = Field(False, description="Rows of this entity belong to a parent record "
                        "through a 'type: table' field of the parent.")
    naming: Naming | None = Field(None, description="The field that identifies a record, "
                                  "and optionally the series that numbers it.")
    help: LabelText | None = Field(None, description="Help text shown at the top of the form.",
                                   examples=[{"es": "Orden de trabajo", "en": "Work order"}])
    fields: dict[Name, FieldSpec] = Field(
        description="The fields, by name (snake_case).",
        examples=[{"name": {"type": "string", "required": True}}])
    unique_together: list[list[Name]] = Field(
        [], description="Groups of fields whose values together must be unique.",
        examples=[[["pad", "name"]]])
    indexes: list[list[Name]] = Field(
        [], description="Database indexes over several fields.", examples=[[["status", "pad"]]])
    permissions: dict[Name, list[Action]] | None = Field(
        None, description="Role -> allowed actions (read, create, update, delete, export). "
        "Without this block: admin all, supervisor read/create/update/export, operator and "
        "viewer read. With it, only the roles listed (admin keeps everything unless listed).",
        examples=[{"operator": ["read", "create"], "viewer": ["read"]}])
    renamed_from: Name | None = Field(
        None, description="Previous name of this entity: the migration renames its table "
        "and keeps the data.")
    scope: Expr | None = Field(
        None, description="Row-level scope: an expression over self and user that a record "
        "must satisfy to be visible to the caller (lists, gets, links, exports, aggregates); "
        "it must translate to SQL: fields of self or of a record linked from self, compared "
        "with constants and user.username, user.id, user.sites, user.roles, joined with "
        "and/or/not. Admins see every row; a user with site '*' has every site ('x in "
        "user.sites' is always true).",
        examples=["self.site in user.sites", "self.created_by == user.username"])
    validations: list[ValidationSpec] = Field(
        [], description="Rules a record must satisfy to be saved; every failed rule is "
        "reported (422).", examples=[[{"rule": "self.total >= 0", "message": {
            "es": "El total no puede ser negativo", "en": "Total cannot be negative"}}]])
    workflow: WorkflowSpec | None = Field(
        None, description="A state machine over an enum field: states, and the actions "
        "(transitions) that move a record between them, with roles and guards.")
    allocations: dict[Name, AllocationSpec] = Field(
        {}, description="Distribute measured totals of a record over matching rows of "
        "another entity in proportion to a weight, exactly (largest remainder): POST "
        ".../<id>/allocations/<name>. See docs/modeling.md#allocations.")
    exports: dict[Name, ExportSpec] = Field(
        {}, description="Export formats rendered from a template: GET .../exports/<name> and "
        ".../<id>/exports/<name>. See docs/modeling.md#exports.")


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
    history_rollups: dict[Name, HistoryRollupSpec] = Field(
        {}, description="Records computed from tag history, by rule name "
        "(docs/historian.md#erp-rollups).")


# ERP rollups (metamodel/rollups.py) refer to Spec and Name above; resolved here.
from .rollups import HistoryRollupSpec  # noqa: E402

ModuleFile.model_rebuild()


# --------------------------------------------------------------------------- more field kinds

_ADAPTER: list[TypeAdapter[Any]] = []


def field_adapter() -> TypeAdapter[Any]:
    """Validates one field's YAML against every known kind (built-in and registered)."""
    if not _ADAPTER:
        _ADAPTER.append(TypeAdapter(_field_union()))
    return _ADAPTER[0]


def _field_union() -> Any:
    return Annotated[Union[tuple(FIELD_SPECS.values())],  # noqa: UP007 - built at run time
                     Field(discriminator="type")]


def _rebuild() -> None:
    EntitySpec.model_fields["fields"].annotation = dict[Name, _field_union()]  # type: ignore[valid-type]
    EntitySpec.model_rebuild(force=True)
    ModuleFile.model_rebuild(force=True)
    _ADAPTER.clear()


def register_field_spec(spec: type[FieldBase]) -> str:
    """Teach the language a new field kind: ``spec`` is a :class:`FieldBase` subclass whose
    ``type`` is a ``Literal`` of the kind's name. Returns the name. Called by a kind's file
    (see ``engine/api/fieldkinds.py``) before projects are loaded."""
    args = typing.get_args(spec.model_fields["type"].annotation)
    if len(args) != 1 or not isinstance(args[0], str):
        raise TypeError(f"{spec.__name__}.type must be a Literal of the kind's name")
    name = args[0]
    if name in FIELD_TYPES:
        raise ValueError(f"field kind {name!r} is built in")
    FIELD_SPECS[name] = spec
    _rebuild()
    return name


def unregister_field_spec(name: str) -> None:
    """Forget a registered kind (tests)."""
    if name in FIELD_TYPES:
        raise ValueError(f"field kind {name!r} is built in")
    if FIELD_SPECS.pop(name, None) is not None:
        _rebuild()
