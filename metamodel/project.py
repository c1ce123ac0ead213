"""One project: the modules, tags and screens of a folder, loaded together and checked across.

Each language keeps its own loader (:func:`metamodel.loader.collect` for ``modules/``,
:func:`metamodel.tags.loader.collect_tags` for ``tags/``,
:func:`metamodel.layout.collect_layouts` for ``screens/layouts/``); this module runs them all
and adds the checks between them, every problem at the ``file:line:col`` of the node it is
about, all reported in one run:

- a tag's ``write_roles`` name real roles (the modules' roles plus the built-in ones);
- an instance's ``bind:`` names a real entity, and a field of it that identifies one record
  (a stored, unique, plain-valued field);
- a form or list layout names real entities and fields;
- alarm rules (``alarms:`` of templates and sites, resolved with the tags) watch real tags and
  name real roles for their actions (on the rule and in a site's ``alarm_settings``);
- ``notify/`` (channels, routes, rosters, hooks) names its own channels and rosters, routes
  name real sites, alarm areas and alarm transitions, and hooks name a real entity and an
  action of its workflow.

The alarms' expressions (``when:``, limits given as text, ``suppress_when:``) are compiled by
the engine (:mod:`engine.alarms.compile`), which adds its problems to the same report in
``campo validate``. HMI screens (screens -> tags and entities) join when their language exists.

Example::

    from metamodel.project import load_project
    project = load_project(Path("."))         # DefinitionError lists every problem
    project.model.entity("showcase.asset")
    project.tags.tags["sim_pad.w1.pip"] if project.tags else None
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Problems, did_you_mean, expected_one_of
from .layout import Layouts, collect_layouts
from .loader import collect
from .model import Model
from .notify import NotifyDocs, NotifyFile, collect_notify
from .source import Document
from .tags.loader import collect_tags, tag_files
from .tags.model import TagModel

#: field types whose value can identify a record in a binding (``key:``)
KEY_TYPES = frozenset({"string", "int", "enum"})
#: up to this many choices a hint lists them all; beyond, only a close match is offered
_LISTED = 15


@dataclass(frozen=True)
class Project:
    """Everything a project folder defines, validated and cross-checked."""

    root: str
    #: the modules: entities, roles, permissions, behaviour
    model: Model
    #: the tag map (devices, templates, sites, tags); None when ``tags/`` has no files
    tags: TagModel | None
    #: form and list layouts of the desk (``screens/layouts/``)
    layouts: Layouts = field(default_factory=Layouts)
    #: the notification service's channels, routes, rosters and hooks (None without notify/)
    notify: NotifyFile | None = None


def collect_project(root: Path | str = ".", overlays: Sequence[Path | str] = (), *,
                    reserved_urls: frozenset[str] = frozenset(),
                    params: Mapping[str, Any] | None = None,
                    environ: Mapping[str, str] | None = None) -> tuple[Project, Problems]:
    """Like :func:`load_project`, but return what is sound plus the problems (the engine adds
    its own checks before reporting everything)."""
    model, problems = collect(root, overlays, reserved_urls)
    before = len(problems.items)
    tags = collect_model_tags(Path(root), model, problems, params, environ)
    tags_sound = len(problems.items) == before
    layouts = collect_layouts(Path(root), model, problems)
    notify, docs = collect_notify(Path(root), problems)
    if notify is not None:
        check_notify(model, tags, docs, problems, areas=tags_sound)
    return Project(str(root), model, tags, layouts, notify), problems


def load_project(root: Path | str = ".", overlays: Sequence[Path | str] = (), *,
                 reserved_urls: frozenset[str] = frozenset(),
                 params: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> Project:
    """Load the modules and tags of ``root``; raise DefinitionError listing every problem.

    :param reserved_urls: module names the caller serves URLs under (the engine's)
    :param params: site parameter overrides (see :func:`metamodel.tags.load_tags`)
    :param environ: where site parameters with ``env:`` look
    """
    project, problems = collect_project(root, overlays, reserved_urls=reserved_urls,
                                        params=params, environ=environ)
    problems.raise_if_any()
    return project


def collect_model_tags(root: Path, model: Model, problems: Problems,
                       params: Mapping[str, Any] | None = None,
                       environ: Mapping[str, str] | None = None) -> TagModel | None:
    """The tags of ``root`` checked against ``model`` (problems collected); None without
    ``tags/`` files."""
    if not tag_files(root):
        return None
    tags = collect_tags(root, problems, params, environ, roles=model.roles)
    check_bindings(model, tags, problems)
    return tags


def load_model_tags(root: Path | str, model: Model, params: Mapping[str, Any] | None = None,
                    environ: Mapping[str, str] | None = None) -> TagModel | None:
    """The tags of ``root`` checked against an already loaded ``model``; DefinitionError
    listing every problem; None without ``tags/`` files."""
    problems = Problems()
    tags = collect_model_tags(Path(root), model, problems, params, environ)
    problems.raise_if_any()
    return tags


def _hint(word: str, choices: Iterable[str]) -> str | None:
    options = sorted(choices)
    if len(options) <= _LISTED:
        return expected_one_of(word, options) if options else None
    return did_you_mean(word, options)


def check_bindings(model: Model, tags: TagModel, problems: Problems) -> None:
    """Each ``bind:`` names a real entity and a field of it that identifies one record."""
    for inst in tags.instances.values():
        b = inst.binding
        if b is None:
            continue
        name = inst.path.split(".", 1)[1]
        key = f"instances.{name}.bind"
        ent = model.entities.get(b.entity)
        if ent is None:
            problems.add(b.entity_at or inst.location, f"{key}.entity",
                         f"binding names unknown entity '{b.entity}'",
                         _hint(b.entity, model.entities))
            continue
        if b.entity in model.incomplete:
            continue  # its own problems are reported; its fields cannot be trusted
        f = ent.fields.get(b.key)
        where = b.key_at or b.entity_at or inst.location
        if f is None:
            keys = [k for k, fs in ent.stored_fields().items() if fs.type in KEY_TYPES]
            problems.add(where, f"{key}.key",
                         f"entity '{b.entity}' has no field '{b.key}'",
                         _hint(b.key, keys) or "bind by a field that identifies one record")
            continue
        if f.type not in KEY_TYPES or f.is_virtual:
            what = "a virtual computed field" if f.is_virtual else f"a {f.type} field"
            problems.add(where, f"{key}.key",
                         f"field '{b.key}' of '{b.entity}' cannot identify a record: it is "
                         f"{what}", "bind by a stored string, int or enum field that is "
                         "unique")
        elif not f.unique:
            problems.add(where, f"{key}.key",
                         f"field '{b.key}' of '{b.entity}' is not unique: the binding could "
                         "match several records",
                         f"add 'unique: true' to field '{b.key}' of '{b.entity}', or bind by "
                         "a unique field")


def check_notify(model: Model, tags: TagModel | None, docs: NotifyDocs, problems: Problems,
                 *, areas: bool = True) -> None:
    """Routes name real sites and alarm areas (areas only when ``areas``: the tags loaded
    without problems, so no alarm is missing); hooks name an entity and a workflow action."""
    sites = sorted(tags.sites) if tags is not None else []
    known_areas = sorted({a.area for a in tags.alarms.values() if a.area}) if tags else []
    for doc, f in docs:
        for name, r in f.routes.items():
            for i, site in enumerate(r.sites or ()):
                if site not in sites:
                    _at(problems, doc, ("routes", name, "sites", i),
                        f"route names unknown site '{site}'",
                        _hint(site, sites) if sites else "the project's tags/ declare no site")
            for i, area in enumerate(r.areas or ()):
                if areas and area not in known_areas:
                    _at(problems, doc, ("routes", name, "areas", i),
                        f"no alarm has area '{area}': the route would never send",
                        _hint(area, known_areas) if known_areas else
                        "give alarms an 'area:' in tags/, or drop 'areas' from the route")
        for name, h in f.hooks.items():
            ent = model.entities.get(h.entity)
            if ent is None:
                _at(problems, doc, ("hooks", name, "entity"),
                    f"hook names unknown entity '{h.entity}'", _hint(h.entity, model.entities))
                continue
            if h.entity in model.incomplete:
                continue
            wf = ent.workflow
            if wf is None:
                _at(problems, doc, ("hooks", name, "entity"),
                    f"entity '{h.entity}' has no workflow, so no transition to notify on",
                    "hook an entity with a 'workflow:'")
            elif h.action not in wf.actions():
                _at(problems, doc, ("hooks", name, "action"),
                    f"the workflow of '{h.entity}' has no action '{h.action}'",
                    _hint(h.action, wf.actions()))


def load_project_notify(root: Path | str, model: Model, tags: TagModel | None
                        ) -> NotifyFile | None:
    """``notify/`` checked against already loaded modules and tags (what ``campo serve``
    checks before it starts); DefinitionError listing every problem; None without it."""
    problems = Problems()
    notify, docs = collect_notify(Path(root), problems)
    if notify is not None:
        check_notify(model, tags, docs, problems)
    problems.raise_if_any()
    return notify


def _at(problems: Problems, doc: Document, path: tuple[Any, ...], message: str,
        hint: str | None) -> None:
    key = ".".join(str(p) for p in path if not isinstance(p, int))
    index = "".join(f"[{p}]" for p in path if isinstance(p, int))
    problems.add(doc.where(path), key + index, message, hint)


__all__ = ["KEY_TYPES", "Project", "check_bindings", "check_notify", "collect_model_tags",
           "collect_project", "load_model_tags", "load_project", "load_project_notify"]
