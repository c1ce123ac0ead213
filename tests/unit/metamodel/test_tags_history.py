"""The tag language's history settings: ages by precedence, renamed_from, offline_days."""

from __future__ import annotations

import pytest

from metamodel import DefinitionError
from metamodel.tags import load_tags

SCAN = "scan_classes: {fast: {period: 1s}, slow: {period: 10s}}\n"
TEMPLATE = """\
template: well
scan_class: fast
history: {retention: 90d}
tags:
  pip: {address: "hr:40001", type: float32, history: {retention: 30d, compaction: 36h}}
  thp: {address: "hr:40003", type: float32, renamed_from: tubing_pressure}
  meter: {address: "hr:40005", type: uint32, scan_class: slow, history: {retention: 10y}}
"""
SITE = """\
site: pad
history: {retention: 1y, compaction: 2w, offline_days: 30, day_start_hour: 6,
          timezone: America/Argentina/Buenos_Aires}
devices:
  plc: {type: modbus_tcp, host: 127.0.0.1}
instances:
  w1: {template: well, device: plc, unit_id: 1, renamed_from: well_1}
tags:
  flow: {device: plc, address: "hr:40100", type: float32, scan_class: fast,
         renamed_from: [old.flow, older_flow]}
"""


def _project(project, site: str = SITE, template: str = TEMPLATE):  # type: ignore[no-untyped-def]
    return project({"tags/scan_classes.yaml": SCAN, "tags/templates/well.yaml": template,
                    "tags/sites/pad.yaml": site})


def test_ages_by_precedence_and_renames(project) -> None:  # type: ignore[no-untyped-def]
    model = load_tags(_project(project))
    pip, thp, meter = (model.tags[f"pad.w1.{n}"] for n in ("pip", "thp", "meter"))
    assert (pip.retention_days, pip.compaction_days) == (30.0, 1.5)     # the tag's own
    assert (thp.retention_days, thp.compaction_days) == (90.0, 14.0)    # template, then site
    assert (meter.retention_days, meter.compaction_days) == (3650.0, 14.0)
    flow = model.tags["pad.flow"]
    assert (flow.retention_days, flow.compaction_days) == (365.0, 14.0)  # the site's
    assert flow.renamed_from == ("pad.old.flow", "pad.older_flow")
    assert thp.renamed_from == ("pad.w1.tubing_pressure", "pad.well_1.thp",
                                "pad.well_1.tubing_pressure")
    assert pip.renamed_from == ("pad.well_1.pip",)
    site = model.history["pad"]
    assert (site.offline_days, site.day_start_hour, site.timezone) == (
        30.0, 6, "America/Argentina/Buenos_Aires")
    assert model.only_site("pad").history["pad"] == site


def test_without_history_nothing_is_set(project) -> None:  # type: ignore[no-untyped-def]
    site = "\n".join(line for line in SITE.splitlines() if not line.startswith(
        ("history", "          timezone")))
    template = TEMPLATE.replace("history: {retention: 90d}\n", "").replace(
        ", history: {retention: 30d, compaction: 36h}", "").replace(
        ", history: {retention: 10y}", "")
    model = load_tags(_project(project, site, template))
    assert {(t.retention_days, t.compaction_days) for t in model.tags.values()} == {(None, None)}
    assert model.history["pad"].offline_days is None


@pytest.mark.parametrize(("site", "template", "expected"), [
    (SITE.replace("offline_days: 30", "offline_days: -1"), TEMPLATE,
     "tags/sites/pad.yaml:2:56: history.offline_days: must be at least 0"),
    (SITE.replace("America/Argentina/Buenos_Aires", "Mars/Olympus"), TEMPLATE,
     "tags/sites/pad.yaml:3:21: history.timezone: unknown time zone 'Mars/Olympus'"),
    (SITE, TEMPLATE.replace("retention: 30d", "retention: 30 days"),
     "tags/templates/well.yaml:5:66: tags.pip.history.retention:"),
    (SITE.replace("renamed_from: [old.flow, older_flow]", "renamed_from: w1.pip"), TEMPLATE,
     "tags/sites/pad.yaml:9:3: renamed_from: tag 'pad.flow' is renamed from 'pad.w1.pip', "
     "but 'pad.w1.pip' is still a tag"),
])
def test_mistakes_are_located(project, site: str, template: str,  # type: ignore[no-untyped-def]
                              expected: str) -> None:
    with pytest.raises(DefinitionError) as err:
        load_tags(_project(project, site, template))
    assert expected in err.value.format(), err.value.format()
