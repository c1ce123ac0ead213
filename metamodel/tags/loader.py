"""Load ``tags/**/*.yaml`` into one validated :class:`~metamodel.tags.model.TagModel`.

Phases (every problem is collected; a later phase skips only what an earlier one could not
read):

1. read: each file is composed with marks (folders named ``*.dumps`` hold register dumps
   for ``campo tags check`` and are skipped);
2. shape: each document is validated as a scan-classes, template or site file; a site's
   ``${parameters}`` are filled in first (overrides, environment, defaults);
3. expand: each instance of a template becomes one tag per template tag, at
   ``<site>.<instance>.<tag>``, with its device, unit id, base address and parameters;
4. check: unknown names (with did-you-mean), widths, ranges, duplicate paths and
   overlapping Modbus addresses.

Example::

    from metamodel.tags import load_tags
    model = load_tags(Path("."), params={"sim_pad.modbus_port": 5021})
    model.tags["sim_pad.w1.pip"].address      # ModbusAddress(holding_register, unit 1, 0, 2)
    model.tags_for("showcase.asset", "W1")    # the tags of well W1
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from ..errors import Location, Problem, Problems, expected_one_of
from ..source import Document, read_yaml
from ..spec import Name, Spec
from ..validation import problems_from
from .alarms import resolve_alarms, site_alarm_settings
from .checks import check_overlaps
from .history import HistorySpec, SiteHistory, SiteHistorySpec, ages
from .model import Binding, Device, Instance, ScanClass, Tag, TagModel, Template
from .params import site_values, substitute_site
from .resolve import TagContext, resolve_tag
from .spec import (
    DeviceSpec,
    InstanceSpec,
    ScanClassesFile,
    ScanClassSpec,
    SiteFile,
    SiteParameterSpec,
    SiteTagSpec,
    TemplateFile,
    seconds,
)

KINDS = ("site", "template", "scan_classes")


class _SiteHead(Spec):
    """The part of a site file read before its placeholders are filled in."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)
    site: Name
    parameters: dict[Name, SiteParameterSpec] = {}


def tag_files(root: Path) -> list[Path]:
    """YAML files under ``root/tags`` (not in ``*.dumps`` folders), sorted."""
    base = root / "tags"
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
                  and not any(part.endswith(".dumps") for part in p.relative_to(base).parts))


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def load_tags(root: Path | str = ".", params: Mapping[str, Any] | None = None,
              environ: Mapping[str, str] | None = None,
              roles: Iterable[str] | None = None) -> TagModel:
    """Load and check the project's tags; raise DefinitionError listing every problem.

    :param params: site parameter overrides, ``{"site.name": value}`` or ``{"name": value}``
    :param environ: where parameters with ``env:`` look (the caller passes ``os.environ``)
    :param roles: role names ``write_roles`` may use (unchecked when None)
    """
    problems = Problems()
    model = collect_tags(root, problems, params, environ, roles)
    problems.raise_if_any()
    return model


def collect_tags(root: Path | str, problems: Problems,
                 params: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None,
                 roles: Iterable[str] | None = None) -> TagModel:
    """Like :func:`load_tags`, but add the problems to ``problems`` and return what is sound
    (:func:`metamodel.project.load_project` checks it against the modules)."""
    root = Path(root)
    mine = Problems()
    docs: list[Document] = []
    unreadable: list[str] = []
    for path in tag_files(root):
        doc = read_yaml(path, _display(path, root), mine)
        if doc is not None:
            docs.append(doc)
        else:
            unreadable.append(_text_of(path))
    model = build_tags(docs, mine, params or {}, environ or {},
                       frozenset(roles) if roles is not None else None, str(root),
                       _Unreadable.of(unreadable))
    unique: dict[tuple[str, str, str], Problem] = {}
    for p in mine.items:
        unique.setdefault((str(p.location), p.path, p.message), p)
    problems.extend(unique.values())
    return model


def _text_of(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


_TEMPLATE_NAME = re.compile(r"^template:\s*['\"]?([a-z][a-z0-9_]*)", re.M)
_KEY_NAME = re.compile(r"^\s+([a-z][a-z0-9_]*)\s*:", re.M)


class _Unreadable:
    """Names that files with a YAML syntax error probably define: a reference to one of them
    is not reported as unknown (the syntax error is the real mistake, and it is reported)."""

    def __init__(self, templates: set[str], scan_classes: set[str]) -> None:
        self.templates = templates
        self.scan_classes = scan_classes

    @classmethod
    def of(cls, texts: Iterable[str]) -> _Unreadable:
        templates: set[str] = set()
        scans: set[str] = set()
        for text in texts:
            templates.update(_TEMPLATE_NAME.findall(text))
            if "scan_classes" in text:
                scans.update(_KEY_NAME.findall(text))
        return cls(templates, scans)


def _kind(doc: Document, problems: Problems) -> str | None:
    if not isinstance(doc.value, dict) or not any(k in doc.value for k in KINDS):
        problems.add(doc.where(()), "", "a tags file starts with 'site:', 'template:' or "
                     "'scan_classes:'", "see docs/tags.md for the three kinds of file")
        return None
    return next(k for k in KINDS if k in doc.value)


def build_tags(docs: Iterable[Document], problems: Problems, params: Mapping[str, Any],
               environ: Mapping[str, str], roles: frozenset[str] | None,
               root: str = ".", unreadable: _Unreadable | None = None) -> TagModel:
    """Validate documents and expand them into a TagModel (problems collected, not raised).

    :param unreadable: names defined by files that could not be read (no follow-on errors)
    """
    by_kind: dict[str, list[Document]] = {k: [] for k in KINDS}
    for doc in docs:
        kind = _kind(doc, problems)
        if kind is not None:
            by_kind[kind].append(doc)
    lost = unreadable or _Unreadable(set(), set())
    scan_classes, broken_scans = _scan_classes(by_kind["scan_classes"], problems)
    templates, broken = _templates(by_kind["template"], problems)
    st = _Sites(scan_classes, templates, broken | lost.templates, roles, problems,
                broken_scans | lost.scan_classes)
    for doc in by_kind["site"]:
        st.add(doc, params, environ)
    check_overlaps(st.tags, st.instances, problems)
    tags = dict(sorted((t.path, t) for t in st.tags))
    alarms, warnings = resolve_alarms(templates, st.instances, st.tags, st.bodies, problems,
                                      roles)
    alarm_settings = site_alarm_settings(st.bodies)
    _check_renames(tags, problems)
    return TagModel(
        scan_classes=scan_classes,
        templates={n: t[2] for n, t in sorted(templates.items())},
        sites=st.sites, devices=dict(sorted(st.devices.items())),
        instances=dict(sorted(st.instances.items())), tags=tags,
        parameters=st.values, root=root, alarms=alarms, warnings=tuple(warnings),
        alarm_settings=alarm_settings, history=st.history)


def _check_renames(tags: Mapping[str, Tag], problems: Problems) -> None:
    """A ``renamed_from`` may not name a tag that still exists, nor one another tag claims."""
    claimed: dict[str, Tag] = {}
    for tag in tags.values():
        for old in tag.renamed_from:
            if old in tags:
                problems.add(tag.location, "renamed_from", f"tag '{tag.path}' is renamed from "
                             f"'{old}', but '{old}' is still a tag (defined at "
                             f"{tags[old].location})", "remove renamed_from, or the old tag")
            elif old in claimed and claimed[old].path != tag.path:
                problems.add(tag.location, "renamed_from", f"'{old}' is claimed as a former "
                             f"name by '{tag.path}' and by '{claimed[old].path}' (at "
                             f"{claimed[old].location})", "only one tag can take its history")
            else:
                claimed[old] = tag


def _with_history(tag: Tag, site: SiteHistory, specs: tuple[HistorySpec | None, ...],
                  renamed: list[str]) -> Tag:
    retention, compaction = ages(*specs, site)
    if retention is None and compaction is None and not renamed:
        return tag
    return dataclasses.replace(tag, retention_days=retention, compaction_days=compaction,
                               renamed_from=tuple(dict.fromkeys(renamed)))


def _names(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


_SCAN_CLASS: TypeAdapter[ScanClassSpec] = TypeAdapter(ScanClassSpec)


def _scan_classes(docs: list[Document], problems: Problems
                  ) -> tuple[dict[str, ScanClass], set[str]]:
    """Scan classes by name, and the names of those that are broken (already reported)."""
    out: dict[str, ScanClass] = {}
    broken: set[str] = set()
    for doc in docs:
        try:
            specs = dict(ScanClassesFile.model_validate(doc.value).scan_classes)
        except ValidationError as exc:
            problems.extend(problems_from(exc, ScanClassesFile, doc))
            specs = {}  # salvage the sound entries so one broken class does not hide them
            section = doc.value.get("scan_classes")
            for name, raw in (section.items() if isinstance(section, dict) else ()):
                try:
                    specs[name] = _SCAN_CLASS.validate_python(raw)
                except ValidationError:
                    broken.add(str(name))
        for name, spec in specs.items():
            where = doc.where_key(("scan_classes", name))
            if name in out:
                problems.add(where, f"scan_classes.{name}", f"scan class '{name}' is already "
                             f"defined at {out[name].location}")
                continue
            out[name] = ScanClass(name, seconds(spec.period), where, spec.description)
    return dict(sorted(out.items())), broken


def _templates(docs: list[Document], problems: Problems
               ) -> tuple[dict[str, tuple[Document, TemplateFile, Template]], set[str]]:
    out: dict[str, tuple[Document, TemplateFile, Template]] = {}
    broken: set[str] = set()
    for doc in docs:
        try:
            f = TemplateFile.model_validate(doc.value)
        except ValidationError as exc:
            problems.extend(problems_from(exc, TemplateFile, doc))
            if isinstance(doc.value.get("template"), str):
                broken.add(doc.value["template"])
            continue
        where = doc.where(("template",))
        if f.template in out:
            problems.add(where, "template", f"template '{f.template}' is already defined at "
                         f"{out[f.template][2].location}")
            continue
        out[f.template] = (doc, f, Template(f.template, tuple(f.parameters), tuple(f.tags),
                                           where, doc.file))
    return out, broken


_DEVICE: TypeAdapter[Any] = TypeAdapter(DeviceSpec)
_INSTANCE: TypeAdapter[InstanceSpec] = TypeAdapter(InstanceSpec)
_SITE_TAG: TypeAdapter[SiteTagSpec] = TypeAdapter(SiteTagSpec)
_SITE_HISTORY: TypeAdapter[SiteHistorySpec] = TypeAdapter(SiteHistorySpec)


_UNKNOWN_TYPE = re.compile(r"^unknown (?:field type|'type') ('.*')$")


def _device_type(p: Problem) -> Problem:
    """Pydantic's words for an unknown discriminator, said as 'unknown device type'."""
    m = _UNKNOWN_TYPE.match(p.message)
    if m and p.path.startswith("devices.") and p.path.endswith(".type"):
        return Problem(p.location, p.path, f"unknown device type {m.group(1)}", p.hint)
    return p


class _Sites:
    """Expands site files, keeping what the checks across sites need."""

    def __init__(self, scan_classes: dict[str, ScanClass],
                 templates: dict[str, tuple[Document, TemplateFile, Template]],
                 broken: set[str], roles: frozenset[str] | None, problems: Problems,
                 broken_scans: set[str] | None = None) -> None:
        self.scan_classes = scan_classes
        self.broken_scans = frozenset(broken_scans or ())
        self.templates = templates
        self.broken = broken
        self.roles = roles
        self.problems = problems
        self.sites: dict[str, Location] = {}
        self.values: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, Device] = {}
        self.instances: dict[str, Instance] = {}
        self.tags: list[Tag] = []
        self.paths: dict[str, Location] = {}
        #: each site's document and body (placeholders filled), for its alarm rules
        self.bodies: list[tuple[str, Document, Mapping[str, Any]]] = []
        self._default_scan: str | None = None
        #: each site's history settings
        self.history: dict[str, SiteHistory] = {}

    def add(self, doc: Document, params: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        """Validate one site file and expand its instances and tags."""
        try:
            head = _SiteHead.model_validate(doc.value)
        except ValidationError as exc:
            self.problems.extend(problems_from(exc, _SiteHead, doc))
            return
        site = head.site
        where = doc.where(("site",))
        if site in self.sites:
            self.problems.add(where, "site", f"site '{site}' is already defined at "
                              f"{self.sites[site]}", "a site is one file; rename one of them")
            return
        self.sites[site] = where
        values = site_values(site, head.parameters, doc, params, environ, self.problems)
        self.values[site] = values
        body = {k: v for k, v in doc.value.items() if k != "parameters"}
        tainted: set[str] = set()
        broken = frozenset(head.parameters) - set(values)
        body = substitute_site(body, (), {**values, "site": site}, doc, self.problems,
                               tainted, broken)
        devices, instances, tags = self._shape(doc, body, tainted)
        self.bodies.append((site, doc, body))
        try:
            raw = body.get("history")
            self.history[site] = SiteHistory.of(
                None if raw is None else _SITE_HISTORY.validate_python(raw))
        except ValidationError:  # reported with the site file's other problems
            self.history[site] = SiteHistory()
        for name, spec in devices.items():
            if spec is not None:
                dev = Device(site, name, spec, doc.where_key(("devices", name)))
                self.devices[dev.qualname] = dev
        for name, ispec in instances.items():
            self._instance(doc, site, name, ispec)
        for name, tspec in tags.items():
            self._site_tag(doc, site, name, tspec)

    def _shape(self, doc: Document, body: dict[str, Any], tainted: set[str]) -> tuple[
            dict[str, Any], dict[str, InstanceSpec], dict[str, SiteTagSpec]]:
        try:
            f = SiteFile.model_validate({**body, "parameters": {}})
            self._default_scan = f.scan_class
            if not tainted:
                return dict(f.devices), dict(f.instances), dict(f.tags)
        except ValidationError as exc:
            self._default_scan = body.get("scan_class") if isinstance(
                body.get("scan_class"), str) else None
            # a value whose placeholder could not be filled in is reported once, not twice
            self.problems.extend(
                _device_type(p) for p in problems_from(exc, SiteFile, doc)
                if not any(p.path == t or p.path.startswith(t + ".") for t in tainted))
        # salvage the sound pieces so one broken entry does not hide the rest
        out: list[dict[str, Any]] = [{}, {}, {}]
        for i, (key, adapter) in enumerate((("devices", _DEVICE), ("instances", _INSTANCE),
                                            ("tags", _SITE_TAG))):
            section = body.get(key)
            if not isinstance(section, dict):
                continue
            for name, raw in section.items():
                if any(t.startswith(f"{key}.{name}") for t in tainted):
                    out[i][name] = None
                    continue
                try:
                    out[i][name] = adapter.validate_python(raw)
                except ValidationError:
                    out[i][name] = None
        return out[0], out[1], out[2]

    def _device(self, doc: Document, site: str, name: str, key: tuple[Any, ...]
                ) -> Device | None:
        dev = self.devices.get(f"{site}.{name}")
        if dev is None:
            section = doc.value.get("devices") or {}
            if name not in section:  # a broken device was reported already
                names = [d.name for d in self.devices.values() if d.site == site]
                self.problems.add(doc.where(key), ".".join(map(str, key)),
                                  f"unknown device '{name}'", expected_one_of(name, names)
                                  if names else "declare it under 'devices:'")
        return dev

    def _instance(self, doc: Document, site: str, name: str, spec: InstanceSpec | None) -> None:
        if spec is None:
            return
        key = ("instances", name)
        path = f"{site}.{name}"
        iloc = doc.where_key(key)
        dev = self._device(doc, site, spec.device, key + ("device",))
        tpl = self.templates.get(spec.template)
        if tpl is None:
            if spec.template not in self.broken:
                self.problems.add(doc.where(key + ("template",)), f"instances.{name}.template",
                                  f"unknown template '{spec.template}'",
                                  expected_one_of(spec.template, [*self.templates,
                                                                  *self.broken]))
            return
        tdoc, tfile, template = tpl
        values: dict[str, str] = {}
        ok = True
        for p, v in spec.params.items():
            if p not in tfile.parameters:
                self.problems.add(doc.where_key(key + ("params", p)),
                                  f"instances.{name}.params.{p}",
                                  f"template '{spec.template}' has no parameter '{p}'",
                                  expected_one_of(p, tfile.parameters) if tfile.parameters
                                  else "the template declares no parameters")
                ok = False
            values[p] = str(v).lower() if isinstance(v, bool) else str(v)
        for p, pspec in tfile.parameters.items():
            if p not in values:
                if pspec.default is None:
                    self.problems.add(iloc, f"instances.{name}", f"missing parameter '{p}' "
                                      f"of template '{spec.template}'",
                                      f"add params: {{{p}: ...}}")
                    ok = False
                else:
                    values[p] = pspec.default
        if dev is None or not ok:
            return
        if not dev.type.startswith("modbus") and (spec.unit_id is not None or spec.base):
            k = "unit_id" if spec.unit_id is not None else "base"
            self.problems.add(doc.where(key + (k,)), f"instances.{name}.{k}",
                              f"'{k}' is for Modbus devices, but '{dev.name}' is {dev.type}")
            return
        units = getattr(dev.spec, "units", [])
        unit = spec.unit_id if spec.unit_id is not None else getattr(dev.spec, "unit_id", None)
        if units and unit not in units:
            at = key + ("unit_id",) if spec.unit_id is not None else key
            self.problems.add(doc.where(at), ".".join(at), f"unit id {unit} is not on line "
                              f"'{dev.name}' (units {', '.join(map(str, units))})",
                              "add it to the device's 'units:' list or fix the unit id")
            return
        binding = None
        if spec.bind is not None:
            binding = Binding(spec.bind.entity, spec.bind.key, str(spec.bind.value),
                              entity_at=doc.where(key + ("bind", "entity")),
                              key_at=doc.where(key + ("bind", "key")))
        inst = Instance(path, site, spec.template, dev.qualname, spec.unit_id, spec.base,
                        tuple(sorted(values.items())), binding, iloc)
        self.instances[path] = inst
        values.update(site=site, instance=name, unit_id=str(spec.unit_id or ""))
        fallbacks = (
            (spec.scan_class, doc.where(key + ("scan_class",)), f"instances.{name}.scan_class"),
            (tfile.scan_class, tdoc.where(("scan_class",)), "scan_class"),
        )
        for tname, tspec in tfile.tags.items():
            ctx = TagContext(
                path=f"{path}.{tname}", site=site, device=dev, doc=tdoc, key=("tags", tname),
                scan_classes=self.scan_classes, problems=self.problems, values=values,
                unit_id=spec.unit_id, base=spec.base, scan_fallbacks=fallbacks,
                roles=self.roles, instance=path, template=spec.template, binding=binding,
                broken_scan_classes=self.broken_scans)
            tag = resolve_tag(tspec, ctx)
            if tag is not None:
                olds = _names(tspec.renamed_from)
                renamed = [f"{site}.{name}.{o}" for o in olds]
                if spec.renamed_from:
                    renamed += [f"{site}.{spec.renamed_from}.{t}" for t in (tname, *olds)]
                tag = _with_history(tag, self.history.get(site, SiteHistory()),
                                    (tspec.history, tfile.history), renamed)
                self._keep(tag, iloc, f"instances.{name}")

    def _site_tag(self, doc: Document, site: str, name: str, spec: SiteTagSpec | None) -> None:
        if spec is None:
            return
        key = ("tags", name)
        dev = self._device(doc, site, spec.device, key + ("device",))
        if dev is None:
            return
        ctx = TagContext(path=f"{site}.{name}", site=site, device=dev, doc=doc, key=key,
                         scan_classes=self.scan_classes, problems=self.problems,
                         roles=self.roles, scan_fallbacks=(
                             (self._default_scan, doc.where(("scan_class",)), "scan_class"),),
                         broken_scan_classes=self.broken_scans)
        tag = resolve_tag(spec, ctx)
        if tag is not None:
            tag = _with_history(tag, self.history.get(site, SiteHistory()), (spec.history,),
                                [f"{site}.{o}" for o in _names(spec.renamed_from)])
            self._keep(tag, tag.location, f"tags.{name}")

    def _keep(self, tag: Tag, where: Location, key: str) -> None:
        if tag.path in self.paths:
            self.problems.add(where, key, f"tag path '{tag.path}' is already defined at "
                              f"{self.paths[tag.path]}", "rename the tag or the instance")
            return
        self.paths[tag.path] = where
        self.tags.append(tag)
